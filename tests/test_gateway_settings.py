"""LiteLLM's own settings in the catalog (`gateway:`) and per-deployment limits: rendered into the
gateway config, checked against the pinned LiteLLM, and obeyed by the real proxy."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

import llmfleet
from components.fleet import required_api_keys

from .fleetdir import BASE_STACK, fleet_of, write_project
from .litellm_proxy import MASTER_KEY, listed_models, running_proxy
from .standins import StandIn, serve_openai_chat, standins

PROJECT = Path(__file__).resolve().parent.parent


def catalog(base_url: str, extra: str = "") -> str:
    return f"""\
providers:
  api:
    kind: external
    api: openai
    base_url: {base_url}
    api_key_env: OPENAI_API_KEY
    limits: {{tpm: 100000}}
    models:
      - {{name: limited, limits: {{rpm: 1}}}}
      - {{name: slow, limits: {{timeout: 1}}}}
      - fast
{extra}"""


def test_limits_and_settings_are_rendered_where_litellm_reads_them(tmp_path: Path) -> None:
    settings = """\
gateway:
  litellm_settings: {cache: true, cache_params: {type: local}}
  router_settings: {num_retries: 0, routing_strategy: simple-shuffle}
  general_settings: {max_request_size_mb: 1}
"""
    config = llmfleet.gateway_config(fleet_of(catalog("https://api.example.com/v1", settings), tmp_path))
    params = {d["model_name"]: d["litellm_params"] for d in config["model_list"]}
    # A model's limits over its provider's.
    assert params["limited"]["rpm"] == 1 and params["limited"]["tpm"] == 100000
    assert params["slow"]["timeout"] == 1 and "rpm" not in params["slow"]
    assert params["fast"]["tpm"] == 100000 and "timeout" not in params["fast"]
    assert config["litellm_settings"] == {"cache": True, "cache_params": {"type": "local"}}
    assert config["router_settings"] == {
        "num_retries": 0,
        "routing_strategy": "simple-shuffle",
        "optional_pre_call_checks": ["enforce_model_rate_limits"],  # for `rpm: 1`
    }
    assert config["general_settings"] == {"max_request_size_mb": 1, "master_key": "os.environ/LITELLM_MASTER_KEY"}


def test_the_gateway_is_given_every_secret_the_settings_read(tmp_path: Path) -> None:
    settings = """\
gateway:
  litellm_settings:
    success_callback: [s3]
    s3_callback_params: {s3_bucket_name: logs, s3_aws_secret_access_key: os.environ/AWS_SECRET_ACCESS_KEY}
"""
    secret = "    AWS_SECRET_ACCESS_KEY: {secure: v1:EEEE}\n"
    stack = BASE_STACK.replace("  llmfleet:masterKey:", secret + "  llmfleet:masterKey:")
    fleet = fleet_of(catalog("https://api.example.com/v1", settings), tmp_path, stack)
    assert fleet.warnings == []
    assert required_api_keys(fleet) == ["AWS_SECRET_ACCESS_KEY", "OPENAI_API_KEY"]
    # The rendered file holds the reference, never a value.
    assert "os.environ/AWS_SECRET_ACCESS_KEY" in llmfleet.render_gateway_config(fleet)


@pytest.mark.litellm
def test_the_committed_known_keys_are_those_of_the_installed_litellm() -> None:
    import subprocess
    import sys

    script = PROJECT / "tools" / "litellm_keys.py"
    code = f"import runpy, sys; sys.stdout.write(runpy.run_path({str(script)!r})['render']())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    committed = (PROJECT / "llmfleet" / "_litellm_keys.py").read_text()
    assert result.stdout == committed, "run: python tools/litellm_keys.py"


def test_validate_never_imports_litellm() -> None:
    import subprocess
    import sys

    code = (
        "import sys, llmfleet, llmfleet._checks, llmfleet._gateway_config; "
        "assert 'litellm' not in sys.modules, 'litellm imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PROJECT, timeout=60)


def _chat(url: str, model: str, timeout: float = 30.0, user: str | None = None) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}
    if user:
        body["user"] = user
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    return httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=timeout)


def _proxy_for(backend: StandIn, extra: str, tmp_path: Path):
    project = write_project(tmp_path, catalog(f"{backend.url}/v1", extra))
    fleet = llmfleet.load_fleet(project, "test")
    return fleet, running_proxy(llmfleet.render_gateway_config(fleet), tmp_path)


@pytest.mark.litellm
def test_the_real_proxy_enforces_per_deployment_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai")  # the stack secret, as the gateway gets it
    with standins(1) as (backend,):
        serve_openai_chat(backend, delays={"slow": 5.0})
        # No router retries, so the slow call's time is that of one attempt.
        fleet, proxy = _proxy_for(backend, "gateway:\n  router_settings: {num_retries: 0}\n", tmp_path)
        with proxy as url:
            assert listed_models(url) == llmfleet.declared_models(fleet.catalog)
            first = _chat(url, "limited")
            assert first.status_code == 200, first.text
            assert backend.requests[-1] == ("/v1/chat/completions", "Bearer sk-test-openai")
            second = _chat(url, "limited")
            assert second.status_code == 429, second.text  # rpm: 1
            assert _chat(url, "fast").status_code == 200  # the limit is that deployment's only
            start = time.monotonic()
            slow = _chat(url, "slow")
            took = time.monotonic() - start
            # timeout: 1 against a backend that answers after 5 s.
            assert slow.status_code == 408, slow.text
            assert took < 4.0, took


@pytest.mark.litellm
def test_the_real_proxy_applies_each_settings_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai")
    settings = """\
gateway:
  litellm_settings: {cache: true, cache_params: {type: local}}
  router_settings: {num_retries: 0, timeout: 1}
  general_settings: {enforce_user_param: true}
"""
    with standins(1) as (backend,):
        serve_openai_chat(backend, delays={"fast": 2.0})
        fleet, proxy = _proxy_for(backend, settings, tmp_path)
        with proxy as url:
            assert listed_models(url) == llmfleet.declared_models(fleet.catalog)
            # litellm_settings: the cache answers the same request a second time; the backend sees it once.
            assert _chat(url, "slow", user="u1").status_code == 200
            assert _chat(url, "slow", user="u1").status_code == 200
            chats = [path for path, _ in backend.requests if path.startswith("/v1/chat")]
            assert len(chats) == 1, chats
            # router_settings: timeout 1 s, no retries, against a backend that answers after 2 s.
            start = time.monotonic()
            assert _chat(url, "fast", user="u1").status_code == 408
            assert time.monotonic() - start < 1.9
            # general_settings: a request without `user` is refused, even with the master key.
            # (The pip build answers a bare 500 here; its log says why.)
            anonymous = _chat(url, "slow")
            assert anonymous.status_code >= 400
            assert "'user' param not passed in. 'enforce_user_param'=True" in (tmp_path / "litellm.log").read_text()


def test_rate_limits_turn_on_litellms_enforcement_once(tmp_path: Path) -> None:
    settings = "gateway:\n  router_settings: {optional_pre_call_checks: [prompt_caching, enforce_model_rate_limits]}\n"
    config = llmfleet.gateway_config(fleet_of(catalog("https://api.example.com/v1", settings), tmp_path))
    assert config["router_settings"]["optional_pre_call_checks"] == ["prompt_caching", "enforce_model_rate_limits"]
    plain = "providers:\n  o:\n    kind: ollama\n    models: [a]\n    limits: {timeout: 5}\n"
    assert "router_settings" not in llmfleet.gateway_config(fleet_of(plain, tmp_path / "plain"))
