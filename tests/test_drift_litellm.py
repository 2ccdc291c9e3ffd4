"""The drift check against the real LiteLLM proxy (1.108.7) started on rendered configs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import llmfleet
from llmfleet._cli import main

from .fleetdir import write_project
from .litellm_proxy import MASTER_KEY, running_proxy, validate_config

pytestmark = pytest.mark.litellm

CATALOG = """\
providers:
  ollama:
    kind: ollama
    models: [qwen2.5:0.5b, llama3.2:1b]
  llama-cpp:
    kind: llama_cpp
    hf: ggml-org/gemma-3-1b-it-GGUF:Q4_K_M
    alias: gemma-3-1b
routes:
  fallbacks:
    qwen2.5:0.5b: [gemma-3-1b]
  aliases:
    chat: qwen2.5:0.5b
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(tmp_path_factory.mktemp("project"), CATALOG)


@pytest.fixture(scope="module")
def rendered(project: Path) -> str:
    return llmfleet.render_gateway_config(llmfleet.load_fleet(project, "test"))


@pytest.fixture(scope="module")
def proxy(rendered: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_proxy(rendered, tmp_path_factory.mktemp("proxy")) as url:
        yield url


def drift(project: Path, url: str, capsys, monkeypatch, key: str = MASTER_KEY) -> tuple[int, dict]:
    monkeypatch.setenv("LITELLM_MASTER_KEY", key)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    code = main(["--project-dir", str(project), "drift", "--stack", "test", "--url", url, "--format", "json"])
    out, _ = capsys.readouterr()
    return code, json.loads(out)


def test_in_sync(project: Path, proxy: str, capsys, monkeypatch) -> None:
    code, report = drift(project, proxy, capsys, monkeypatch)
    assert (code, report["result"], report["checks"][0]["verdict"]) == (0, "in sync", "in sync")
    assert report["declared"] == ["chat", "gemma-3-1b", "llama3.2:1b", "qwen2.5:0.5b"]


def test_wrong_key_could_not_check(project: Path, proxy: str, capsys, monkeypatch) -> None:
    code, report = drift(project, proxy, capsys, monkeypatch, key="sk-not-the-master-key-0000")
    gateway = report["checks"][0]
    assert (code, gateway["verdict"]) == (1, "unauthorized")
    assert "sk-not-the-master-key-0000" not in json.dumps(report)


def test_a_model_litellm_dropped_silently_and_an_undeclared_one(project: Path, rendered: str, capsys, monkeypatch,
                                                                tmp_path: Path) -> None:  # fmt: skip
    config = yaml.safe_load(rendered)
    # A renderer bug: a provider prefix LiteLLM does not know. It drops the entry with only an
    # ERROR log, and --validate_config still says OK.
    lost = next(d for d in config["model_list"] if d["model_name"] == "llama3.2:1b")
    lost["litellm_params"]["model"] = "ollama-chat/llama3.2:1b"
    config["model_list"].append(
        {"model_name": "gpt-4o-mini", "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "unused"}}
    )
    broken = yaml.safe_dump(config, sort_keys=False)
    validated = validate_config(broken, tmp_path)
    assert validated.returncode == 0 and "config OK" in validated.stdout

    with running_proxy(broken, tmp_path) as url:
        code, report = drift(project, url, capsys, monkeypatch)
    gateway = report["checks"][0]
    assert (code, gateway["verdict"]) == (2, "drift")
    assert (gateway["missing"], gateway["undeclared"]) == (["llama3.2:1b"], ["gpt-4o-mini"])
