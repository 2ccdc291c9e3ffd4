"""Compose a validated Fleet into components: one DockerHost per host in use, one server
component per provisioned provider, and the gateway after all of them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pulumi

from llmfleet import (
    ExternalProvider,
    Fleet,
    Images,
    LlamaCppProvider,
    LlamaCppPythonProvider,
    OllamaProvider,
    VllmProvider,
    backend_root,
    declared_models,
    probe_targets,
    render_gateway_config,
)
from llmfleet._checks_gpus import shares_beside
from llmfleet._docker_names import FRONT_PROXY, GATEWAY
from llmfleet._front_proxy import FrontProxySettings
from llmfleet._gateway_settings import settings_env_names
from llmfleet._stack import set_secret_command

from .docker.container import Placement
from .docker.front_proxy import FrontProxy, FrontProxyArgs
from .docker.gateway import Gateway, GatewayArgs
from .docker.host import DockerHost, DockerHostArgs
from .docker.llama_cpp import LlamaCppServer, LlamaCppServerArgs
from .docker.llama_cpp_python import LlamaCppPythonServer, LlamaCppPythonServerArgs
from .docker.ollama import OllamaServer, OllamaServerArgs
from .docker.vllm import VllmServer, VllmServerArgs
from .servers.gateway import PORT as GATEWAY_PORT
from .servers.gateway import READY_PORT as GATEWAY_READY_PORT
from .servers.ollama import GpuMemory

Server = OllamaServer | VllmServer | LlamaCppServer | LlamaCppPythonServer


@dataclass
class FleetSecrets:
    master_key: pulumi.Input[str]
    hf_token: pulumi.Input[str] | None = None
    api_keys: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


@dataclass
class DeployedFleet:
    gateway: Gateway
    front_proxy: FrontProxy
    hosts: dict[str, DockerHost]
    servers: dict[str, Server]
    endpoints: dict[str, str]  # how the gateway reaches each provider


def required_api_keys(fleet: Fleet) -> list[str]:
    """The stack's llmfleet:apiKeys the gateway needs: external providers' keys and every
    `os.environ/NAME` the catalog's LiteLLM settings read (a callback's key)."""
    providers = fleet.catalog.providers.values()
    keys = {p.api_key_env for p in providers if isinstance(p, ExternalProvider) and p.api_key_env}
    return sorted(keys | settings_env_names(fleet.catalog))


def missing_api_keys(raw: str | None, needed: list[str], stack: str) -> None:
    """Stop before anything is created when the stack's `llmfleet:apiKeys` lacks a key the gateway
    needs, with the command that sets it. `raw` is the config value as the engine passes it to the
    program (JSON, decrypted): only its key names are read, here, synchronously, so the error is a
    plain message and never a traceback from inside an Output."""
    if not needed or raw is None:
        return  # none set at all: deploy_fleet says which keys to set
    try:
        held = json.loads(raw)
    except ValueError:
        held = raw  # a single value: the whole map set as one secret
    if not isinstance(held, Mapping):
        what = "is one encrypted value, not a map of keys"
    else:
        absent = [k for k in needed if not isinstance(held.get(k), str)]
        if not absent:
            return
        what, needed = f"has no {', '.join(absent)}", absent
    commands = "; ".join(set_secret_command(f"llmfleet:apiKeys.{k}", stack) for k in needed)
    raise pulumi.RunError(f"stack '{stack}': llmfleet:apiKeys {what}. Run: {commands}")


def deploy_fleet(fleet: Fleet, secrets: FleetSecrets, project_dir: Path) -> DeployedFleet:
    stack, settings, catalog = fleet.name, fleet.stack, fleet.catalog
    missing = [k for k in required_api_keys(fleet) if k not in secrets.api_keys]
    if missing:  # checked before anything is created
        keys = ", ".join(missing)
        raise pulumi.RunError(
            f"stack '{stack}': no secret for {keys} (external providers' api_key_env, the gateway settings' "
            "os.environ/NAME). Run: " + "; ".join(set_secret_command(f"llmfleet:apiKeys.{k}", stack) for k in missing)
        )
    gateway_host = settings.gateway_host
    in_use = sorted({settings.host_of(p) for p in catalog.local_providers()} | {gateway_host})
    hosts = {h: DockerHost(f"host-{h}", DockerHostArgs(stack, settings.hosts[h], h)) for h in in_use}

    servers: dict[str, Server] = {}
    backends: list[pulumi.Resource] = []
    for name, provider in catalog.local_providers().items():
        host_name = settings.host_of(name)
        host = hosts[host_name]
        placement = host.placement(settings.publish_ip(name))
        server = _server(name, provider, fleet, placement, host, secrets, project_dir)
        servers[name] = server
        backends.append(server.healthy)  # healthy, not merely created
        if isinstance(server, OllamaServer):
            backends.extend(server.models.values())

    gw = hosts[gateway_host]
    front_proxy = FrontProxy(
        FRONT_PROXY,
        FrontProxyArgs(
            image=settings.images.haproxy,
            placement=gw.placement(settings.gateway.bind),
            port=settings.gateway.port,
            settings=FrontProxySettings(stack=stack, gateway_port=GATEWAY_PORT, check_port=GATEWAY_READY_PORT),
        ),
    )
    gateway = Gateway(
        GATEWAY,
        GatewayArgs(
            image=settings.images.litellm,
            config_yaml=render_gateway_config(fleet),
            declared_models=declared_models(catalog),
            probe_models=[t.name for t in probe_targets(catalog) if not t.external],
            master_key=secrets.master_key,
            placement=gw.placement(None),
            url=settings.gateway_url,
            api_keys={k: secrets.api_keys[k] for k in required_api_keys(fleet)},
            backends=backends,
        ),
    )
    endpoints = {name: backend_root(fleet, name) for name in catalog.local_providers()}
    return DeployedFleet(gateway, front_proxy, hosts, servers, endpoints)


def _ref(images: Images, kind: str) -> str:
    """A pulled image's reference (validation has refused a missing one, and builds are only for
    llama-cpp-python)."""
    ref = images.ref(kind)
    return ref if isinstance(ref, str) else ""


def _server(
    name: str,
    provider: object,
    fleet: Fleet,
    placement: Placement,
    host: DockerHost,
    secrets: FleetSecrets,
    project_dir: Path,
) -> Server:
    images = fleet.stack.images
    if isinstance(provider, OllamaProvider):
        settings = fleet.stack.hosts[placement.host]
        memory = (GpuMemory(settings.gpu_memory_gib, shares_beside(fleet.catalog, fleet.stack, name))
                  if settings.gpu_memory_gib else None)  # fmt: skip
        placed = fleet.stack.providers.get(name)
        store = placed.ollama_models if placed else None
        return OllamaServer(
            name,
            OllamaServerArgs(provider, _ref(images, "ollama"), placement, settings.docker, host.gguf, memory,
                             models_store=store),
        )  # fmt: skip
    if isinstance(provider, VllmProvider):
        return VllmServer(
            name,
            VllmServerArgs(provider, _ref(images, "vllm"), placement, host.hf_cache.name, host.vllm_cache.name,
                           secrets.hf_token, host.gguf),
        )  # fmt: skip
    if isinstance(provider, LlamaCppProvider):
        return LlamaCppServer(
            name, LlamaCppServerArgs(provider, _ref(images, "llama_cpp"), placement, host.hf_cache.name, host.gguf,
                                     secrets.hf_token)
        )  # fmt: skip
    assert isinstance(provider, LlamaCppPythonProvider)
    image = images.ref("llama_cpp_python") or ""
    return LlamaCppPythonServer(name, LlamaCppPythonServerArgs(provider, image, placement, host.gguf, project_dir))
