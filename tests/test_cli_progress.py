"""Progress on stderr for the long runs (probe, up to its deadline; drift --wait): a line per
finished check or attempt when stderr is a terminal, nothing more when it is a log (CI, cron)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from llmfleet._cli import main

from .fleetdir import write_project
from .standins import Route, StandIn, json_route, openai_models, standins

CATALOG = "providers:\n  ollama:\n    kind: ollama\n    models: [qwen2.5:0.5b, llama3.1:8b]\n"
KEY = "sk-progress-5e6f7a8b"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path, CATALOG)


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch) -> StandIn:
    monkeypatch.setenv("LITELLM_MASTER_KEY", KEY)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    with standins(1) as (server,):
        yield server


def on_a_terminal(monkeypatch: pytest.MonkeyPatch, yes: bool) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: yes)


def answer(body: dict) -> Route:
    route = json_route({"choices": [{"message": {"content": "x"}}]})
    route.headers = {"x-litellm-model-id": f"{body['model']}@ollama", "x-litellm-model-group": body["model"]}
    return route


@pytest.mark.parametrize("terminal", [True, False])
def test_probe_shows_each_finished_name_on_a_terminal_only(
    project: Path, gateway: StandIn, capsys, monkeypatch, terminal: bool
) -> None:
    gateway.posts["/v1/chat/completions"] = answer
    on_a_terminal(monkeypatch, terminal)
    code = main(["--project-dir", str(project), "probe", "--stack", "test", "--url", gateway.url])
    out, err = capsys.readouterr()
    assert code == 0, out
    if not terminal:
        assert err == ""
        return
    lines = sorted(err.splitlines())
    assert len(lines) == 2, err
    for line, name in zip(lines, ["llama3.1:8b", "qwen2.5:0.5b"], strict=True):
        assert re.fullmatch(rf"probe: {re.escape(name)} \[model\]: answers \([0-9.]+ s\)", line), line


@pytest.mark.parametrize("terminal", [True, False])
def test_drift_wait_shows_each_attempt_on_a_terminal_only(
    project: Path, gateway: StandIn, capsys, monkeypatch, terminal: bool
) -> None:
    lists = iter([["qwen2.5:0.5b"], ["qwen2.5:0.5b", "llama3.1:8b"]])
    gateway.routes["/v1/models"] = lambda: json_route(openai_models(next(lists)))
    on_a_terminal(monkeypatch, terminal)
    code = main(["--project-dir", str(project), "drift", "--stack", "test", "--url", gateway.url, "--wait", "10"])
    out, err = capsys.readouterr()
    assert code == 0, out
    assert out.startswith("stack 'test': in sync (") and "2 attempts in " in out.splitlines()[0]
    if not terminal:
        assert err == ""
        return
    first, second = err.splitlines()
    assert re.fullmatch(r"drift: attempt 1: drift \(missing: llama3\.1:8b\), [0-9.]+ s of 10 s", first), first
    assert re.fullmatch(r"drift: attempt 2: in sync, [0-9.]+ s of 10 s", second), second


def test_drift_without_wait_shows_no_progress(project: Path, gateway: StandIn, capsys, monkeypatch) -> None:
    gateway.routes["/v1/models"] = json_route(openai_models(["qwen2.5:0.5b", "llama3.1:8b"]))
    on_a_terminal(monkeypatch, True)
    code = main(["--project-dir", str(project), "drift", "--stack", "test", "--url", gateway.url])
    assert (code, capsys.readouterr().err) == (0, "")
