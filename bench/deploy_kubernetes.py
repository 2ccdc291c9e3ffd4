"""Benchmark: wall times of a real deploy to Kubernetes with the real Pulumi engine and provider.

    .venv/bin/python bench/deploy_kubernetes.py

The same pieces as tests/test_kubernetes_deploy_real.py and tests/test_kubernetes_checks_real.py:
the Pulumi CLI and the pulumi-kubernetes provider built from Go modules, a real Kubernetes v1.37.2
control plane with kwok's fake GPU nodes on loopback (tests/kubernetes_cluster.py), the fleet of
tests/kubernetes_deploy.py (Ollama with a model pulled from the tests' registry and one created
from a GGUF by the real Ollama through the pods' exec, vLLM, llama-server, llama-cpp-python, a
gateway of 2 replicas), and the policy pack reaching the gateway through the API server: kwok
forwards the gateway pods' port to the real LiteLLM serving the deployed config (each backend's
port to what plays it: a stand-in, the real Ollama). Timed: `pulumi
preview --policy-pack policy` before anything exists, the first `pulumi up --policy-pack policy`,
a catalog change (an alias more, so a new gateway config, and a new environment for vLLM on a GPU
pool where no node has its 2 GPUs free) while the gateway Service's ready endpoints are watched, and `pulumi destroy`.
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
from tests.kubernetes_deploy import STACK, KubeProject, ReadyWatch, deployable
from tests.litellm_proxy import running_proxy

LEFT = (("deployments", "/apis/apps/v1"), ("services", "/api/v1"), ("configmaps", "/api/v1"),
        ("secrets", "/api/v1"), ("pods", "/api/v1"))  # fmt: skip


def full(catalog: str) -> str:
    """vLLM on 2 GPUs: with llama-server's 2 and Ollama's 1 on three 2-GPU nodes, no node has 2 free."""
    return catalog.replace("gpus: [0]", "gpus: [0, 1]")


def changed(catalog: str) -> str:
    """An alias more (a new gateway config) and a new environment for vLLM."""
    served = "    served_name: tiny-vllm\n"
    return full(catalog).replace(served, served + "    env: {VLLM_LOGGING_LEVEL: DEBUG}\n") + "    code: tiny-native\n"


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
    with tempfile.TemporaryDirectory(prefix="llmfleet-bench-k8s-") as tmp:
        root = Path(tmp)
        with deployable(root) as (project, side, stack_text):
            policy = ["--policy-pack", "policy", "--policy-pack-config", str(root / "policy.json")]
            (root / "policy.json").write_text(json.dumps({"gateway-drift": {"waitSeconds": 60}}))

            def serve(catalog: str) -> contextlib.AbstractContextManager[str]:
                """The real LiteLLM, where kwok sends the gateway pods' port, serving what `catalog` deploys."""
                project.write(catalog, stack_text)
                config = side.gateway_config(render_gateway_config(load_fleet(project.root, STACK)))
                return running_proxy(config, root, port=side.gateway_port)

            try:
                with serve(full(side.catalog)):
                    preview = timed(project, "preview", *policy)
                    up = timed(project, "up", "--yes", "--skip-preview", *policy)
                with serve(changed(side.catalog)):
                    watch = ReadyWatch(project.cluster, "gateway")
                    watch.start()
                    try:
                        change = timed(project, "up", "--yes", "--skip-preview", *policy)
                    finally:
                        watch.stop()
                destroy = timed(project, "destroy", "--yes", "--skip-preview")
            except AssertionError as exc:
                print(f"deploy_kubernetes: {exc}", file=sys.stderr)
                return 1
            left = leftovers(project)
    fewest = watch.fewest if watch.fewest is not None else 0
    print(f"kubernetes: preview {preview:.1f} s, up {up:.1f} s, change {change:.1f} s, destroy {destroy:.1f} s; "
          f"gateway ready never below {fewest}; policy passed; leftovers {left}")  # fmt: skip
    return 0 if fewest >= 2 and left == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
