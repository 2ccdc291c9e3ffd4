"""Exceptions raised by llmfleet.

    LlmfleetError                 base: catch this to catch everything below
    └── ConfigError               the catalog or stack file is wrong; carries every Problem found

The drift check raises nothing: what it could not check is a verdict in its report.

Every message names what went wrong, where, and what to do about it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ._wording import count

Severity = Literal["error", "warning"]
KeyPath = tuple[str | int, ...]


def format_key_path(path: KeyPath) -> str:
    """`providers.vllm-qwen.model`, quoting keys that would read wrongly in a dotted path."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part and all(c.isalnum() or c in "_-" for c in part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out or "(document)"


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a file, located to the line of its key."""

    file: str
    line: int
    col: int
    path: KeyPath = field(compare=False)
    message: str = field(compare=False)
    rule: str = field(compare=False)
    severity: Severity = field(default="error", compare=False)
    hint: str = field(default="", compare=False)

    def _what(self) -> str:
        """`key.path: message. hint (rule)`: what every format says after where."""
        hint = f" {self.hint}" if self.hint else ""
        return f"{format_key_path(self.path)}: {self.message}.{hint} ({self.rule})"

    def format(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.severity}: {self._what()}"

    def format_github(self) -> str:
        """A GitHub Actions workflow command, escaped as GitHub documents it: `%`, CR and LF in the
        message; those and `:` and `,` in property values (a key may hold any of them)."""
        level = "error" if self.severity == "error" else "warning"
        props = f"file={_gh_property(self.file)},line={self.line},col={self.col}"
        return f"::{level} {props}::{_gh_data(self._what())}"


def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_property(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


class LlmfleetError(Exception):
    """Base of every error llmfleet raises on purpose."""


class ConfigError(LlmfleetError):
    """The catalog or the stack file has errors; `problems` lists all of them."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        errors = [p for p in self.problems if p.severity == "error"]
        lines = "\n".join(p.format() for p in errors)
        super().__init__(f"{count(len(errors), 'error')} in the fleet configuration:\n{lines}")
