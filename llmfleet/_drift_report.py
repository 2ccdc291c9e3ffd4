"""A drift or probe report as text (people), JSON (machines), Markdown (job summaries, PR comments)
and JUnit XML (CI test reports: one test case per check; drift or a failing name is a failure,
could-not-check an error)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from ._report import Report, Verdict
from ._wording import count, duration


def _continued(text: str, indent: str) -> str:
    """Server error text spans lines (LiteLLM's has blank ones): keep every line under its check."""
    return "\n".join(line if not i or not line else indent + line for i, line in enumerate(text.splitlines()))


def as_text(report: Report) -> str:
    lines = [
        f"stack '{report.stack}': {report.summary} (gateway {report.gateway_url}, "
        f"{count(len(report.declared), 'declared name')}, {_took(report)})"
    ]
    for c in report.checks:
        line = f"  {c.target} [{c.kind}]: {c.verdict.value}"
        # A detail that only joins the notes (a backend's failing models) is shown once, as the notes.
        if c.detail and c.verdict is not Verdict.DRIFT and c.detail != "; ".join(c.notes):
            line += f": {_continued(c.detail, '      ')}"
        lines.append(line)
        lines += [f"    - {name}: declared, not served" for name in c.missing if c.target == "gateway"]
        lines += [f"    + {name}: served, not declared" for name in c.undeclared if c.target == "gateway"]
        lines += [f"    {_continued(note, '      ')}" for note in c.notes]
    return "\n".join(lines) + "\n"


def _took(report: Report) -> str:
    """How long the check took; for drift, in how many attempts (more than one with --wait)."""
    if report.command == "drift":
        return f"{count(report.attempts, 'attempt')} in {duration(report.seconds)}"
    return duration(report.seconds)


def as_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2) + "\n"


_ICONS = {0: "✅", 1: "⚠️", 2: "❌"}


def as_markdown(report: Report) -> str:
    out = [
        f"### {_ICONS[report.exit_code]} llmfleet {report.command}: stack `{report.stack}`: {report.summary}",
        "",
        f"Gateway `{report.gateway_url}`, {count(len(report.declared), 'declared name')}, checked in "
        f"{duration(report.seconds)}.",
        "",
    ]
    # probe compares no lists: its table has no missing/not-declared columns.
    lists = report.command != "probe"
    out.append("| check | kind | verdict | " + ("missing | not declared | " if lists else "") + "detail |")
    out.append("| --- | --- | --- | " + ("--- | --- | " if lists else "") + "--- |")
    for c in report.checks:
        cells = [c.target, c.kind, c.verdict.value]
        if lists:
            cells += [", ".join(f"`{m}`" for m in c.missing), ", ".join(f"`{u}`" for u in c.undeclared)]
        cells.append("; ".join([*c.notes] or [c.detail]))
        out.append("| " + " | ".join(_md_cell(cell) for cell in cells) + " |")
    return "\n".join(out) + "\n"


def _md_cell(text: str) -> str:
    """One table cell whatever the text holds: a `|` would end the cell and a newline the row."""
    return "<br>".join(text.replace("|", "\\|").splitlines())


def as_junit(report: Report) -> str:
    failures = sum(c.verdict.failing for c in report.checks)
    errors = sum(c.verdict.could_not_check for c in report.checks)
    skipped = sum(c.verdict is Verdict.NOT_CHECKED for c in report.checks)
    suite = ET.Element(
        "testsuite",
        name=f"llmfleet {report.command} {report.stack}",
        tests=str(len(report.checks)),
        failures=str(failures),
        errors=str(errors),
        skipped=str(skipped),
        time=f"{report.seconds:.3f}",
    )
    for c in report.checks:
        case = ET.SubElement(suite, "testcase", classname=f"llmfleet.{report.stack}", name=c.target,
                             time=f"{c.seconds:.3f}")  # fmt: skip
        if c.verdict.failing:
            failure = ET.SubElement(case, "failure", message=c.detail, type=c.verdict.value)
            failure.text = "\n".join([*(f"missing: {m}" for m in c.missing),
                                      *(f"not declared: {u}" for u in c.undeclared), *c.notes])  # fmt: skip
        elif c.verdict.could_not_check:
            ET.SubElement(case, "error", message=c.detail, type=c.verdict.value.replace(" ", "_"))
        elif c.verdict is Verdict.NOT_CHECKED:
            ET.SubElement(case, "skipped", message=c.detail)
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


FORMATS = {"text": as_text, "json": as_json, "markdown": as_markdown, "junit": as_junit}
