"""Benchmark: wall times of a real deploy to Kubernetes with the real Pulumi engine and provider.

    .venv/bin/python bench/deploy_kubernetes.py

The same pieces as tests/test_kubernetes_deploy_real.py and tests/test_kubernetes_checks_real.py:
the Pulumi CLI and the pulumi-kubernetes provider built from Go modules, a real Kubernetes v1.37.2
control plane with kwok's fake GPU nodes on loopback (tests/kubernetes_cluster.py), the fleet of
tests/kubernetes_deploy.py (vLLM, llama-server, llama-cpp-python, a gateway of 2 replicas), and the
policy pack reaching the gateway through the API server: kwok forwards the gateway pods' port to
the real LiteLLM serving the deployed config (each backend's port to a stand-in). Timed: `pulumi
preview --policy-pack policy` before anything exists, the first `pulumi up --policy-pack policy`,
a catalog change (an alias more, so a new gateway config, and a new environment for vLLM on a GPU
pool with none spare) while the gateway Service's ready endpoints are watched, and `pulumi destroy`.
kwok runs no container: the times are Kubernetes' and Pulumi's, not the images'.

The last line is:
`kubernetes: preview P s, up U s, change C s, destroy D s; gateway ready never below R; policy passed; leftovers L`
(R: the fewest ready gateway endpoints seen during the change, of 2 replicas; L: the stack's
Deployments, Services, ConfigMaps, Secrets and pods left after destroy; the cache claims are kept
on purpose). Exit 0 when R is at least 2 and nothing is left.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llmfleet import load_fleet, render_gateway_config
from tests import engine_build, kubernetes_build
from tests.kubernetes_cluster import GpuPool, running_cluster
from tests.kubernetes_deploy import (
    CATALOG,
    STACK,
    KubeProject,
    ReadyWatch,
    backend_standins,
    init_stack,
    loopback_config,
    loopback_forwards,
    make_project,
    stack_file,
)
from tests.litellm_proxy import free_port, running_proxy
from tests.tiny_gguf import write_tiny_gguf

# vLLM on 2 GPUs and llama-server on `all` (2) fill both nodes of the pool: the change rolls vLLM with no GPU spare.
FULL = CATALOG.replace("gpus: [0]", "gpus: [0, 1]")
SERVED = "    served_name: tiny-vllm\n"
CHANGED = FULL.replace(SERVED, SERVED + "    env: {VLLM_LOGGING_LEVEL: DEBUG}\n") + "    code: tiny-native\n"
LEFT = (("deployments", "/apis/apps/v1"), ("services", "/api/v1"), ("configmaps", "/api/v1"),
        ("secrets", "/api/v1"), ("pods", "/api/v1"))  # fmt: skip


def timed(project: KubeProject, *args: str) -> float:
    started = time.monotonic()
    project.ok(*args, timeout=900)
    return time.monotonic() - started


def leftovers(project: KubeProject, settle_s: float = 30.0) -> int:
    """The stack's objects still there once deleted pods have had `settle_s` to go."""
    deadline = time.monotonic() + settle_s
    while True:
        left = sum(len(project.objects(kind, api)) for kind, api in LEFT)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="llmfleet-bench-k8s-") as tmp, contextlib.ExitStack() as stack:
        root = Path(tmp)
        gguf_dir = root / "gguf"
        gguf_dir.mkdir()
        write_tiny_gguf(gguf_dir / "tiny.gguf")
        path = [engine_build.ensure_built(), kubernetes_build.ensure_provider_built()]
        backends = stack.enter_context(backend_standins())
        litellm_port = free_port()
        pools = [GpuPool("gpu-a", nodes=2, gpus=2), GpuPool("cpu", nodes=1, gpus=0)]
        cluster = stack.enter_context(running_cluster(kubernetes_build.ensure_built(), root / "cluster", pools=pools,
                                                      forwards=loopback_forwards(backends, litellm_port)))  # fmt: skip
        project = make_project(root / "project", path, cluster)
        stack_text = stack_file(cluster.kubeconfig, gguf_dir)
        init_stack(project, FULL, stack_text)
        policy = ["--policy-pack", "policy", "--policy-pack-config", str(root / "policy.json")]
        (root / "policy.json").write_text(json.dumps({"gateway-drift": {"waitSeconds": 60}}))

        def serve(catalog: str) -> contextlib.AbstractContextManager[str]:
            """The real LiteLLM, where kwok sends the gateway pods' port, serving what `catalog` deploys."""
            project.write(catalog, stack_text)
            config = loopback_config(render_gateway_config(load_fleet(project.root, STACK)), backends)
            return running_proxy(config, root, port=litellm_port)

        try:
            with serve(FULL):
                preview = timed(project, "preview", *policy)
                up = timed(project, "up", "--yes", "--skip-preview", *policy)
            with serve(CHANGED):
                watch = ReadyWatch(cluster, "gateway")
                watch.start()
                try:
                    change = timed(project, "up", "--yes", "--skip-preview", *policy)
                finally:
                    watch.stop()
            destroy = timed(project, "destroy", "--yes", "--skip-preview")
        except AssertionError as exc:
            print(f"deploy_kubernetes: {exc}", file=sys.stderr)
            project.pulumi("destroy", "--yes", "--skip-preview")
            return 1
        left = leftovers(project)
    fewest = watch.fewest if watch.fewest is not None else 0
    print(f"kubernetes: preview {preview:.1f} s, up {up:.1f} s, change {change:.1f} s, destroy {destroy:.1f} s; "
          f"gateway ready never below {fewest}; policy passed; leftovers {left}")  # fmt: skip
    return 0 if fewest >= 2 and left == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
