"""The LiteLLM gateway on Kubernetes: the rendered config and the entrypoint in a ConfigMap, the master
key and API keys in a Secret, `replicas` pods rolled one at a time behind the Service `gateway`, whose
address never changes.

The ConfigMap and the Secret are auto-named (`gateway-config-<suffix>`): a catalog change creates a
new one beside the old, the Deployment's pods roll to it, and the old one is deleted only after the
roll (the engine deletes what it replaced last), so no running pod's config is rewritten under it.
Each old pod is drained by the entrypoint as on Docker: it answers readiness 503 first, so the
Service stops sending it requests, and LiteLLM finishes those under way before it stops."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from llmfleet._stack import CacheStorage, KubernetesGateway, NodePool

from ..servers.gateway import CONFIG_PATH, ENTRYPOINT_PATH, ENTRYPOINT_SOURCE, gateway_spec
from .cluster import Cluster
from .workload import ServerWorkload, Storage, WorkloadArgs, labels

NAME = "gateway"  # the Service's name, which clients in the cluster and the drift check reach


@dataclass
class GatewayArgs:
    stack: str
    cluster: Cluster
    namespace: str
    image: str
    config_yaml: str
    declared_models: list[str]
    probe_models: list[str]
    master_key: pulumi.Input[str]
    url: str
    port: int
    in_cluster: bool  # `url` is the Service's address inside the cluster (no llmfleet:gateway.url)
    exposure: KubernetesGateway
    pool: NodePool | None = None
    api_keys: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    backends: Sequence[pulumi.Resource] = ()


class Gateway(pulumi.ComponentResource):
    url: pulumi.Output[str]
    reach: pulumi.Output[dict[str, object]]
    declared_models: pulumi.Output[list[str]]
    probe_models: pulumi.Output[list[str]]
    master_key: pulumi.Output[str]

    def __init__(self, name: str, args: GatewayArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # The Docker gateway's type: the policy pack (policy/gateway_drift.py) checks every gateway by it.
        super().__init__("llmfleet:index:Gateway", name, {}, opts)
        spec = gateway_spec()
        meta = {"namespace": args.namespace, "labels": labels(args.stack, NAME, spec.kind, "gateway")}
        config = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=meta,
            data={"config.yaml": args.config_yaml, "entrypoint.py": ENTRYPOINT_SOURCE.read_text()},
            opts=pulumi.ResourceOptions(parent=self),
        )
        keys = {"LITELLM_MASTER_KEY": args.master_key, **dict(sorted(args.api_keys.items()))}
        secret = k8s.core.v1.Secret(
            f"{name}-keys",
            metadata=meta,
            string_data={k: pulumi.Output.secret(v) for k, v in keys.items()},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.workload = ServerWorkload(
            NAME,
            WorkloadArgs(
                stack=args.stack,
                cluster=args.cluster,
                namespace=args.namespace,
                spec=spec,
                image=args.image,
                pool=args.pool,
                storage=Storage(cache_claim=None, gguf=None),
                cache_storage=CacheStorage(),
                secret_env={k: (secret.metadata.name, k) for k in keys},
                component="gateway",
                depends_on=args.backends,
                replicas=args.exposure.replicas,
                rolling=True,
                files={CONFIG_PATH: "config.yaml", ENTRYPOINT_PATH: "entrypoint.py"},
                config_map=config.metadata.name,
                service_port=args.port,
                service_type=args.exposure.service_type,
                node_port=args.exposure.node_port,
            ),
            pulumi.ResourceOptions(parent=self),
        )
        self.url = pulumi.Output.from_input(args.url)
        # How the policy reaches a gateway not exposed outside the cluster: through the API server.
        reach: dict[str, object] = {}
        if args.in_cluster:
            reach = {"kubeconfig": args.cluster.kubeconfig, "context": args.cluster.context,
                     "namespace": args.namespace, "service": NAME, "port": args.port}  # fmt: skip
        self.reach = pulumi.Output.from_input(reach)
        self.declared_models = pulumi.Output.from_input(list(args.declared_models))
        self.probe_models = pulumi.Output.from_input(list(args.probe_models))
        self.master_key = pulumi.Output.secret(args.master_key)
        self.register_outputs({"url": self.url, "reach": self.reach, "declared_models": self.declared_models,
                               "probe_models": self.probe_models, "master_key": self.master_key})  # fmt: skip
