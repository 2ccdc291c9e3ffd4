"""External APIs LiteLLM serves by prefix: rendered as LiteLLM expects each one, accepted by the
real proxy (which drops an entry it cannot route, with only a log line), and called through it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

import llmfleet

from .fleetdir import BASE_STACK, fleet_of, write_project
from .litellm_proxy import MASTER_KEY, listed_models, running_proxy, validate_config
from .standins import serve_openai_chat, standins

KEYS = ["ANTHROPIC_API_KEY", "GEMINI_API_KEY", "AZURE_API_KEY", "OPENROUTER_API_KEY", "GROQ_API_KEY"]
STACK = BASE_STACK.replace(
    "  llmfleet:masterKey:", "".join(f"    {k}: {{secure: v1:EEEE}}\n" for k in KEYS) + "  llmfleet:masterKey:"
)


def every_api(base: str = "") -> str:
    """One provider per API; `base` (a stand-in's URL) replaces the endpoints of OpenRouter and Groq."""
    openrouter = f"\n    base_url: {base}/v1" if base else ""
    groq = f"\n    base_url: {base}/v1" if base else ""
    return f"""\
providers:
  claude:
    kind: external
    api: anthropic
    api_key_env: ANTHROPIC_API_KEY
    models: [claude-sonnet-4-5]
  gemini:
    kind: external
    api: gemini
    api_key_env: GEMINI_API_KEY
    models: [gemini-2.5-flash]
  azure:
    kind: external
    api: azure
    base_url: https://example-resource.openai.azure.com
    api_version: "2024-10-21"
    api_key_env: AZURE_API_KEY
    models: [{{name: gpt-4o, upstream: my-gpt4o-deployment}}]
  openrouter:
    kind: external
    api: openrouter{openrouter}
    api_key_env: OPENROUTER_API_KEY
    models: [{{name: sonnet-via-openrouter, upstream: anthropic/claude-sonnet-4.5}}]
  groq:
    kind: external
    api: groq{groq}
    api_key_env: GROQ_API_KEY
    models: [llama-3.3-70b-versatile]
  openai:
    kind: external
    api: openai
    api_key_env: OPENAI_API_KEY
    models: [gpt-4o-mini]
"""


def test_each_api_is_rendered_with_its_prefix_and_only_the_endpoints_litellm_lacks(tmp_path: Path) -> None:
    config = llmfleet.gateway_config(fleet_of(every_api(), tmp_path, STACK))
    params = {d["model_name"]: d["litellm_params"] for d in config["model_list"]}
    assert params == {
        "claude-sonnet-4-5": {"model": "anthropic/claude-sonnet-4-5", "api_key": "os.environ/ANTHROPIC_API_KEY"},
        "gemini-2.5-flash": {"model": "gemini/gemini-2.5-flash", "api_key": "os.environ/GEMINI_API_KEY"},
        "gpt-4o": {
            "model": "azure/my-gpt4o-deployment",
            "api_base": "https://example-resource.openai.azure.com",
            "api_version": "2024-10-21",
            "api_key": "os.environ/AZURE_API_KEY",
        },
        "sonnet-via-openrouter": {
            "model": "openrouter/anthropic/claude-sonnet-4.5",
            "api_key": "os.environ/OPENROUTER_API_KEY",
        },
        "llama-3.3-70b-versatile": {"model": "groq/llama-3.3-70b-versatile", "api_key": "os.environ/GROQ_API_KEY"},
        "gpt-4o-mini": {"model": "openai/gpt-4o-mini", "api_key": "os.environ/OPENAI_API_KEY"},
    }


@pytest.mark.litellm
def test_the_real_proxy_serves_every_api_and_calls_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [*KEYS, "OPENAI_API_KEY"]:
        monkeypatch.setenv(key, f"sk-test-{key.lower()}")
    with standins(1) as (backend,):
        serve_openai_chat(backend, fields={"service_tier": "on_demand"})  # as Groq answers
        fleet = llmfleet.load_fleet(write_project(tmp_path, every_api(backend.url), STACK), "test")
        rendered = llmfleet.render_gateway_config(fleet)
        with running_proxy(rendered, tmp_path) as url:
            # Nothing dropped: an entry LiteLLM cannot route would be missing here.
            assert listed_models(url) == llmfleet.declared_models(fleet.catalog)
            for name, key, upstream in [
                ("sonnet-via-openrouter", "OPENROUTER_API_KEY", "anthropic/claude-sonnet-4.5"),
                ("llama-3.3-70b-versatile", "GROQ_API_KEY", "llama-3.3-70b-versatile"),
            ]:
                body = {"model": name, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}
                answer = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30,
                                    headers={"Authorization": f"Bearer {MASTER_KEY}"})  # fmt: skip
                assert answer.status_code == 200, answer.text
                # The API's own name and the key from the stack secret reached the endpoint.
                assert answer.json()["model"] in (name, upstream)
                assert backend.requests[-1] == ("/v1/chat/completions", f"Bearer sk-test-{key.lower()}")
    result = validate_config(rendered, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "config OK (6 models)" in result.stdout
