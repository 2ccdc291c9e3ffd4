"""A throwaway copy of the llmfleet project deployed by the real Pulumi engine and the real
pulumi-kubernetes provider (tests/kubernetes_build.py) to the tests' real control plane with kwok's
fake GPU nodes (tests/kubernetes_cluster.py): the program, components and library as they are, a
`target: kubernetes` stack and a catalog written here, a `file://` backend, passphrase secrets.

kwok runs no container: pods are scheduled by the real scheduler and marked Running and Ready by
kwok, so what this proves is what Kubernetes is told (objects, scheduling, rolls, claims) and what
Pulumi does with it, not that the images serve. The cluster's storage is a `no-provisioner`
StorageClass with static volumes, which the real controller manager binds claims to.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests import engine_build, kubernetes_build, ollama_build, ollama_registry, real_ollama
from tests.kubernetes_cluster import (
    GPU_RESOURCE,
    POOL_LABEL,
    Cluster,
    GpuPool,
    LocalExec,
    PortForward,
    running_cluster,
)
from tests.litellm_proxy import MASTER_KEY, free_port
from tests.real_deploy import copy_program, engine_env, run_logged
from tests.standins import (
    StandIn,
    serve_llama_cpp_python,
    serve_llama_server,
    serve_openai_chat,
    serve_vllm,
    standins,
)
from tests.tiny_gguf import write_tiny_gguf

STACK = "k8s"
NAMESPACE = "llm"
STORAGE_CLASS = "local-test"
CONTEXT = "llmfleet-test"  # tests/kubernetes_cluster.py write_kubeconfig's
STACK_LABEL = "llmfleet.dev/stack"

# Every server kind; Ollama's models come from the tests' registry (`{pull}`, OllamaForPods.pull)
# and from the GGUF. The pool has three nodes of 2 GPUs: Ollama 1, vLLM 1 and llama-server all (2)
# fit whatever the scheduler places first.
CATALOG_TEMPLATE = """\
providers:
  ollama:
    kind: ollama
    port: 11434
    models:
      - {{name: tiny-ollama, pull: "{pull}", insecure: true}}
      - {{name: Tiny-House, gguf: /models/tiny.gguf}}
    gpus: [1]
  vllm:
    kind: vllm
    port: 8000
    model: Qwen/Qwen2.5-0.5B-Instruct
    served_name: tiny-vllm
    gpus: [0]
  native:
    kind: llama_cpp
    port: 8080
    gguf: /models/tiny.gguf
    alias: tiny-native
    context_length: 512
    gpus: all
  python:
    kind: llama_cpp_python
    port: 8001
    gguf: /models/tiny.gguf
    alias: tiny-python
    context_length: 512
routes:
  fallbacks:
    tiny-native: [tiny-python]
  aliases:
    chat: tiny-vllm
"""


def stack_file(kubeconfig: Path, gguf_dir: Path, gpus_per_node: int = 2, nodes: int = 3) -> str:
    return f"""\
config:
  llmfleet:catalog: config/{STACK}.yaml
  llmfleet:target: kubernetes
  llmfleet:kubernetes:
    context: {CONTEXT}
    kubeconfig: {kubeconfig}
    namespace: {NAMESPACE}
    pools:
      gpu-a:
        node_selector: {{{POOL_LABEL}: gpu-a}}
        tolerations: [{{key: {GPU_RESOURCE}, operator: Exists, effect: NoSchedule}}]
        gpus_per_node: {gpus_per_node}
        nodes: {nodes}
      cpu:
        node_selector: {{{POOL_LABEL}: cpu}}
    cache_storage: {{storage_class: {STORAGE_CLASS}, size: 10Gi}}
    gguf: {{host_path: {gguf_dir}}}
    gateway: {{replicas: 2, pool: cpu}}
  llmfleet:providers:
    ollama: {{pool: gpu-a}}
    vllm: {{pool: gpu-a}}
    native: {{pool: gpu-a}}
    python: {{pool: cpu}}
  llmfleet:gateway:
    port: 4000
  llmfleet:images:
    ollama: example.invalid/ollama:0.14.1
    vllm: example.invalid/vllm-openai:v0.18.0
    llama_cpp: example.invalid/llama.cpp:server-cuda-b9628
    llama_cpp_python: {{image: example.invalid/llama-cpp-python:0.3.16, cpu: true}}
    litellm: example.invalid/litellm:v1.108.7
"""


def storage_manifests(volumes: int = 8, size: str = "10Gi") -> list[tuple[str, dict[str, Any]]]:
    """A StorageClass with no provisioner and `volumes` static hostPath volumes of it: the real
    controller manager binds each claim to one of them (paths are never touched: no kubelet)."""
    manifests: list[tuple[str, dict[str, Any]]] = [("/apis/storage.k8s.io/v1/storageclasses", {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": STORAGE_CLASS},
        "provisioner": "kubernetes.io/no-provisioner", "volumeBindingMode": "Immediate",
    })]  # fmt: skip
    for i in range(volumes):
        manifests.append(("/api/v1/persistentvolumes", {
            "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": f"pv-{i}"},
            "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                     "storageClassName": STORAGE_CLASS, "persistentVolumeReclaimPolicy": "Retain",
                     "hostPath": {"path": f"/srv/pv-{i}"}},
        }))  # fmt: skip
    return manifests


@dataclass
class KubeProject:
    root: Path
    path: list[Path]  # the engine's bin directory and the pulumi-kubernetes provider's
    cluster: Cluster
    log: list[str] = field(default_factory=list)
    gguf_dir: Path | None = None  # the GGUF directory the stack names as its host path

    @property
    def env(self) -> dict[str, str]:
        # HOME too: no ~/.kube/config of the machine's is ever read.
        return {**engine_env(self.root, self.path), "HOME": str(self.root)}

    def run(self, argv: list[str], timeout: float, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_logged(self.root, self.env, self.log, argv, timeout, stdin)

    def pulumi(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return self.run(["pulumi", *args, "--stack", STACK, "--non-interactive"], timeout)

    def ok(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        done = self.pulumi(*args, timeout=timeout)
        if done.returncode != 0:
            errors = "\n".join(line for line in done.stdout.splitlines() if "error" in line.lower())
            raise AssertionError(f"pulumi {' '.join(args)} failed ({done.returncode}):\n{errors[-6000:]}\n"
                                 f"{self.tail(3000)}")  # fmt: skip
        return done

    def llmfleet(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return self.run([sys.executable, "-m", "llmfleet", "--project-dir", str(self.root), *args], timeout)

    def preview_steps(self) -> dict[str, str]:
        """`pulumi preview --json`: each resource's name -> the operations planned for it."""
        done = self.pulumi("preview", "--json")
        if done.returncode != 0:
            raise AssertionError(f"preview failed:\n{self.tail()}")
        steps: dict[str, str] = {}
        for step in json.loads(done.stdout).get("steps", []):
            name = step["urn"].rsplit("::", 1)[1]
            steps[name] = f"{steps[name]},{step['op']}" if name in steps else step["op"]
        return steps

    def tail(self, size: int = 6000) -> str:
        return "\n".join(self.log[-2:])[-size:]

    def write(self, catalog: str, stack: str) -> None:
        (self.root / "config" / f"{STACK}.yaml").write_text(catalog)
        path = self.root / "stacks" / f"Pulumi.{STACK}.yaml"
        secrets = ""
        if path.exists():  # keep what `pulumi config set --secret` wrote
            text = path.read_text()
            secrets = text[text.index("  llmfleet:masterKey:") :] if "llmfleet:masterKey" in text else ""
        path.write_text(stack + secrets)

    def objects(self, kind: str, api: str = "/api/v1") -> dict[str, dict[str, Any]]:
        """The stack's objects of a kind in the namespace, by name (its `llmfleet.dev/stack` label)."""
        listed = self.cluster.get(f"{api}/namespaces/{NAMESPACE}/{kind}", labelSelector=f"{STACK_LABEL}={STACK}")
        return {item["metadata"]["name"]: item for item in listed["items"]}


def make_project(root: Path, path: list[Path], cluster: Cluster) -> KubeProject:
    """The project copied, and the namespace and the storage made in the cluster."""
    copy_program(root)
    cluster.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    for path_, manifest in storage_manifests():
        cluster.create(path_, manifest)
    return KubeProject(root, path, cluster)


def init_stack(project: KubeProject, catalog: str, stack: str) -> None:
    project.write(catalog, stack)
    project.ok("stack", "init", timeout=60)
    done = project.run(["pulumi", "config", "set", "--secret", "llmfleet:masterKey", "--stack", STACK], 60,
                       stdin=MASTER_KEY)  # fmt: skip
    if done.returncode != 0:
        raise AssertionError(f"pulumi config set failed:\n{done.stderr}")


def dumps(value: Any) -> str:
    return json.dumps(value, indent=1)[:4000]


@dataclass
class ReadyWatch:
    """Polls the ready endpoints of a Service's EndpointSlices (what its clients are sent to) in a
    thread, from `start()` to `stop()`, keeping the fewest seen and every distinct count in order."""

    cluster: Cluster
    service: str
    fewest: int | None = None
    seen: list[int] = field(default_factory=list)
    polls: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def ready(self) -> int:
        slices = self.cluster.get(f"/apis/discovery.k8s.io/v1/namespaces/{NAMESPACE}/endpointslices",
                                  labelSelector=f"kubernetes.io/service-name={self.service}")  # fmt: skip
        conditions = [e.get("conditions", {}) for s in slices["items"] for e in s.get("endpoints") or []]
        return sum(1 for c in conditions if c.get("ready") and not c.get("terminating"))

    def _run(self) -> None:
        while not self._stop.is_set():
            count = self.ready()
            self.polls += 1
            self.fewest = count if self.fewest is None else min(self.fewest, count)
            if not self.seen or self.seen[-1] != count:
                self.seen.append(count)
            self._stop.wait(0.05)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)


def deployed_config(project: KubeProject) -> str:
    """The config.yaml the gateway's pods mount, as the API server holds it."""
    gateway = project.objects("deployments", "/apis/apps/v1")["gateway"]
    volumes = gateway["spec"]["template"]["spec"]["volumes"]
    name = next(v["configMap"]["name"] for v in volumes if "configMap" in v)
    return project.cluster.get(f"/api/v1/namespaces/{NAMESPACE}/configmaps/{name}")["data"]["config.yaml"]


# The model the tests' registry serves (pushed by a real Ollama), as `ollama pull` names it there.
OLLAMA_REPO, OLLAMA_TAG = "library/tiny", "1b"
# `ollama` as a pod's exec finds it (kwok runs the exec on this host): the real CLI, with the pod's
# /models (its GGUF mount) read as the test's GGUF directory in an `ollama create` Modelfile.
OLLAMA_WRAPPER = """#!/bin/sh
# The exec runs on the test's host: /models, the pod's GGUF mount, is {gguf_dir} here.
if [ "$1" = create ] && [ "$3" = -f ]; then sed -i "s#^FROM /models/#FROM {gguf_dir}/#" "$4"; fi
exec {binary} "$@"
"""


@dataclass
class OllamaForPods:
    """A real `ollama serve` on loopback that plays the Ollama server in the fleet's pod: kwok runs an
    exec in any pod's `ollama` container as the real CLI here (`execs`), talking to it; and the
    tests' registry (tests/ollama_registry.py) on 127.0.0.1, seeded with one model, that it pulls from."""

    ollama: real_ollama.Ollama
    registry: ollama_registry.Registry
    execs: list[LocalExec]

    @property
    def pull(self) -> str:
        return f"{self.registry.host}/{OLLAMA_REPO}:{OLLAMA_TAG}"

    @property
    def port(self) -> int:
        return int(self.ollama.url.rsplit(":", 1)[1])


@contextlib.contextmanager
def ollama_for_pods(root: Path, gguf: Path) -> Iterator[OllamaForPods]:
    """The registry seeded with a model made from `gguf` by a real Ollama of its own, and the Ollama
    the pods' execs reach, with the wrapper that reads /models as `gguf`'s directory."""
    binary = ollama_build.ensure_built()
    with ollama_registry.running("127.0.0.1") as registry:
        pull = f"{registry.host}/{OLLAMA_REPO}:{OLLAMA_TAG}"
        with real_ollama.serving(binary, root / "seed-ollama") as seed:
            seed.create(pull, gguf)
            seed.cli("push", "--insecure", pull)
        with real_ollama.serving(binary, root / "pod-ollama") as ollama:
            bin_dir = root / "exec-bin"
            bin_dir.mkdir()
            (bin_dir / "ollama").write_text(OLLAMA_WRAPPER.format(gguf_dir=gguf.parent, binary=binary))
            (bin_dir / "ollama").chmod(0o755)
            env = {**ollama.env, "PATH": f"{bin_dir}:/usr/bin:/bin"}
            execs = [LocalExec(("ollama",), ollama.home, tuple(sorted(env.items())), (bin_dir,))]
            yield OllamaForPods(ollama, registry, execs)


# The catalog's ports and the gateway Service's: what kwok forwards to loopback.
BACKEND_PORTS = {"ollama": 11434, "vllm": 8000, "native": 8080, "python": 8001}
GATEWAY_PORT = 4000
GPU_POOL = GpuPool("gpu-a", nodes=3, gpus=2)
CPU_POOL = GpuPool("cpu", nodes=1, gpus=0)


@dataclass
class LoopbackFleet:
    """What plays the fleet's pods on this host, where kwok sends each pod's port and exec: a
    stand-in per vLLM and llama.cpp server (answering as each does), the real Ollama (its models
    made by the pods' execs), and the port the real LiteLLM serving the gateway's config listens on."""

    backends: dict[str, StandIn]
    ollama: OllamaForPods
    gateway_port: int

    @property
    def catalog(self) -> str:
        return CATALOG_TEMPLATE.format(pull=self.ollama.pull)

    @property
    def urls(self) -> dict[str, str]:
        return {"ollama": self.ollama.ollama.url, **{name: server.url for name, server in self.backends.items()}}

    def forwards(self) -> list[PortForward]:
        targets = {"ollama": self.ollama.port, **{name: server.port for name, server in self.backends.items()}}
        return [PortForward(GATEWAY_PORT, self.gateway_port),
                *(PortForward(port, targets[name]) for name, port in BACKEND_PORTS.items())]  # fmt: skip

    def gateway_config(self, config: str) -> str:
        """A deployed gateway config for the real LiteLLM on this host: each `api_base` host, which the
        cluster's DNS resolves in a pod, pointed at what plays that server here."""
        for name, port in BACKEND_PORTS.items():
            if f"http://{name}:{port}" not in config:
                raise AssertionError(f"no api_base for {name} in:\n{config}")
            config = config.replace(f"http://{name}:{port}", self.urls[name])
        return config


@contextlib.contextmanager
def loopback_fleet(root: Path, gguf: Path) -> Iterator[LoopbackFleet]:
    with standins(3) as (vllm, native, python), ollama_for_pods(root, gguf) as ollama:
        serve_vllm(vllm, "tiny-vllm")
        for server in (native, python):  # OpenAI's chat API: LiteLLM's `openai/` prefix calls llama.cpp's so
            serve_openai_chat(server)
        serve_llama_server(native, "tiny-native")  # after the chat API: each lists its one model
        serve_llama_cpp_python(python, "tiny-python")
        yield LoopbackFleet({"vllm": vllm, "native": native, "python": python}, ollama, free_port())


@contextlib.contextmanager
def deployable(root: Path, cluster_name: str = "cluster") -> Iterator[tuple[KubeProject, LoopbackFleet, str]]:
    """The whole test fleet ready to deploy: the tiny GGUF, the loopback side, the cluster with the
    GPU and CPU pools and kwok's forwards and execs, the project with its stack created. Yields the
    project, the loopback side and the stack file as written (before its secret was set)."""
    gguf_dir = root / "gguf"
    gguf_dir.mkdir()
    write_tiny_gguf(gguf_dir / "tiny.gguf")
    path = [engine_build.ensure_built(), kubernetes_build.ensure_provider_built()]
    with contextlib.ExitStack() as started:
        side = started.enter_context(loopback_fleet(root, gguf_dir / "tiny.gguf"))
        cluster = started.enter_context(running_cluster(
            kubernetes_build.ensure_built(), root / cluster_name, pools=[GPU_POOL, CPU_POOL], forwards=side.forwards(),
            execs=side.ollama.execs))  # fmt: skip
        project = make_project(root / "project", path, cluster)
        stack = stack_file(cluster.kubeconfig, gguf_dir)
        init_stack(project, side.catalog, stack)
        project.gguf_dir = gguf_dir
        try:
            yield project, side, stack
        finally:
            project.pulumi("destroy", "--yes", "--skip-preview", timeout=300)


def token_kubeconfig(cluster: Cluster, name: str, rules: list[dict[str, Any]]) -> Path:
    """A kubeconfig of the tests' context whose user is ServiceAccount `name`'s bearer token, bound in
    the namespace to a Role of `rules`: what a team's CI runner holds."""
    cluster.create(f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount",
                                                                       "metadata": {"name": name}})  # fmt: skip
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NAMESPACE}"
    cluster.create(f"{rbac}/roles", {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                                     "metadata": {"name": name}, "rules": rules})  # fmt: skip
    cluster.create(f"{rbac}/rolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}],
    })  # fmt: skip
    token = cluster.create(f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{name}/token", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600},
    })["status"]["token"]  # fmt: skip
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"][0]["user"] = {"token": token}
    path = cluster.workdir / f"kubeconfig-{name}"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path
