"""The fleet on Kubernetes: the stack's cluster provider, one workload per provisioned provider (its
spec from components/servers/, as on Docker), and the gateway after all of them (components/fleet.py
chooses it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pulumi
import pulumi_kubernetes as k8s

from llmfleet import (
    ExistingVolume,
    Fleet,
    LlamaCppProvider,
    OllamaProvider,
    VllmProvider,
    backend_root,
    declared_models,
    probe_targets,
    render_gateway_config,
)

from ..servers.fleet import ollama_store, server_spec
from .cluster import cluster_provider
from .gateway import Gateway, GatewayArgs
from .ollama_model import ollama_models
from .workload import GGUF_MOUNT, ServerWorkload, Storage, WorkloadArgs, labels

if TYPE_CHECKING:
    from ..fleet import FleetSecrets


@dataclass
class DeployedFleet:
    gateway: Gateway
    servers: dict[str, ServerWorkload]
    endpoints: dict[str, str]  # how the gateway reaches each provider: its Service


def deploy_to_kubernetes(
    fleet: Fleet, secrets: FleetSecrets, api_keys: Mapping[str, pulumi.Input[str]], project_dir: Path
) -> DeployedFleet:
    stack, settings, catalog = fleet.name, fleet.stack, fleet.catalog
    kube = settings.kubernetes
    assert kube is not None  # validation refuses a Kubernetes stack without it
    cluster = cluster_provider(stack, kube, project_dir)
    opts = pulumi.ResourceOptions(providers=[cluster.provider])
    namespace = kube.namespace

    hf_token: k8s.core.v1.Secret | None = None
    if secrets.hf_token is not None:
        hf_token = k8s.core.v1.Secret(
            "hf-token",
            metadata={"namespace": namespace, "labels": labels(stack, "hf-token", "secret", "credentials")},
            string_data={"HF_TOKEN": pulumi.Output.secret(secrets.hf_token)},
            opts=opts,
        )

    servers: dict[str, ServerWorkload] = {}
    for name, provider in catalog.local_providers().items():
        spec = server_spec(fleet, name, provider, hf_cache="hf-cache", vllm_cache="vllm-cache", gguf=GGUF_MOUNT,
                           ollama_models="ollama-models")  # fmt: skip
        assert spec is not None, name
        placed = settings.providers.get(name)
        store = ollama_store(fleet, name)
        image = settings.images.ref(spec.kind)
        assert isinstance(image, str), spec.kind  # validation refuses a build on Kubernetes, and a missing image
        token = {"HF_TOKEN": (hf_token.metadata.name, "HF_TOKEN")} if hf_token else {}
        servers[name] = ServerWorkload(
            name,
            WorkloadArgs(
                stack=stack,
                cluster=cluster,
                namespace=namespace,
                spec=spec,
                image=image,
                pool=kube.pools[placed.pool] if placed and placed.pool else None,
                storage=Storage(
                    cache_claim=f"{name}-cache",
                    gguf=kube.gguf,
                    ollama_claim=store.volume if isinstance(store, ExistingVolume) else None,
                ),
                cache_storage=kube.cache_storage,
                secret_env=token if isinstance(provider, VllmProvider | LlamaCppProvider) else {},
                served_names=provider.served_names,
            ),
            opts,
        )

    # Ollama's declared models, each pulled or created in its server's ready pod (through the API
    # server's exec) once the Deployment is ready, and the gateway only after them.
    models: list[pulumi.Resource] = []
    for name, provider in catalog.local_providers().items():
        if isinstance(provider, OllamaProvider):
            models += ollama_models(name, servers[name], provider, kubeconfig=cluster.kubeconfig, context=kube.context,
                                    namespace=namespace, keep=ollama_store(fleet, name) is not None)  # fmt: skip

    gateway = Gateway(
        "gateway",
        GatewayArgs(
            stack=stack,
            cluster=cluster,
            namespace=namespace,
            image=settings.images.litellm,
            config_yaml=render_gateway_config(fleet),
            declared_models=declared_models(catalog),
            probe_models=[t.name for t in probe_targets(catalog) if not t.external],
            master_key=secrets.master_key,
            url=settings.gateway_url,
            in_cluster=settings.gateway.url is None,
            port=settings.gateway.port,
            exposure=kube.gateway,
            pool=kube.pools[kube.gateway.pool] if kube.gateway.pool else None,
            api_keys=api_keys,
            backends=[*(s.ready for s in servers.values()), *models],  # rolled out, every model in place
        ),
        opts,
    )
    endpoints = {name: backend_root(fleet, name) for name in catalog.local_providers()}
    return DeployedFleet(gateway, servers, endpoints)
