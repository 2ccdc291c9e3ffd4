"""`drift --metrics-file` and `probe --metrics-file`: the check's result as a Prometheus text-format
file, for node_exporter's textfile collector (`--collector.textfile.directory`), so that an alert
fires on drift, on a name that fails, and on a check that stopped running (its
`..._last_run_timestamp_seconds` grows old).

Written atomically, as the collector requires (it may read at any moment): a temporary file in the
same directory, whose name the collector ignores (it reads `*.prom` only), then a rename over the
target. Every series carries the stack, so one directory can hold a file per stack and command.
No sample carries a timestamp: the collector refuses them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from ._report import Report, Verdict

PASSING = {Verdict.IN_SYNC, Verdict.ANSWERS}


def escape_label(value: str) -> str:
    """A label value as the exposition format writes it: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{escape_label(v)}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class _Families:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.lines: list[str] = []

    def gauge(self, name: str, help_text: str, samples: Iterable[tuple[dict[str, str], float]]) -> None:
        full = f"{self.prefix}_{name}"
        self.lines += [f"# HELP {full} {help_text}", f"# TYPE {full} gauge"]
        self.lines += [f"{full}{_labels(labels)} {_number(value)}" for labels, value in samples]


def metrics_text(command: str, stack: str, exit_code: int, finished: float, report: Report | None) -> str:
    """The metrics of one `drift` or `probe` run. `report` is None when the stack did not load (the
    check could not run: exit 1); then only the run's own series are written."""
    m = _Families(f"llmfleet_{command}")
    s = {"stack": stack}
    m.gauge("last_run_timestamp_seconds", f"When `llmfleet {command}` last finished (Unix time).", [(s, finished)])
    m.gauge("exit_code", "The check's exit code: 0 ok, 2 drift or a failing name, 1 could not check.",
            [(s, exit_code)])  # fmt: skip
    ok = "in_sync" if command == "drift" else "all_answer"
    meaning = "in sync" if command == "drift" else "every probed name answers"
    m.gauge(ok, f"1 when the check ran and found the stack {meaning} (exit code 0), else 0.", [(s, exit_code == 0)])
    if report is None:
        return "\n".join(m.lines) + "\n"
    m.gauge("duration_seconds", "How long the check took.", [(s, round(report.seconds, 3))])
    m.gauge("declared_names", "Names the catalog declares (what the gateway's /v1/models must list).",
            [(s, len(report.declared))])  # fmt: skip
    m.gauge("checks", "Checks by verdict.",
            [({**s, "verdict": v.value}, sum(c.verdict is v for c in report.checks)) for v in Verdict])  # fmt: skip
    checks = [({**s, "check": c.target, "kind": c.kind}, c) for c in report.checks]
    if command == "drift":
        m.gauge("missing_names", "Declared names a check did not find (the gateway's list, or a backend's).",
                [(labels, len(c.missing)) for labels, c in checks])  # fmt: skip
        m.gauge("undeclared_names", "Names a check found that are not declared.",
                [(labels, len(c.undeclared)) for labels, c in checks])  # fmt: skip
    else:
        m.gauge("failing_names", "Declared names that fail or answer only through a fallback.",
                [(s, sum(c.verdict in (Verdict.FAILS, Verdict.DEGRADED) for c in report.checks))])  # fmt: skip
    m.gauge("check_passing", "1 when the check passed (in sync; answers), else 0 (see check_verdict).",
            [(labels, c.verdict in PASSING) for labels, c in checks])  # fmt: skip
    m.gauge("check_verdict", "Each check's verdict, as a label (the value is always 1).",
            [({**labels, "verdict": c.verdict.value}, 1) for labels, c in checks])  # fmt: skip
    return "\n".join(m.lines) + "\n"


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same directory and a rename, readable
    by others (node_exporter usually runs as its own user). Raises OSError, leaving nothing behind."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
