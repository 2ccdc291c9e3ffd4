"""Reports and annotations survive real error text: LiteLLM's messages hold newlines, blank lines
and `|`; a key or a file name can hold anything GitHub's workflow commands treat as syntax."""

from __future__ import annotations

import re

from llmfleet import Problem, Verdict
from llmfleet._drift_report import as_markdown, as_text
from llmfleet._report import CheckResult, Report

# Shaped like LiteLLM 1.108's error for a dead backend: several lines, a blank one, a pipe.
LITELLM_ERROR = (
    "HTTP 500: litellm.APIConnectionError: OpenAIException - Connection error.\n"
    "\n"
    "Received Model Group=tiny-native\n"
    "Available Model Group Fallbacks=None | LiteLLM Retried: 1 times"
)


def probe_report() -> Report:
    failing = CheckResult("tiny-native", "model", None, Verdict.FAILS, detail=LITELLM_ERROR)
    fine = CheckResult("chat", "alias", None, Verdict.ANSWERS, notes=["answered by tiny-ollama@ollama"])
    return Report("e2e", "http://127.0.0.1:4000", ["chat", "tiny-native"], [failing, fine], command="probe")


def test_markdown_keeps_one_row_per_check_whatever_the_text_holds() -> None:
    table = [line for line in as_markdown(probe_report()).splitlines() if line.startswith("|")]
    # Header, separator, two checks; probe has no missing/not-declared columns.
    assert table[0] == "| check | kind | verdict | detail |" and len(table) == 4
    assert table[2] == (
        "| tiny-native | model | fails | HTTP 500: litellm.APIConnectionError: OpenAIException - Connection error."
        "<br><br>Received Model Group=tiny-native<br>"
        "Available Model Group Fallbacks=None \\| LiteLLM Retried: 1 times |"
    )
    assert all(len(re.findall(r"(?<!\\)\|", line)) == 5 for line in table)  # four cells, whatever they hold


def test_drift_markdown_keeps_its_list_columns() -> None:
    report = Report("e2e", "http://gw", ["a"], [CheckResult("gateway", "litellm", None, Verdict.DRIFT, missing=["a"])])
    assert "| check | kind | verdict | missing | not declared | detail |" in as_markdown(report)


def test_text_report_indents_every_line_of_a_detail_under_its_check() -> None:
    lines = as_text(probe_report()).splitlines()
    start = lines.index("  tiny-native [model]: fails: HTTP 500: litellm.APIConnectionError: OpenAIException - "
                        "Connection error.")  # fmt: skip
    assert lines[start + 1 : start + 4] == [
        "",
        "      Received Model Group=tiny-native",
        "      Available Model Group Fallbacks=None | LiteLLM Retried: 1 times",
    ]
    assert lines[start + 4] == "  chat [alias]: answers"


def test_github_annotations_escape_what_workflow_commands_treat_as_syntax() -> None:
    problem = Problem("config/a,b:c.yaml", 3, 5, ("providers", "ollama"), "100% wrong\nsee above", "rule-x")
    assert problem.format_github() == (
        "::error file=config/a%2Cb%3Ac.yaml,line=3,col=5::providers.ollama: 100%25 wrong%0Asee above. (rule-x)"
    )


def test_the_text_header_counts_in_english_and_rounds_the_time() -> None:
    one = Report("e2e", "http://gw", ["a"], [CheckResult("gateway", "litellm", None, Verdict.IN_SYNC)],
                 attempts=1, seconds=6.54174)  # fmt: skip
    assert (
        as_text(one).splitlines()[0] == "stack 'e2e': in sync (gateway http://gw, 1 declared name, 1 attempt in 6.5 s)"
    )
    three = Report("e2e", "http://gw", ["a", "b"], one.checks, attempts=3, seconds=0.25)
    assert as_text(three).splitlines()[0] == (
        "stack 'e2e': in sync (gateway http://gw, 2 declared names, 3 attempts in 0.25 s)"
    )


def test_a_probe_header_has_no_attempts_and_markdown_rounds_the_time() -> None:
    report = probe_report()
    report.seconds = 12.3456
    assert as_text(report).splitlines()[0] == (
        "stack 'e2e': failing (gateway http://127.0.0.1:4000, 2 declared names, 12 s)"
    )
    assert "Gateway `http://127.0.0.1:4000`, 2 declared names, checked in 12 s." in as_markdown(report)


def test_a_failing_backend_s_detail_is_printed_once() -> None:
    notes = ["tiny-native: HTTP 500: model failed to load", "tiny-2: HTTP 500: out of memory"]
    backend = CheckResult("native", "llama_cpp", "http://10.0.0.2:8080", Verdict.FAILS, detail="; ".join(notes),
                          notes=list(notes))  # fmt: skip
    report = Report("e2e", "http://gw", ["tiny-native"], [backend], command="probe")
    assert as_text(report).splitlines()[1:] == [
        "  native [llama_cpp]: fails",
        "    tiny-native: HTTP 500: model failed to load",
        "    tiny-2: HTTP 500: out of memory",
    ]
    assert as_markdown(report).count("model failed to load") == 1
