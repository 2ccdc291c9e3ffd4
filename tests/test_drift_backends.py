"""--backends against stand-ins answering like Ollama, vLLM, llama-server and llama-cpp-python;
--wait polling; the report formats; the job summary; the key never printed."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from llmfleet._cli import main

from .fleetdir import BASE_STACK, write_project
from .standins import (
    StandIn,
    json_route,
    openai_models,
    serve_llama_cpp_python,
    serve_llama_server,
    serve_ollama,
    serve_vllm,
    standins,
)

KEY = "sk-backends-9a8b7c6d5e4f"
DECLARED = ["code", "gemma", "llama3.1", "qwen-coder", "qwen2.5:0.5b", "tiny"]


def catalog(ports: list[int]) -> str:
    return f"""\
providers:
  ollama:
    kind: ollama
    port: {ports[0]}
    models: [qwen2.5:0.5b, llama3.1]
  vllm:
    kind: vllm
    port: {ports[1]}
    model: Qwen/Qwen2.5-Coder-7B-Instruct-AWQ
    served_name: qwen-coder
    gpus: all
  native:
    kind: llama_cpp
    port: {ports[2]}
    hf: ggml-org/gemma-3-1b-it-GGUF
    alias: gemma
  python:
    kind: llama_cpp_python
    port: {ports[3]}
    gguf: /models/tiny.gguf
    alias: tiny
routes:
  aliases:
    code: qwen-coder
"""


PUBLISHED = (
    BASE_STACK
    + """\
  llmfleet:providers:
    ollama: {publish: true}
    vllm: {publish: true}
    native: {publish: true}
    python: {publish: true}
"""
)


@pytest.fixture
def servers() -> list[StandIn]:
    with standins(5) as found:
        gateway, ollama, vllm, native, python = found
        gateway.routes["/v1/models"] = json_route(openai_models(DECLARED))
        serve_ollama(ollama, ["qwen2.5:0.5b", "llama3.1:latest", "nomic-embed-text:latest"])
        serve_vllm(vllm, "qwen-coder")
        serve_llama_server(native, "gemma")
        serve_llama_cpp_python(python, "tiny")
        yield found


@pytest.fixture
def project(tmp_path: Path, servers: list[StandIn]) -> Path:
    return write_project(tmp_path / "p", catalog([s.port for s in servers[1:]]), PUBLISHED)


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITELLM_MASTER_KEY", KEY)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def drift(project: Path, url: str, capsys, *extra: str) -> tuple[int, str, str]:
    code = main(["--project-dir", str(project), "drift", "--stack", "test", "--url", url, "--backends",
                 "--timeout", "0.5", "--deadline", "5", *extra])  # fmt: skip
    out, err = capsys.readouterr()
    return code, out, err


def test_all_in_sync(project: Path, servers: list[StandIn], capsys) -> None:
    code, out, err = drift(project, servers[0].url, capsys)
    assert (code, err) == (0, "")
    assert out.splitlines()[1:] == [
        "  gateway [litellm]: in sync",
        "  ollama [ollama]: in sync",
        "  vllm [vllm]: in sync",
        "  native [llama_cpp]: in sync",
        "  python [llama_cpp_python]: in sync",
    ]
    # The backends are asked without the gateway's key.
    assert all(auth is None for s in servers[1:] for _, auth in s.requests)


def test_a_broken_backend_says_why_its_gateway_model_is_broken(project: Path, servers: list[StandIn], capsys) -> None:
    _, ollama, vllm, native, python = servers
    serve_ollama(ollama, ["qwen2.5:0.5b"])
    serve_llama_server(native, "gemma", loading=True)
    serve_vllm(vllm, "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ")  # started without --served-model-name
    serve_llama_cpp_python(python, "/models/tiny.gguf")
    code, out, _ = drift(project, servers[0].url, capsys)
    assert code == 2
    assert out.splitlines()[1:] == [
        "  gateway [litellm]: in sync",
        "  ollama [ollama]: drift",
        "    llama3.1: not pulled on ollama",
        "  vllm [vllm]: drift",
        "    qwen-coder: not served by vllm (it serves: Qwen/Qwen2.5-Coder-7B-Instruct-AWQ)",
        "  native [llama_cpp]: drift",
        "    gemma: not loaded on native (/health: 503, loading)",
        "  python [llama_cpp_python]: drift",
        "    tiny: not served by python (it serves: /models/tiny.gguf)",
    ]


def test_ollama_with_no_models_answers_null_and_that_is_empty(project: Path, servers, capsys) -> None:
    servers[1].routes["/api/tags"] = json_route({"models": None})
    code, out, _ = drift(project, servers[0].url, capsys)
    assert code == 2
    assert "    qwen2.5:0.5b: not pulled on ollama" in out.splitlines()


ONLY_VLLM_PUBLISHED = BASE_STACK + "  llmfleet:providers:\n    vllm: {publish: true}\n"


def test_unpublished_backends_could_not_be_checked_and_say_what_to_set(
    tmp_path: Path, servers: list[StandIn], capsys
) -> None:
    # --backends asks for every backend; one the stack does not publish is a check not done: exit 1,
    # "could not check", naming each and the key that makes it checkable (it was "not checked", exit 0).
    project = write_project(tmp_path / "q", catalog([s.port for s in servers[1:]]), ONLY_VLLM_PUBLISHED)
    code, out, err = drift(project, servers[0].url, capsys)
    assert (code, err) == (1, "")
    fix = (
        "this check cannot reach it: set `llmfleet:providers.{}.publish: true` in stacks/Pulumi.test.yaml (its "
        "port on 127.0.0.1 of the gateway's host) and run the check on that host, or check without --backends"
    )
    assert out.splitlines()[0].startswith(f"stack 'test': could not check (gateway {servers[0].url}, ")
    assert out.splitlines()[1:] == [
        "  gateway [litellm]: in sync",
        "  vllm [vllm]: in sync",
        f"  ollama [ollama]: not published: {fix.format('ollama')}",
        f"  native [llama_cpp]: not published: {fix.format('native')}",
        f"  python [llama_cpp_python]: not published: {fix.format('python')}",
    ]
    code, out, _ = drift(project, servers[0].url, capsys, "--format", "junit")
    suite = ET.fromstring(out)
    assert (code, suite.get("errors"), suite.get("skipped")) == (1, "3", "0")
    # Drift found where it could look still wins: exit 2.
    servers[2].routes["/v1/models"] = json_route(openai_models(["something-else"]))
    assert drift(project, servers[0].url, capsys)[0] == 2
    # Waiting publishes nothing: --wait returns after the first attempt instead of polling to its end.
    servers[2].routes["/v1/models"] = json_route(openai_models(["qwen-coder"]))
    code, out, _ = drift(project, servers[0].url, capsys, "--wait", "30")
    assert code == 1 and "(gateway " in out and ", 1 attempt in " in out.splitlines()[0]
    # Without --backends nothing changes: the gateway alone, in sync, exit 0.
    code = main(["--project-dir", str(project), "drift", "--stack", "test", "--url", servers[0].url])
    assert (code, capsys.readouterr().out.splitlines()[1:]) == (0, ["  gateway [litellm]: in sync"])


def test_wait_polls_until_in_sync(project: Path, servers: list[StandIn], capsys) -> None:
    answers = iter([openai_models(DECLARED[:2]), openai_models(DECLARED[:4])])
    servers[0].routes["/v1/models"] = lambda: json_route(next(answers, openai_models(DECLARED)))
    code, out, _ = drift(project, servers[0].url, capsys, "--wait", "20")
    assert code == 0
    assert "3 attempts in " in out.splitlines()[0]


def test_wait_gives_up_at_its_deadline(project: Path, servers: list[StandIn], capsys) -> None:
    servers[0].routes["/v1/models"] = json_route(openai_models(DECLARED[1:]))
    code, out, _ = drift(project, servers[0].url, capsys, "--wait", "3")
    assert code == 2
    assert "    - code: declared, not served" in out.splitlines()


def test_json_junit_markdown_and_job_summary(project: Path, servers, capsys, tmp_path, monkeypatch) -> None:
    servers[0].routes["/v1/models"] = json_route(openai_models([*DECLARED[1:], "surprise"]))
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))

    code, out, err = drift(project, servers[0].url, capsys, "--format", "json")
    report = json.loads(out)
    assert (code, err) == (2, "stack 'test': drift\n")
    assert (report["result"], report["exit_code"], report["declared"]) == ("drift", 2, DECLARED)
    assert report["checks"][0] | {"seconds": 0} == {
        "target": "gateway", "kind": "litellm", "url": f"{servers[0].url}/v1/models", "verdict": "drift",
        "missing": ["code"], "undeclared": ["surprise"], "detail": "missing: code; not declared: surprise",
        "notes": [], "seconds": 0,
    }  # fmt: skip

    junit = tmp_path / "drift.xml"
    code, out, err = drift(project, servers[0].url, capsys, "--format", "junit", "--output", str(junit))
    assert (code, out) == (2, "")
    suite = ET.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("5", "1", "0")
    failure = suite.find("testcase[@name='gateway']/failure")
    assert failure.get("message") == "missing: code; not declared: surprise"

    text = summary.read_text()
    assert text.startswith("earlier step\n### ❌ llmfleet drift: stack `test`: drift\n")
    assert "| gateway | litellm | drift | `code` | `surprise` |" in text
    assert KEY not in out + err + text + junit.read_text()


def test_ollama_models_are_looked_for_under_what_ollama_was_asked_for(tmp_path: Path, servers, capsys) -> None:
    # A Hugging Face pull is listed under its reference, case kept as written; a model created from
    # a file under its declared name (both as the real Ollama lists them: tests/test_ollama_real.py).
    gateway, ollama = servers[0], servers[1]
    text = catalog([s.port for s in servers[1:]]).replace(
        "models: [qwen2.5:0.5b, llama3.1]",
        'models: [{name: myth, pull: "hf.co/TheBloke/MythoMax-L2-13B-GGUF:Q5_K_M"}, '
        "{name: house, gguf: /models/h.gguf}]",
    )
    project = write_project(tmp_path / "sources", text, PUBLISHED)
    gateway.routes["/v1/models"] = json_route(openai_models(["code", "gemma", "house", "myth", "qwen-coder", "tiny"]))
    serve_ollama(ollama, ["hf.co/TheBloke/MythoMax-L2-13B-GGUF:Q5_K_M", "house:latest"])
    code, out, err = drift(project, gateway.url, capsys)
    assert (code, err) == (0, ""), out
    assert "  ollama [ollama]: in sync" in out.splitlines()

    # Listed under another spelling: one model to Ollama, but not one its 0.14.1 chat finds by ours.
    serve_ollama(ollama, ["hf.co/thebloke/mythomax-l2-13b-gguf:q5_k_m", "house:latest"])
    code, out, _ = drift(project, gateway.url, capsys)
    assert code == 2
    assert out.splitlines()[2:4] == [
        "  ollama [ollama]: drift",
        "    myth (as hf.co/TheBloke/MythoMax-L2-13B-GGUF:Q5_K_M): listed on ollama only as "
        "'hf.co/thebloke/mythomax-l2-13b-gguf:q5_k_m', a spelling that Ollama before 0.16.2 answers chat for "
        "instead of 'hf.co/TheBloke/MythoMax-L2-13B-GGUF:Q5_K_M'",
    ]

    serve_ollama(ollama, [])
    code, out, _ = drift(project, gateway.url, capsys)
    assert code == 2
    assert out.splitlines()[2:5] == [
        "  ollama [ollama]: drift",
        "    myth (as hf.co/TheBloke/MythoMax-L2-13B-GGUF:Q5_K_M): not pulled on ollama",
        "    house: not created on ollama",
    ]
