"""A server's spec (components/servers/spec.py) as Kubernetes objects: a Deployment of one pod and a
Service named for the provider, which the gateway reaches by that name in the namespace, so the
rendered gateway config is the same derivation as on Docker.

What each spec field becomes:
- entrypoint and command: the container's `command` and `args`; the environment as given, never
  NVIDIA_VISIBLE_DEVICES (the device plugin sets it to the GPUs it allotted: ours would override it);
- GPUs: whole devices of the pool's GPU resource, as a limit; the pool's node selector, tolerations
  and runtime class;
- the health check: a startup probe whose budget is the kind's start budget, at least 30 minutes for
  a server that loads its model at start (a 20-minute load is never killed), and a readiness probe,
  both running the same command;
- mounts: the caches on the server's own claim (kept on destroy, as the Docker volumes are), the GGUF
  directory from the stack's claim or host path (read-only), shared memory for vLLM;
- stop grace: terminationGracePeriodSeconds.

Every server runs one pod under `Recreate`: the old pod is gone before the new one is scheduled, so
a GPU server never waits for a spare GPU (a RollingUpdate's surge pod would, forever), and its
ReadWriteOnce claim is never wanted by two pods. No Service environment variables are injected
(`enableServiceLinks: false`): a Service named `vllm` would otherwise set `VLLM_PORT` in every pod,
a variable vLLM reads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from llmfleet._stack import CacheStorage, GgufClaim, GgufHostPath, NodePool

from ..servers.spec import ContainerSpec, Healthcheck, Mount
from .cluster import Cluster
from .rollout import Rollout, RolloutArgs

PART_OF = "llmfleet"
# The volume names the server specs are given on Kubernetes (components/servers/fleet.py server_spec):
# the caches are directories of the server's own claim, the GGUF directory the stack's.
CACHE_VOLUMES = {"hf-cache": "hf", "vllm-cache": "vllm", "ollama-models": "ollama"}
GGUF_VOLUME = "gguf"
GGUF_MOUNT = Mount("/models", volume=GGUF_VOLUME, read_only=True)


def labels(stack: str, name: str, kind: str, component: str) -> dict[str, str]:
    """The recommended labels (app.kubernetes.io/*) and the stack's own."""
    return {
        "app.kubernetes.io/name": kind.replace("_", "-"),
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "pulumi",
        "llmfleet.dev/stack": stack,
    }


def selector(name: str) -> dict[str, str]:
    """What a Deployment selects its pods by, and its Service too: immutable, so only what never changes."""
    return {"app.kubernetes.io/instance": name, "app.kubernetes.io/part-of": PART_OF}


def container_name(kind: str) -> str:
    """A server's one container is named for its kind (`llama-cpp`): what `exec` names in its pod."""
    return kind.replace("_", "-")


def exec_probe(check: Healthcheck) -> list[str]:
    """A Docker health check's test as an exec probe's command."""
    form, *args = check.tests
    return ["/bin/sh", "-c", args[0]] if form == "CMD-SHELL" else args


# A failed startup probe kills the container (Docker's health wait only fails the `up` and lets it
# load on), so the servers that load a model at start get at least half an hour: a 20-minute load
# of a large model is never killed and restarted from scratch.
MODEL_LOADERS = {"vllm", "llama_cpp", "llama_cpp_python"}
LONG_LOAD_S = 1800


def start_budget_s(spec: ContainerSpec) -> int:
    """How long a pod may take to start serving: the kind's start budget, at least LONG_LOAD_S for a
    server that loads its model at start."""
    return max(spec.wait_timeout_s, LONG_LOAD_S) if spec.kind in MODEL_LOADERS else spec.wait_timeout_s


def probes(spec: ContainerSpec) -> dict[str, Any]:
    """The startup probe holds the whole start budget; readiness is checked as Docker does."""
    check = spec.healthcheck
    if check is None:
        return {}
    command = {"exec": {"command": exec_probe(check)}}
    return {
        "startupProbe": {**command, "periodSeconds": check.start_interval_s, "timeoutSeconds": check.timeout_s,
                         "failureThreshold": math.ceil(start_budget_s(spec) / check.start_interval_s)},
        "readinessProbe": {**command, "periodSeconds": check.interval_s, "timeoutSeconds": check.timeout_s,
                           "failureThreshold": check.retries},
    }  # fmt: skip


def gpu_count(spec: ContainerSpec, pool: NodePool | None) -> int:
    if spec.gpus is None:
        return 0
    if spec.gpus.device_ids is None:
        return pool.gpus_per_node if pool else 0
    return len(spec.gpus.device_ids)


@dataclass(frozen=True)
class Storage:
    """Where a server's volumes come from: its own cache claim (None: it mounts no cache), the
    stack's GGUF source, and an existing claim for Ollama's models instead of its cache."""

    cache_claim: str | None
    gguf: GgufClaim | GgufHostPath | None
    ollama_claim: str | None = None


def volumes(spec: ContainerSpec, storage: Storage) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The pod's volumes and the container's mounts for the spec's mounts."""
    pod: dict[str, dict[str, Any]] = {}
    mounts: list[dict[str, Any]] = []
    for mount in spec.mounts:
        name = mount.volume
        if name == GGUF_VOLUME:
            if isinstance(storage.gguf, GgufClaim):
                source: dict[str, Any] = {"persistentVolumeClaim": {"claimName": storage.gguf.claim, "readOnly": True}}
            elif isinstance(storage.gguf, GgufHostPath):
                source = {"hostPath": {"path": storage.gguf.host_path, "type": "Directory"}}
            else:
                source = {"emptyDir": {}}  # validate warned: the files would be read from an empty directory
            pod["gguf"] = {"name": "gguf", **source}
            mounts.append({"name": "gguf", "mountPath": mount.container_path, "readOnly": True})
        elif storage.ollama_claim is not None and name == storage.ollama_claim:  # the stack's existing claim
            pod["models"] = {"name": "models", "persistentVolumeClaim": {"claimName": name}}
            mounts.append({"name": "models", "mountPath": mount.container_path})
        elif name in CACHE_VOLUMES and storage.cache_claim:
            pod["cache"] = {"name": "cache", "persistentVolumeClaim": {"claimName": storage.cache_claim}}
            mounts.append({"name": "cache", "mountPath": mount.container_path, "subPath": CACHE_VOLUMES[name]})
        else:
            raise ValueError(f"no Kubernetes volume for the mount {mount}")
    if spec.ipc_host:  # vLLM's workers share tensors through /dev/shm, which is 64 MiB in a pod
        pod["shm"] = {"name": "shm", "emptyDir": {"medium": "Memory"}}
        mounts.append({"name": "shm", "mountPath": "/dev/shm"})
    return list(pod.values()), mounts


@dataclass
class WorkloadArgs:
    stack: str
    cluster: Cluster
    namespace: str
    spec: ContainerSpec
    image: str
    pool: NodePool | None
    storage: Storage
    cache_storage: CacheStorage
    secret_env: Mapping[str, tuple[pulumi.Input[str], str]] = field(default_factory=dict)  # env -> (Secret, key)
    component: str = "server"
    served_names: Sequence[str] = ()
    depends_on: Sequence[pulumi.Resource] = ()
    # The gateway's: several replicas rolled one at a time, files from a ConfigMap, an exposed Service.
    replicas: int = 1
    rolling: bool = False  # a GPU-less workload of several replicas: roll it, never Recreate
    files: Mapping[str, str] = field(default_factory=dict)  # path in the container -> key of `config_map`
    config_map: pulumi.Input[str] | None = None
    service_port: int | None = None  # None: the server's own port
    service_type: str = "ClusterIP"
    node_port: int | None = None


def pod_spec(args: WorkloadArgs) -> dict[str, Any]:
    spec, pool = args.spec, args.pool
    pod_volumes, mounts = volumes(spec, args.storage)
    if args.files:
        # Each file at its path by subPath, beside what the image has in the same directory. The
        # ConfigMap is never changed in place (a new one replaces it), so subPath's lack of updates is moot.
        pod_volumes.append({"name": "files", "configMap": {"name": args.config_map}})
        mounts += [{"name": "files", "mountPath": path, "subPath": key, "readOnly": True}
                   for path, key in sorted(args.files.items())]  # fmt: skip
    env = [{"name": k, "value": v} for k, v in sorted(spec.env.items())]
    env += [{"name": k, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
            for k, (secret, key) in sorted(args.secret_env.items())]  # fmt: skip
    gpus = gpu_count(spec, pool)
    container: dict[str, Any] = {
        "name": container_name(spec.kind),
        "image": args.image,
        "imagePullPolicy": "IfNotPresent",
        **({"command": list(spec.entrypoint)} if spec.entrypoint else {}),
        **({"args": list(spec.command)} if spec.command else {}),
        "env": env,
        "ports": [{"name": "http", "containerPort": spec.port}],
        **probes(spec),
        "volumeMounts": mounts,
        "resources": {"limits": {pool.gpu_resource: str(gpus)}} if gpus and pool else {},
    }
    return {
        "containers": [container],
        "volumes": pod_volumes,
        "enableServiceLinks": False,
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": spec.stop_grace_s,
        **({"nodeSelector": dict(pool.node_selector)} if pool and pool.node_selector else {}),
        **({"tolerations": [t.model_dump(exclude_none=True) for t in pool.tolerations]} if pool else {}),
        **({"runtimeClassName": pool.runtime_class} if pool and pool.runtime_class else {}),
    }


def strategy(args: WorkloadArgs) -> dict[str, Any]:
    """A server: Recreate (see above). The gateway: one new pod at a time, and an old one stops only
    once a new one is ready, so fewer than `replicas` never serve."""
    if not args.rolling:
        return {"type": "Recreate"}
    return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}


class ServerWorkload(pulumi.ComponentResource):
    """One server: its cache claim (kept on destroy), its Deployment, and its Service."""

    deployment: k8s.apps.v1.Deployment
    service: k8s.core.v1.Service
    ready: Rollout
    served_names: pulumi.Output[list[str]]

    def __init__(self, name: str, args: WorkloadArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llmfleet:kubernetes:ServerWorkload", name, {}, opts)
        spec = args.spec
        meta = {"namespace": args.namespace, "labels": labels(args.stack, name, spec.kind, args.component)}
        claim_deps: list[pulumi.Resource] = []
        if args.storage.cache_claim and any(m.volume in CACHE_VOLUMES for m in spec.mounts):
            cache = args.cache_storage
            claim_deps.append(k8s.core.v1.PersistentVolumeClaim(
                f"{name}-cache",
                metadata={**meta, "name": args.storage.cache_claim},
                spec={"accessModes": [cache.access_mode], "resources": {"requests": {"storage": cache.size}},
                      **({"storageClassName": cache.storage_class} if cache.storage_class else {})},
                # Kept on destroy, as the Docker volumes are: weights take hours to download again.
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
            ))  # fmt: skip
        # pulumi-kubernetes' own readiness wait is replaced: `ready` below waits, and fails as soon as a pod
        # cannot be scheduled instead of at the deadline. `waitFor` a field every object has, not
        # `skipAwait`: for a Deployment that also skips waiting for its deletion (pulumi-kubernetes#3154),
        # and a destroy, or a replacement under the same name, must wait until its pods are gone and
        # their GPUs free.
        ready_at_once = {"pulumi.com/waitFor": "jsonpath={.metadata.name}"}
        self.deployment = k8s.apps.v1.Deployment(
            name,
            metadata={**meta, "name": name, "annotations": ready_at_once},
            spec={
                "replicas": args.replicas,
                "selector": {"matchLabels": selector(name)},
                "strategy": strategy(args),
                "template": {"metadata": {"labels": meta["labels"]}, "spec": pod_spec(args)},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*claim_deps, *args.depends_on]),
        )
        self.ready = Rollout(
            f"{name}-rollout",
            RolloutArgs(
                kubeconfig=args.cluster.kubeconfig,
                context=args.cluster.context,
                namespace=args.namespace,
                deployment=name,
                generation=self.deployment.metadata.generation,
                # the startup probe's budget, and the scheduling and image pull before it
                budget_s=start_budget_s(spec) + 120,
                unschedulable_s=args.cluster.unschedulable_s,
            ),
            pulumi.ResourceOptions(parent=self, depends_on=[self.deployment]),
        )
        port = {"name": "http", "port": args.service_port or spec.port, "targetPort": "http"}
        if args.node_port:
            port["nodePort"] = args.node_port
        self.service = k8s.core.v1.Service(
            name,
            # A Service's wait is for endpoints, which `ready` covers; its deletion is still waited for.
            metadata={**meta, "name": name, "annotations": {"pulumi.com/skipAwait": "true"}},
            spec={"type": args.service_type, "selector": selector(name), "ports": [port]},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.deployment]),
        )
        self.served_names = pulumi.Output.from_input(list(args.served_names))
        self.register_outputs({"deployment": self.deployment.metadata.name, "served_names": self.served_names})
