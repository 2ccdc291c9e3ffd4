"""`models --diff-against`: the model-name and route diff a pull request comment shows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmfleet._cli import main

from .fleetdir import write_project

BASE = """\
providers:
  ollama:
    kind: ollama
    models: [qwen2.5:0.5b, llama3.1:latest]
  cpp:
    kind: llama_cpp
    gguf: /models/g.gguf
    alias: gemma
routes:
  fallbacks:
    qwen2.5:0.5b: [gemma]
  aliases:
    chat: qwen2.5:0.5b
    code: gemma
"""
HEAD = """\
providers:
  ollama:
    kind: ollama
    models: [qwen2.5:0.5b, qwen2.5:1.5b]
  cpp:
    kind: llama_cpp
    gguf: /models/g.gguf
    alias: gemma
routes:
  fallbacks:
    qwen2.5:0.5b: [qwen2.5:1.5b, gemma]
  aliases:
    chat: qwen2.5:1.5b
    code: {model: gemma, hidden: true}
"""


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def checkouts(tmp_path: Path) -> tuple[Path, Path]:
    return write_project(tmp_path / "base", BASE), write_project(tmp_path / "head", HEAD)


def test_names_that_appear_and_disappear_and_changed_routes(checkouts, capsys) -> None:
    base, head = checkouts
    assert run(capsys, "--project-dir", str(head), "models", "--stack", "test", "--diff-against", str(base)) == (
        0,
        "+ qwen2.5:1.5b\n"
        "- code\n"
        "- llama3.1:latest\n"
        "~ routes.aliases.chat: qwen2.5:0.5b  =>  qwen2.5:1.5b\n"
        "~ routes.aliases.code: gemma  =>  gemma (hidden)\n"
        "~ routes.fallbacks['qwen2.5:0.5b']: qwen2.5:0.5b -> gemma  =>  qwen2.5:0.5b -> qwen2.5:1.5b -> gemma\n",
        "",
    )


def test_markdown_for_a_pr_comment(checkouts, capsys) -> None:
    base, head = checkouts
    code, out, _ = run(capsys, "--project-dir", str(head), "models", "--stack", "test", "--diff-against", str(base),
                       "--markdown")  # fmt: skip
    assert code == 0
    assert out.startswith("**llmfleet** stack `test`: changes to the gateway's models and routes\n\n```diff\n+ qwen2")
    assert out.endswith("```\n")


def test_no_change(checkouts, capsys) -> None:
    base, _ = checkouts
    argv = ["--project-dir", str(base), "models", "--stack", "test", "--diff-against", str(base), "--markdown"]
    assert run(capsys, *argv) == (0, "**llmfleet** stack `test`: no change to the gateway's models or routes.\n", "")


def test_a_stack_new_in_the_change_is_all_additions(checkouts, capsys, tmp_path: Path) -> None:
    _, head = checkouts
    empty = tmp_path / "empty"
    (empty / "stacks").mkdir(parents=True)
    code, out, _ = run(capsys, "--project-dir", str(head), "models", "--stack", "test", "--diff-against", str(empty),
                       "--json")  # fmt: skip
    assert code == 0
    assert json.loads(out)[:3] == ["+ chat", "+ gemma", "+ qwen2.5:0.5b"]
