"""The LiteLLM config derived from a catalog and stack: prefixes, api_base, weights, routing."""

from __future__ import annotations

from pathlib import Path

import yaml

import llmfleet

from .fleetdir import BASE_STACK, fleet_of

EVERY_KIND = """\
providers:
  ollama:
    kind: ollama
    models: [llama3.1:latest, qwen2.5:0.5b]
    context_length: 8192
  vllm:
    kind: vllm
    port: 8001
    model: Qwen/Qwen2.5-Coder-7B-Instruct-AWQ
    served_name: qwen-coder-vllm
    max_model_len: 4096
    gpus: all
  native:
    kind: llama_cpp
    hf: ggml-org/gemma-3-1b-it-GGUF:Q4_K_M
    alias: llama-cpp-native
  python:
    kind: llama_cpp_python
    port: 8002
    gguf: /models/x.gguf
    alias: llama-cpp-default
  cloud:
    kind: external
    api: ollama
    base_url: https://ollama.com
    api_key_env: OLLAMA_API_KEY
    models: [{name: gpt-oss:20b-cloud, upstream: gpt-oss:20b}, {name: big, upstream: gpt-oss:120b}]
  openai:
    kind: external
    api: openai
    base_url: https://api.openai.com/v1
    models: [gpt-4o-mini]
routes:
  groups:
    llama3.1:latest:
      - {provider: ollama, model: llama3.1:latest, weight: 0.7}
      - {provider: python, weight: 0.3}
  fallbacks:
    llama3.1:latest: [llama-cpp-default, gpt-oss:20b-cloud]
  context_window_fallbacks:
    qwen-coder-vllm: [big]
  aliases:
    code: qwen-coder-vllm
    secret-code: {model: qwen-coder-vllm, hidden: true}
"""


def deployments(config: dict) -> dict[str, dict]:
    return {d["model_info"]["id"]: d for d in config["model_list"]}


def test_each_kind_gets_its_prefix_and_api_base(tmp_path: Path) -> None:
    config = llmfleet.gateway_config(fleet_of(EVERY_KIND, tmp_path))
    by_id = {i: d["litellm_params"] for i, d in deployments(config).items()}
    assert by_id == {
        "qwen2.5:0.5b@ollama": {"model": "ollama_chat/qwen2.5:0.5b", "api_base": "http://ollama:11434"},
        "qwen-coder-vllm@vllm": {"model": "hosted_vllm/qwen-coder-vllm", "api_base": "http://vllm:8001/v1"},
        "llama-cpp-native@native": {
            "model": "openai/llama-cpp-native",
            "api_base": "http://native:8080/v1",
            "api_key": "no-key",
        },
        "llama-cpp-default@python": {
            "model": "openai/llama-cpp-default",
            "api_base": "http://python:8002/v1",
            "api_key": "no-key",
        },
        "gpt-oss:20b-cloud@cloud": {
            "model": "ollama_chat/gpt-oss:20b",
            "api_base": "https://ollama.com",
            "api_key": "os.environ/OLLAMA_API_KEY",
        },
        "big@cloud": {
            "model": "ollama_chat/gpt-oss:120b",
            "api_base": "https://ollama.com",
            "api_key": "os.environ/OLLAMA_API_KEY",
        },
        "gpt-4o-mini@openai": {"model": "openai/gpt-4o-mini", "api_base": "https://api.openai.com/v1"},
        "llama3.1:latest@ollama": {
            "model": "ollama_chat/llama3.1:latest",
            "api_base": "http://ollama:11434",
            "weight": 0.7,
        },
        "llama3.1:latest@python": {
            "model": "openai/llama-cpp-default",
            "api_base": "http://python:8002/v1",
            "api_key": "no-key",
            "weight": 0.3,
        },
    }


def test_model_info_carries_context_length(tmp_path: Path) -> None:
    config = llmfleet.gateway_config(fleet_of(EVERY_KIND, tmp_path))
    infos = {i: d["model_info"] for i, d in deployments(config).items()}
    assert infos["qwen2.5:0.5b@ollama"] == {"id": "qwen2.5:0.5b@ollama", "max_input_tokens": 8192}
    assert infos["qwen-coder-vllm@vllm"] == {"id": "qwen-coder-vllm@vllm", "max_input_tokens": 4096}
    assert infos["llama-cpp-native@native"] == {"id": "llama-cpp-native@native"}


def test_routing_settings(tmp_path: Path) -> None:
    config = llmfleet.gateway_config(fleet_of(EVERY_KIND, tmp_path))
    assert config["router_settings"] == {
        "fallbacks": [{"llama3.1:latest": ["llama-cpp-default", "gpt-oss:20b-cloud"]}],
        # Aliases, hidden or not, carry their model's chain: LiteLLM keys fallbacks by the name asked for.
        "context_window_fallbacks": [{"qwen-coder-vllm": ["big"]}, {"code": ["big"]}, {"secret-code": ["big"]}],
        "enable_pre_call_checks": True,
        "model_group_alias": {"code": "qwen-coder-vllm", "secret-code": {"model": "qwen-coder-vllm", "hidden": True}},
    }
    assert config["general_settings"] == {"master_key": "os.environ/LITELLM_MASTER_KEY"}
    assert list(config) == ["model_list", "router_settings", "general_settings"]


def test_remote_provider_is_reached_through_its_host_address(tmp_path: Path) -> None:
    stack = (
        BASE_STACK
        + """\
  llmfleet:hosts:
    edge: {}
    gpu-1: {docker: "ssh://ops@gpu-1", address: 10.0.0.11}
  llmfleet:providers:
    vllm: {host: gpu-1}
"""
    )
    config = llmfleet.gateway_config(fleet_of(EVERY_KIND, tmp_path, stack))
    by_id = deployments(config)
    assert by_id["qwen-coder-vllm@vllm"]["litellm_params"]["api_base"] == "http://10.0.0.11:8001/v1"
    assert by_id["qwen2.5:0.5b@ollama"]["litellm_params"]["api_base"] == "http://ollama:11434"


def test_rendered_yaml_round_trips_and_names_its_source(tmp_path: Path) -> None:
    fleet = fleet_of(EVERY_KIND, tmp_path)
    text = llmfleet.render_gateway_config(fleet)
    assert text.startswith("# Generated by llmfleet from config/catalog.yaml for stack 'test'. Do not edit.\n")
    assert yaml.safe_load(text) == llmfleet.gateway_config(fleet)


def test_declared_set_is_served_names_groups_and_visible_aliases(tmp_path: Path) -> None:
    assert llmfleet.declared_models(fleet_of(EVERY_KIND, tmp_path).catalog) == [
        "big",
        "code",
        "gpt-4o-mini",
        "gpt-oss:20b-cloud",
        "llama-cpp-default",
        "llama-cpp-native",
        "llama3.1:latest",
        "qwen-coder-vllm",
        "qwen2.5:0.5b",
    ]


def test_declared_set_does_not_read_the_renderer(tmp_path: Path, monkeypatch) -> None:
    """A renderer that drops a deployment must not change the declared set: that is how drift shows."""
    fleet = fleet_of(EVERY_KIND, tmp_path)
    before = llmfleet.declared_models(fleet.catalog)
    monkeypatch.setattr("llmfleet._gateway_config.gateway_config", lambda f: {"model_list": []})
    assert llmfleet.declared_models(fleet.catalog) == before


# The replaced system's 12 gateway models (the seed), by their public names.
SEED = [
    "llama3.1:latest", "qwen2.5-coder:7b", "mythomax-l2-13b-q5_k_m", "llama-cpp-default", "llama-cpp-native",
    "qwen-coder-vllm", "deepseek-v3.1:671b-cloud", "qwen3-coder:480b-cloud", "kimi-k2:1t-cloud", "gpt-oss:120b-cloud",
    "gpt-oss:20b-cloud", "glm-4.6:cloud",
]  # fmt: skip


def test_prod_keeps_the_public_names_and_asks_each_server_for_what_it_serves() -> None:
    fleet = llmfleet.load_fleet(Path(__file__).resolve().parent.parent, "prod")
    declared = llmfleet.declared_models(fleet.catalog)
    assert set(SEED) <= set(declared) and len(set(declared) - set(SEED)) == 6  # + the 6 capability aliases
    asked = {d["model_name"]: d["litellm_params"]["model"] for d in llmfleet.gateway_config(fleet)["model_list"]}
    # ollama.com serves its cloud models without the -cloud suffix.
    assert {n: m for n, m in asked.items() if n.endswith("cloud")} == {
        "deepseek-v3.1:671b-cloud": "ollama_chat/deepseek-v3.1:671b",
        "qwen3-coder:480b-cloud": "ollama_chat/qwen3-coder:480b",
        "kimi-k2:1t-cloud": "ollama_chat/kimi-k2:1t",
        "gpt-oss:120b-cloud": "ollama_chat/gpt-oss:120b",
        "gpt-oss:20b-cloud": "ollama_chat/gpt-oss:20b",
        "glm-4.6:cloud": "ollama_chat/glm-4.6",
    }
    # MythoMax is not in Ollama's library: Ollama pulls TheBloke's GGUF and lists it by that reference.
    assert asked["mythomax-l2-13b-q5_k_m"] == "ollama_chat/hf.co/TheBloke/MythoMax-L2-13B-GGUF:Q5_K_M"
