"""The fleet deployed to a real Kubernetes control plane by the real Pulumi engine and the real
pulumi-kubernetes provider (tests/kubernetes_deploy.py): `preview` and `up` of a `target:
kubernetes` stack; the objects read back from the API server as designed (each server a Deployment
of one pod under Recreate with whole GPUs of its pool, a Service named for it, a cache claim bound;
the gateway's replicas, its rendered config and keys); `destroy` leaving nothing of the stack but
the kept cache claims."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import yaml

from llmfleet import declared_models, load_fleet, render_gateway_config

from .kubernetes_cluster import GPU_RESOURCE, POOL_LABEL
from .kubernetes_deploy import (
    GPU_POOL,
    NAMESPACE,
    STACK,
    KubeProject,
    LoopbackFleet,
    ReadyWatch,
    deployable,
    dumps,
    stack_file,
)
from .litellm_proxy import MASTER_KEY

pytestmark = [pytest.mark.real_kubernetes, pytest.mark.real_deploy, pytest.mark.real_ollama, pytest.mark.timeout(900)]


@dataclass
class Deployed:
    project: KubeProject
    side: LoopbackFleet  # what plays the pods' ports and execs on this host (the real Ollama among them)

    @property
    def catalog(self) -> str:
        return self.side.catalog

    def stack(self, **pool: int) -> str:
        assert self.project.gguf_dir is not None
        return stack_file(self.project.cluster.kubeconfig, self.project.gguf_dir, **pool)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    with deployable(tmp_path_factory.mktemp("kube-deploy")) as (project, side, _):
        yield Deployed(project, side)


@pytest.fixture(scope="module")
def project(deployed: Deployed) -> KubeProject:
    return deployed.project


# Each server that caches weights: llama-cpp-python reads only /models.
CLAIMS = {"ollama-cache", "vllm-cache", "native-cache"}


def test_validate_and_preview_a_kubernetes_stack(project: KubeProject) -> None:
    done = project.llmfleet("validate", "--stack", STACK)
    assert done.returncode == 0, done.stdout + done.stderr
    done = project.ok("preview", "--diff", "--policy-pack", "policy")  # as a pull request's preview runs it
    assert "kubernetes:apps/v1:Deployment" in done.stdout, project.tail()


def test_up_creates_each_server_as_designed(deployed: Deployed) -> None:
    project = deployed.project
    project.ok("up", "--yes", "--skip-preview")
    deployments = project.objects("deployments", "/apis/apps/v1")
    assert set(deployments) == {"ollama", "vllm", "native", "python", "gateway"}, sorted(deployments)
    # Ollama's models, made in its pod through the API server's exec: the real Ollama lists both.
    assert deployed.side.ollama.ollama.tags() == sorted([deployed.side.ollama.pull, "Tiny-House:latest"])
    ollama = deployments["ollama"]["spec"]["template"]["spec"]["containers"][0]
    assert ollama["resources"]["limits"] == {GPU_RESOURCE: "1"}
    assert {m["mountPath"]: m.get("subPath") for m in ollama["volumeMounts"]}["/root/.ollama"] == "ollama"
    vllm = deployments["vllm"]
    assert vllm["spec"]["strategy"]["type"] == "Recreate", dumps(vllm["spec"])
    pod = vllm["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["resources"]["limits"] == {GPU_RESOURCE: "1"}, dumps(container)
    assert pod["nodeSelector"] == {POOL_LABEL: "gpu-a"}
    assert pod["enableServiceLinks"] is False and pod["automountServiceAccountToken"] is False
    assert pod["terminationGracePeriodSeconds"] == 60
    assert "NVIDIA_VISIBLE_DEVICES" not in {e["name"] for e in container.get("env", [])}
    # vLLM's 30-minute start budget is the startup probe's, so a long model load is never killed.
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 1800, dumps(startup)
    assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/root/.cache/huggingface", "/dev/shm"}
    native = deployments["native"]["spec"]["template"]["spec"]
    assert native["containers"][0]["resources"]["limits"] == {GPU_RESOURCE: str(GPU_POOL.gpus)}  # `gpus: all`
    assert {"name": "gguf", "hostPath": {"path": str(project.gguf_dir), "type": "Directory"}} in native["volumes"]
    python = deployments["python"]["spec"]["template"]["spec"]
    assert "resources" not in python["containers"][0] or not python["containers"][0]["resources"]

    services = project.objects("services")
    assert {s: services[s]["spec"]["ports"][0]["port"] for s in services} == {
        "ollama": 11434, "vllm": 8000, "native": 8080, "python": 8001, "gateway": 4000}  # fmt: skip
    claims = project.objects("persistentvolumeclaims")
    assert set(claims) == CLAIMS, sorted(claims)
    assert {c["status"]["phase"] for c in claims.values()} == {"Bound"}
    pods = project.objects("pods")
    nodes = {p["metadata"]["labels"]["app.kubernetes.io/instance"]: p["spec"].get("nodeName") for p in pods.values()}
    assert {nodes["ollama"], nodes["vllm"], nodes["native"]} <= set(GPU_POOL.node_names()), nodes
    assert all(p["status"]["phase"] == "Running" for p in pods.values()), dumps([p["status"] for p in pods.values()])
    # What Pulumi holds is what the cluster has: a refresh finds nothing to change, and a second `up` neither.
    project.ok("refresh", "--yes", "--skip-preview", "--expect-no-changes")
    project.ok("up", "--yes", "--skip-preview", "--expect-no-changes")


def test_the_gateway_serves_the_rendered_config_with_its_keys_from_a_secret(project: KubeProject) -> None:
    gateway = project.objects("deployments", "/apis/apps/v1")["gateway"]
    assert gateway["spec"]["replicas"] == 2
    assert gateway["spec"]["strategy"] == {"type": "RollingUpdate",
                                           "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}  # fmt: skip
    pod = gateway["spec"]["template"]["spec"]
    [container] = pod["containers"]
    key_env = next(e for e in container["env"] if e["name"] == "LITELLM_MASTER_KEY")
    secret_name = key_env["valueFrom"]["secretKeyRef"]["name"]
    secret = project.cluster.get(f"/api/v1/namespaces/{NAMESPACE}/secrets/{secret_name}")
    assert base64.b64decode(secret["data"]["LITELLM_MASTER_KEY"]).decode() == MASTER_KEY
    config_name = next(v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v)
    config = project.cluster.get(f"/api/v1/namespaces/{NAMESPACE}/configmaps/{config_name}")
    fleet = load_fleet(project.root, STACK)
    assert config["data"]["config.yaml"] == render_gateway_config(fleet)
    served = {m["model_name"] for m in yaml.safe_load(config["data"]["config.yaml"])["model_list"]}
    assert served == {"tiny-ollama", "Tiny-House", "tiny-vllm", "tiny-native", "tiny-python"}, served
    assert set(declared_models(fleet.catalog)) == served | {"chat"}
    assert "api_base: http://vllm:8000/v1" in config["data"]["config.yaml"]
    # The master key is in the Secret only: neither the config nor the Deployment holds it.
    assert MASTER_KEY not in config["data"]["config.yaml"] and MASTER_KEY not in str(gateway)


def test_a_catalog_change_rolls_the_gateway_create_first_and_a_full_gpu_pool_without_a_spare(
    deployed: Deployed,
) -> None:
    """One change: an alias more (a new gateway config) and a new environment for vLLM, on a pool with
    no node of 2 free GPUs (vLLM 2, llama-server 2 and Ollama 1 on three nodes of 2). The preview
    shows the config replaced create-first; the `up` rolls the gateway with never fewer ready
    endpoints than its 2 replicas, and rolls vLLM although no node has its 2 GPUs spare (Recreate: a
    RollingUpdate's surge pod would wait forever)."""
    project = deployed.project
    full = deployed.catalog.replace("gpus: [0]", "gpus: [0, 1]")
    project.write(full, deployed.stack())
    project.ok("up", "--yes", "--skip-preview")
    before = project.objects("deployments", "/apis/apps/v1")
    old_config = next(v["configMap"]["name"] for v in before["gateway"]["spec"]["template"]["spec"]["volumes"]
                      if "configMap" in v)  # fmt: skip

    changed = full.replace(
        "    served_name: tiny-vllm\n", "    served_name: tiny-vllm\n    env: {VLLM_LOGGING_LEVEL: DEBUG}\n"
    )
    project.write(changed + "    code: tiny-native\n", deployed.stack())
    steps = project.preview_steps()
    assert steps["gateway-config"] == "replace", steps
    assert steps["gateway"] == "update" and steps["vllm"] == "update", steps
    assert steps.get("native", "same") == "same", steps

    watch = ReadyWatch(project.cluster, "gateway")
    watch.start()
    try:
        done = project.ok("up", "--yes", "--skip-preview")
    finally:
        watch.stop()
    # Create-first, and the old config deleted only once the gateway has rolled to the new one.
    events = [
        re.search(pattern, done.stdout)
        for pattern in (
            r"gateway-config creating replacement",
            r"gateway-rollout updated",
            r"gateway-config deleting original",
        )
    ]
    assert all(events) and events[0].start() < events[1].start() < events[2].start(), project.tail()  # type: ignore[union-attr]
    assert watch.polls > 5 and watch.fewest is not None and watch.fewest >= 2, watch.seen

    after = project.objects("deployments", "/apis/apps/v1")
    new_config = next(v["configMap"]["name"] for v in after["gateway"]["spec"]["template"]["spec"]["volumes"]
                      if "configMap" in v)  # fmt: skip
    assert new_config != old_config
    configs = project.objects("configmaps")
    assert set(configs) == {new_config}, sorted(configs)  # the old one deleted after the roll
    assert "code" in configs[new_config]["data"]["config.yaml"]
    env = {e["name"]: e.get("value") for e in after["vllm"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["VLLM_LOGGING_LEVEL"] == "DEBUG"
    assert after["vllm"]["status"]["updatedReplicas"] == 1 == after["vllm"]["status"]["readyReplicas"]
    vllm_pods = [p for p in project.objects("pods").values()
                 if p["metadata"]["labels"]["app.kubernetes.io/instance"] == "vllm"]  # fmt: skip
    assert len(vllm_pods) == 1 and vllm_pods[0]["status"]["phase"] == "Running", dumps(vllm_pods)


def test_destroy_leaves_only_the_kept_caches(deployed: Deployed) -> None:
    project = deployed.project
    project.ok("destroy", "--yes", "--skip-preview")
    assert deployed.side.ollama.ollama.tags() == []  # each model's delete ran `ollama rm` in the pod
    # Gone when `destroy` returns, pods included (each Deployment's deletion is waited for, in the
    # foreground): an `up` right after can create the same names, and a GPU is free once its pod is gone.
    for kind, api in (("deployments", "/apis/apps/v1"), ("pods", "/api/v1"), ("services", "/api/v1"),
                      ("configmaps", "/api/v1"), ("secrets", "/api/v1")):  # fmt: skip
        assert not project.objects(kind, api), kind
    claims = project.objects("persistentvolumeclaims")
    assert set(claims) == CLAIMS, sorted(claims)


def test_a_fleet_that_does_not_fit_fails_fast_naming_why(deployed: Deployed) -> None:
    """The stack believes its pool bigger than it is, and names a pool no node is in: the `up` fails
    in seconds, with the scheduler's reasons, instead of waiting out vLLM's half-hour start budget."""
    project = deployed.project
    stack = deployed.stack(gpus_per_node=4)
    stack = stack.replace(
        "    gateway: {replicas: 2, pool: cpu}\n",
        "    gateway: {replicas: 2, pool: cpu}\n    unschedulable_seconds: 3\n",
    )
    stack = stack.replace("      cpu:\n", "      gpu-z:\n        node_selector: {llmfleet.dev/pool: gpu-z}\n"
                          "        gpus_per_node: 4\n      cpu:\n")  # fmt: skip
    stack = stack.replace("native: {pool: gpu-a}", "native: {pool: gpu-z}")
    project.write(deployed.catalog.replace("gpus: [0]", "gpus: [0, 1, 2]"), stack)
    started = time.monotonic()
    done = project.pulumi("up", "--yes", "--skip-preview", timeout=300)
    took = time.monotonic() - started
    assert done.returncode != 0, project.tail()
    assert took < 120, f"{took:.0f} s: not fast"
    assert re.search(r"Deployment llm/vllm: pod vllm-\S+ cannot be scheduled: 0/\d nodes are available:.*"
                     r"Insufficient nvidia.com/gpu", done.stdout), project.tail()  # fmt: skip
    assert re.search(r"Deployment llm/native: pod native-\S+ cannot be scheduled: .*didn't match Pod's node "
                     r"affinity/selector", done.stdout), project.tail()  # fmt: skip
    project.ok("destroy", "--yes", "--skip-preview")
