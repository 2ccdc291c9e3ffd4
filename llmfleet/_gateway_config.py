"""The LiteLLM proxy config, derived from a Fleet.

Only keys LiteLLM 1.108 knows are written: it ignores unknown top-level and general_settings
keys silently and turns unknown litellm_settings keys into module attributes, so a typo here
would not fail; tests start the real proxy on what this renders.
"""

from __future__ import annotations

from typing import Any

from ._catalog import (
    EXTERNAL_PREFIX,
    Alias,
    DeploymentLimits,
    ExternalProvider,
    LlamaCppProvider,
    LlamaCppPythonProvider,
    OllamaProvider,
    VllmProvider,
    deployment_id,
)
from ._load import Fleet, paused_gc
from ._stack import url_host
from ._yaml_emit import dump_yaml

MASTER_KEY_ENV = "LITELLM_MASTER_KEY"
# llama-server and llama-cpp-python run without --api-key, but LiteLLM's OpenAI client wants one.
UNUSED_API_KEY = "no-key"
RATE_LIMITS = "enforce_model_rate_limits"  # LiteLLM's pre-call check that refuses calls over rpm/tpm


def backend_root(fleet: Fleet, provider: str) -> str:
    """How the gateway reaches a local provider: its DNS alias on the shared network, or the
    address of the remote host it runs on and its published port."""
    p = fleet.catalog.providers[provider]
    assert not isinstance(p, ExternalProvider), provider
    if fleet.stack.on_kubernetes or fleet.stack.host_of(provider) == fleet.stack.gateway_host:
        return f"http://{provider}:{p.listen_port}"  # a Kubernetes server's Service has the provider's name
    return f"http://{url_host(fleet.stack.publish_ip(provider) or '')}:{p.listen_port}"


def _params(fleet: Fleet, provider: str, served: str) -> dict[str, Any]:
    p = fleet.catalog.providers[provider]
    if isinstance(p, OllamaProvider):
        # Ollama's native chat API; api_base is the bare root, without /v1.
        return {"model": f"ollama_chat/{p.ollama_name(served)}", "api_base": backend_root(fleet, provider)}
    if isinstance(p, VllmProvider):
        return {"model": f"hosted_vllm/{served}", "api_base": backend_root(fleet, provider) + "/v1"}
    if isinstance(p, LlamaCppProvider | LlamaCppPythonProvider):
        return {
            "model": f"openai/{served}",
            "api_base": backend_root(fleet, provider) + "/v1",
            "api_key": UNUSED_API_KEY,
        }
    assert isinstance(p, ExternalProvider)
    upstream = next(m.upstream_name for m in p.models if m.name == served)
    params: dict[str, Any] = {"model": f"{EXTERNAL_PREFIX[p.api]}/{upstream}"}
    if p.base_url:  # else LiteLLM's own endpoint for the API
        params["api_base"] = p.base_url
    if p.api_version:
        params["api_version"] = p.api_version
    if p.api_key_env:
        params["api_key"] = f"os.environ/{p.api_key_env}"
    return params


def _limits(p: Any, served: str) -> DeploymentLimits | None:
    """A model's limits over its provider's (Ollama and external models carry their own)."""
    own = next((m.limits for m in getattr(p, "models", []) if m.name == served), None)
    return own.over(p.limits) if own else p.limits


def _deployment(fleet: Fleet, model_name: str, provider: str, served: str, weight: float | None) -> dict[str, Any]:
    params = _params(fleet, provider, served)
    limits = _limits(fleet.catalog.providers[provider], served)
    if limits:
        params.update(limits.params())
    if weight is not None:
        params["weight"] = weight
    info: dict[str, Any] = {"id": deployment_id(model_name, provider)}
    context = fleet.catalog.providers[provider].context_length
    if context:
        info["max_input_tokens"] = context
    return {"model_name": model_name, "litellm_params": params, "model_info": info}


def _chains(chains: dict[str, list[str]], aliases: dict[str, Alias]) -> list[dict[str, list[str]]]:
    """LiteLLM's `[{source: [targets]}]`, plus the same chain keyed by every alias of a source.

    LiteLLM looks fallbacks up by the group name the request used, and a request by alias does not
    inherit its target's (verified on 1.108.7: "model group 'chat' failed ... no fallback model
    group was found for it"): an alias, hidden or not, must fall back exactly as its model does."""
    entries = [{source: list(targets)} for source, targets in chains.items()]
    entries += [{name: list(chains[a.model])} for name, a in aliases.items() if a.model in chains]
    return entries


def gateway_config(fleet: Fleet) -> dict[str, Any]:
    """The LiteLLM proxy config as a dict (see `render_gateway_config` for YAML)."""
    catalog = fleet.catalog
    groups = catalog.routes.groups
    model_list = []
    for pname, provider in catalog.providers.items():
        for served in provider.served_names:
            members = groups.get(served, [])
            if any(m.provider == pname and (m.model or served) == served for m in members):
                continue  # emitted once, with its weight, by the group below
            model_list.append(_deployment(fleet, served, pname, served, None))
    for gname, members in groups.items():
        for m in members:
            served = m.model or catalog.providers[m.provider].served_names[0]
            model_list.append(_deployment(fleet, gname, m.provider, served, m.weight))

    # The catalog's own LiteLLM settings first, what llmfleet derives over them (validate refuses
    # any key that would collide, so this order only matters for a program that skipped it).
    settings = catalog.gateway
    router: dict[str, Any] = dict(settings.router_settings)
    aliases = catalog.routes.alias_entries()
    if catalog.routes.fallbacks:
        router["fallbacks"] = _chains(catalog.routes.fallbacks, aliases)
    if catalog.routes.context_window_fallbacks:
        router["context_window_fallbacks"] = _chains(catalog.routes.context_window_fallbacks, aliases)
        # Context-window fallbacks are chosen before the call only with pre-call checks on.
        router["enable_pre_call_checks"] = True
    if any("rpm" in d["litellm_params"] or "tpm" in d["litellm_params"] for d in model_list):
        # Without this pre-call check LiteLLM reads a deployment's rpm/tpm only to choose between
        # deployments, never refusing a request (verified on 1.108.7: a second call within the
        # minute of `rpm: 1` answered 200); with it, one over the limit is a 429.
        checks = list(router.get("optional_pre_call_checks") or [])
        router["optional_pre_call_checks"] = [*checks, *([RATE_LIMITS] if RATE_LIMITS not in checks else [])]
    if aliases:
        router["model_group_alias"] = {
            name: ({"model": a.model, "hidden": True} if a.hidden else a.model) for name, a in aliases.items()
        }
    config: dict[str, Any] = {"model_list": model_list}
    if settings.litellm_settings:
        config["litellm_settings"] = dict(settings.litellm_settings)
    if router:
        config["router_settings"] = router
    config["general_settings"] = {**settings.general_settings, "master_key": f"os.environ/{MASTER_KEY_ENV}"}
    return config


def render_gateway_config(fleet: Fleet) -> str:
    header = f"# Generated by llmfleet from {fleet.catalog_file} for stack '{fleet.name}'. Do not edit.\n"
    with paused_gc():
        return header + dump_yaml(gateway_config(fleet))
