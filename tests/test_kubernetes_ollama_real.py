"""Ollama's declared models on Kubernetes, for real: the real Pulumi engine and pulumi-kubernetes
provider deploy an Ollama server to the tests' control plane (tests/kubernetes_deploy.py), and each
declared model resource runs the real `ollama` CLI through the API server's exec in the server's
ready pod, against a real Ollama.

kwok runs no container, but it answers an exec by running the command on this host (a `ClusterExec`
with a `local` target, tests/kubernetes_cluster.py `LocalExec`): the exec in the pod's `ollama`
container runs the real Ollama CLI here, with OLLAMA_HOST set to a real `ollama serve` on loopback
(tests/real_ollama.py), which plays the server in the pod. The path is the product's: `exec_in_pod`
opens the exec websocket on the real API server, which sends it to kwok as to a kubelet. What kwok
changes: the command runs on the host, where /models (the pod's GGUF mount) does not exist, so the
`ollama` the exec finds is a small wrapper that reads a Modelfile's `FROM /models/...` as the test's
GGUF directory, which plays the pod's GGUF mount; and kwok 0.8.0 reports a command's non-zero exit
as an error without its code (its local exec's error is not the kubelet's ExitError), which
`exec_in_pod` reports as a KubeError.

Proved: `up` pulls one model from the tests' registry (tests/ollama_registry.py, on 127.0.0.1) and
creates one from the tiny GGUF (the real Ollama lists both); exec_in_pod's own results from the real
pod; the rights the provider needs (a ServiceAccount with `get` and `create` on pods/exec runs it; one
verb alone, or none, is a 403 naming the kubeconfig, never taken for a server that is down, and the
token is in no message); a gateway name renamed over the same pull changes nothing (no `ollama rm`,
no second pull), nor does a new image that recreates the server's pod; a catalog change that drops a
model runs `ollama rm` (gone from the list); `destroy` removes the rest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from components.kubernetes.ollama_model import run_in_pod
from components.servers.ollama_model import OllamaModelLifecycle, ServerDown
from llmfleet._kube import KubeError, deployment_ready_pod, exec_in_pod, load_kubeconfig

from . import engine_build, kubernetes_build, ollama_registry, real_ollama
from .kubernetes_cluster import GpuPool, running_cluster
from .kubernetes_deploy import (
    CONTEXT,
    NAMESPACE,
    OLLAMA_REPO,
    OLLAMA_TAG,
    STACK,
    KubeProject,
    init_stack,
    make_project,
    ollama_for_pods,
)
from .kubernetes_deploy import token_kubeconfig as deploy_token_kubeconfig
from .tiny_gguf import write_tiny_gguf

pytestmark = [pytest.mark.real_kubernetes, pytest.mark.real_deploy, pytest.mark.real_ollama, pytest.mark.timeout(600)]

CPU = GpuPool("cpu", nodes=1, gpus=0)


def catalog(pulled_name: str, from_gguf: bool, pull: str) -> str:
    house = "\n      - {name: Tiny-House, gguf: /models/tiny.gguf}" if from_gguf else ""
    return f"""\
providers:
  ollama:
    kind: ollama
    port: 11434
    models:
      - {{name: {pulled_name}, pull: "{pull}", insecure: true}}{house}
"""


def stack(kubeconfig: Path, gguf_dir: Path, ollama_image: str = "example.invalid/ollama:0.14.1") -> str:
    return f"""\
config:
  llmfleet:catalog: config/{STACK}.yaml
  llmfleet:target: kubernetes
  llmfleet:kubernetes:
    context: {CONTEXT}
    kubeconfig: {kubeconfig}
    namespace: {NAMESPACE}
    pools:
      cpu:
        node_selector: {{llmfleet.dev/pool: cpu}}
    cache_storage: {{storage_class: local-test, size: 10Gi}}
    gguf: {{host_path: {gguf_dir}}}
    gateway: {{replicas: 1, pool: cpu}}
  llmfleet:providers:
    ollama: {{pool: cpu}}
  llmfleet:gateway:
    port: 4000
  llmfleet:images:
    ollama: {ollama_image}
    litellm: example.invalid/litellm:v1.108.7
"""


class Setup:
    project: KubeProject
    ollama: real_ollama.Ollama
    registry: ollama_registry.Registry
    gguf_dir: Path

    @property
    def pull(self) -> str:
        return f"{self.registry.host}/{OLLAMA_REPO}:{OLLAMA_TAG}"

    def write(self, pulled_name: str = "tiny-pulled", from_gguf: bool = True, image: str = "ollama:0.14.1") -> None:
        config = stack(self.project.cluster.kubeconfig, self.gguf_dir, f"example.invalid/{image}")
        self.project.write(catalog(pulled_name, from_gguf, self.pull), config)

    def pods(self) -> set[str]:
        return {n for n, p in self.project.objects("pods").items() if p["metadata"]["labels"].get(
            "app.kubernetes.io/instance") == "ollama" and not p["metadata"].get("deletionTimestamp")}  # fmt: skip

    def listed(self) -> list[str]:
        return self.ollama.tags()

    def removals(self) -> int:
        """How many `ollama rm` reached the server (its request log: `DELETE "/api/delete"`)."""
        return len(
            re.findall(r'\| DELETE +"/api/delete"', (self.ollama.home / "ollama.log").read_text(errors="replace"))
        )


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("kube-ollama")
    path = [engine_build.ensure_built(), kubernetes_build.ensure_provider_built()]
    gguf_dir = root / "gguf"
    gguf_dir.mkdir()
    write_tiny_gguf(gguf_dir / "tiny.gguf")
    s = Setup()
    s.gguf_dir = gguf_dir
    with ollama_for_pods(root, gguf_dir / "tiny.gguf") as side:
        s.registry, s.ollama = side.registry, side.ollama
        with running_cluster(kubernetes_build.ensure_built(), root / "cluster", pools=[CPU],
                             execs=side.execs) as cluster:  # fmt: skip
            s.project = make_project(root / "project", path, cluster)
            s.write()
            init_stack(s.project, catalog("tiny-pulled", True, s.pull), stack(cluster.kubeconfig, gguf_dir))
            try:
                yield s
            finally:
                s.project.pulumi("destroy", "--yes", "--skip-preview", timeout=300)


def test_up_pulls_one_model_and_creates_one_from_a_gguf(setup: Setup) -> None:
    assert setup.listed() == []
    setup.project.ok("up", "--yes", "--skip-preview")
    assert setup.listed() == sorted([setup.pull, "Tiny-House:latest"]), setup.project.tail()
    assert setup.registry.store.manifest_pulls(OLLAMA_REPO, OLLAMA_TAG) == 1  # pulled from the registry, not adopted
    resources = json.loads(setup.project.ok("stack", "export").stdout)["deployment"]["resources"]
    models = {
        r["urn"].rsplit("::", 1)[1]: r
        for r in resources
        if r["type"] == "pulumi-python:dynamic:Resource" and r["urn"].rsplit("::", 1)[1].startswith("ollama-model-")
    }  # (beside the rollout waits)
    assert set(models) == {"ollama-model-Tiny-House:latest", f"ollama-model-{setup.pull}"}, sorted(models)
    house = models["ollama-model-Tiny-House:latest"]["outputs"]
    assert (house["deployment"], house["container"], house["gguf"]) == ("ollama", "ollama", "/models/tiny.gguf")


def test_exec_in_pod_through_the_real_api_server(setup: Setup) -> None:
    access = load_kubeconfig(str(setup.project.cluster.kubeconfig), CONTEXT)
    pod = deployment_ready_pod(access, NAMESPACE, "ollama")
    listed = exec_in_pod(access, NAMESPACE, pod, "ollama", ["ollama", "list"], 60)
    assert (listed.exit_code, listed.stdout.split()[:4]) == (0, ["NAME", "ID", "SIZE", "MODIFIED"]), listed
    assert "Tiny-House:latest" in listed.stdout
    both = exec_in_pod(access, NAMESPACE, pod, "ollama", ["sh", "-c", 'echo "to out $1"; echo to err >&2', "sh",
                                                         "a b"], 30)  # fmt: skip
    assert both == type(both)(0, "to out a b\n", "to err\n")
    # kwok 0.8.0 reports a local command's non-zero exit without its code (see the docstring).
    with pytest.raises(KubeError, match=r"^exec of `sh` in pod llm/ollama-\S+ container ollama: failed without an "
                                        r"exit code: .*exit status 3; its stderr: no such model$"):  # fmt: skip
        exec_in_pod(access, NAMESPACE, pod, "ollama", ["sh", "-c", "echo no such model >&2; exit 3"], 30)
    with pytest.raises(KubeError, match=r"container ollama: the API server answered 400: .*not valid for pod|"
                                        r"container other: .*other"):  # fmt: skip
        exec_in_pod(access, NAMESPACE, pod, "other", ["true"], 30)


def token_kubeconfig(setup: Setup, name: str, exec_verbs: list[str]) -> Path:
    """A kubeconfig whose user is ServiceAccount `name`'s bearer token, allowed to get and list
    Deployments and pods in the namespace, and `exec_verbs` on `pods/exec`."""
    rules = [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list"]},
             {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]  # fmt: skip
    if exec_verbs:
        rules.append({"apiGroups": [""], "resources": ["pods/exec"], "verbs": exec_verbs})
    return deploy_token_kubeconfig(setup.project.cluster, name, rules)


@pytest.mark.parametrize("verbs", [["get"], ["create"]])
def test_one_verb_on_pods_exec_is_not_enough(setup: Setup, verbs: list[str]) -> None:
    """Kubernetes 1.37 checks `get` (the websocket's GET) and `create` (asked of every websocket
    exec upgrade) on pods/exec: README.md names both."""
    props = {"context": CONTEXT, "namespace": NAMESPACE, "deployment": "ollama", "container": "ollama"}
    half = token_kubeconfig(setup, f"half-{verbs[0]}", verbs)
    with pytest.raises(RuntimeError) as caught:
        run_in_pod({**props, "kubeconfig": str(half)}, ["ollama", "list"], 60)
    assert f"kubeconfig-half-{verbs[0]}, context '{CONTEXT}' (403): pods " in str(caught.value), caught.value


def test_the_model_provider_needs_the_right_to_get_and_create_pods_exec(setup: Setup) -> None:
    props = {"context": CONTEXT, "namespace": NAMESPACE, "deployment": "ollama", "container": "ollama"}
    allowed = token_kubeconfig(setup, "deployer", ["get", "create"])
    code, out, _ = run_in_pod({**props, "kubeconfig": str(allowed)}, ["ollama", "list"], 60)
    assert code == 0 and "Tiny-House:latest" in out
    refused = token_kubeconfig(setup, "reader", [])
    with pytest.raises(RuntimeError) as caught:
        run_in_pod({**props, "kubeconfig": str(refused)}, ["ollama", "list"], 60)
    message = str(caught.value)
    assert not isinstance(caught.value, ServerDown)  # never taken for a server that is down: refresh stays loud
    expected = (rf"^exec of `ollama` in pod {NAMESPACE}/ollama-\S+ container ollama: forbidden for the user of "
                rf"{re.escape(str(refused))}, context '{CONTEXT}' \(403\): .*pods/exec")  # fmt: skip
    assert re.match(expected, message), message
    assert yaml.safe_load(refused.read_text())["users"][0]["user"]["token"] not in message


def test_a_gateway_name_renamed_over_the_same_pull_keeps_the_model(setup: Setup) -> None:
    digests = OllamaModelLifecycle.list_tags(setup.ollama.cli("list").stdout)
    setup.write(pulled_name="tiny-renamed")
    setup.project.ok("up", "--yes", "--skip-preview")
    assert setup.listed() == sorted([setup.pull, "Tiny-House:latest"]), setup.project.tail()
    assert setup.registry.store.manifest_pulls(OLLAMA_REPO, OLLAMA_TAG) == 1  # neither removed nor pulled again
    assert OllamaModelLifecycle.list_tags(setup.ollama.cli("list").stdout) == digests
    assert setup.removals() == 0


def test_a_new_ollama_pod_keeps_the_models(setup: Setup) -> None:
    """A new image recreates the server's pod (Recreate); the models live on its claim, so their
    resources are left alone: nothing removed, nothing pulled again."""
    before = setup.pods()
    setup.write(pulled_name="tiny-renamed", image="ollama:0.14.2")
    done = setup.project.ok("up", "--yes", "--skip-preview")
    assert "ollama-model" not in "".join(
        line for line in done.stdout.splitlines() if "replac" in line or "delet" in line
    )
    assert setup.pods() and setup.pods().isdisjoint(before), (before, setup.pods())
    deployment = setup.project.objects("deployments", "/apis/apps/v1")["ollama"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "example.invalid/ollama:0.14.2"
    assert setup.listed() == sorted([setup.pull, "Tiny-House:latest"]), setup.project.tail()
    assert (setup.removals(), setup.registry.store.manifest_pulls(OLLAMA_REPO, OLLAMA_TAG)) == (0, 1)


def test_a_model_dropped_from_the_catalog_is_removed(setup: Setup) -> None:
    setup.write(pulled_name="tiny-renamed", from_gguf=False, image="ollama:0.14.2")
    setup.project.ok("up", "--yes", "--skip-preview")
    assert setup.listed() == [setup.pull], setup.project.tail()
    assert setup.removals() == 1  # `ollama rm`, through the pod's exec


def test_destroy_removes_the_models(setup: Setup) -> None:
    setup.project.ok("destroy", "--yes", "--skip-preview")
    assert setup.listed() == [], setup.project.tail()
    assert setup.removals() == 2
