"""The report model `drift` and `probe` share: one verdict per check, and an exit code.

A check is a gateway's model list, a backend, or (for `probe`) one declared name. A check that
could not see the truth is never counted as passing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    IN_SYNC = "in sync"
    DRIFT = "drift"
    ANSWERS = "answers"  # probe: the name answered, from its own deployment
    DEGRADED = "degraded"  # probe: answered only through a fallback
    FAILS = "fails"  # probe: the gateway answered with an error
    UNREACHABLE = "unreachable"
    UNAUTHORIZED = "unauthorized"
    BAD_RESPONSE = "bad response"
    NOT_CHECKED = "not checked"  # probe: a name served only by external (paid) providers, not asked for
    # --backends: a backend the stack does not publish where the check runs. Could not check (exit 1):
    # a check asked for and not done is never a pass.
    NOT_PUBLISHED = "not published"

    @property
    def could_not_check(self) -> bool:
        return self in (Verdict.UNREACHABLE, Verdict.UNAUTHORIZED, Verdict.BAD_RESPONSE, Verdict.NOT_PUBLISHED)

    @property
    def failing(self) -> bool:
        return self in (Verdict.DRIFT, Verdict.DEGRADED, Verdict.FAILS)


@dataclass
class CheckResult:
    target: str  # "gateway", a provider name, or (probe) a declared name
    kind: str  # litellm, ollama, vllm, llama_cpp, llama_cpp_python; probe: model, group, alias
    url: str | None
    verdict: Verdict
    missing: list[str] = field(default_factory=list)
    undeclared: list[str] = field(default_factory=list)
    detail: str = ""  # why, when not passing
    notes: list[str] = field(default_factory=list)  # per model: "llama3.1:latest: not pulled on ollama"
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target, "kind": self.kind, "url": self.url, "verdict": self.verdict.value,
            "missing": self.missing, "undeclared": self.undeclared, "detail": self.detail, "notes": self.notes,
            "seconds": round(self.seconds, 3),
        }  # fmt: skip


SUMMARIES = {
    "drift": {0: "in sync", 1: "could not check", 2: "drift"},
    "probe": {0: "every name answers", 1: "could not check", 2: "failing"},
}


@dataclass
class Report:
    stack: str
    gateway_url: str
    declared: list[str]
    checks: list[CheckResult]
    attempts: int = 1
    seconds: float = 0.0
    command: str = "drift"  # or "probe"

    @property
    def gateway(self) -> CheckResult:
        return self.checks[0]

    @property
    def exit_code(self) -> int:
        """0 all passed; 2 something drifted or fails; 1 nothing failed but something could not be checked."""
        if any(c.verdict.failing for c in self.checks):
            return 2
        if any(c.verdict.could_not_check for c in self.checks):
            return 1
        return 0

    @property
    def summary(self) -> str:
        return SUMMARIES[self.command][self.exit_code]

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.command, "stack": self.stack, "gateway_url": self.gateway_url, "result": self.summary,
            "exit_code": self.exit_code, "declared": self.declared, "attempts": self.attempts,
            "seconds": round(self.seconds, 3), "checks": [c.to_dict() for c in self.checks],
        }  # fmt: skip
