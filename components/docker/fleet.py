"""The fleet on Docker: one DockerHost per host in use, one server component per provisioned
provider, the front proxy, and the gateway after all of them (components/fleet.py chooses it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pulumi

from llmfleet import (
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
from llmfleet._docker_names import FRONT_PROXY, GATEWAY
from llmfleet._front_proxy import FrontProxySettings

from ..servers.fleet import ollama_memory, ollama_store
from ..servers.gateway import PORT as GATEWAY_PORT
from ..servers.gateway import READY_PORT as GATEWAY_READY_PORT
from .container import Placement
from .front_proxy import FrontProxy, FrontProxyArgs
from .gateway import Gateway, GatewayArgs
from .host import DockerHost, DockerHostArgs
from .llama_cpp import LlamaCppServer, LlamaCppServerArgs
from .llama_cpp_python import LlamaCppPythonServer, LlamaCppPythonServerArgs
from .ollama import OllamaServer, OllamaServerArgs
from .vllm import VllmServer, VllmServerArgs

if TYPE_CHECKING:
    from ..fleet import FleetSecrets

Server = OllamaServer | VllmServer | LlamaCppServer | LlamaCppPythonServer


@dataclass
class DeployedFleet:
    gateway: Gateway
    front_proxy: FrontProxy
    hosts: dict[str, DockerHost]
    servers: dict[str, Server]
    endpoints: dict[str, str]  # how the gateway reaches each provider


def deploy_to_docker(
    fleet: Fleet, secrets: FleetSecrets, api_keys: Mapping[str, pulumi.Input[str]], project_dir: Path
) -> DeployedFleet:
    """`api_keys`: what the gateway needs of the stack's llmfleet:apiKeys, every one present."""
    stack, settings, catalog = fleet.name, fleet.stack, fleet.catalog
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
            api_keys=api_keys,
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
        return OllamaServer(
            name,
            OllamaServerArgs(provider, _ref(images, "ollama"), placement, settings.docker, host.gguf,
                             ollama_memory(fleet, name), models_store=ollama_store(fleet, name)),
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
