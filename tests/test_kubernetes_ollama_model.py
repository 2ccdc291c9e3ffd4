"""The Ollama model provider on Kubernetes without a cluster: the same lifecycle as on Docker
(components/servers/ollama_model.py, covered in depth by tests/test_ollama_model_provider.py) with
its commands run in the Deployment's ready pod; here what differs: the argv that reaches the pod
(no `docker exec` around it), where messages say the model is, a Deployment with no ready pod taken
as a server that is down, other API errors failing loudly, the kubeconfig path that moves without a
replace, and the provider loading from its pickle as Pulumi runs it. The real cluster, kwok and the
real Ollama: tests/test_kubernetes_ollama_real.py."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import pytest
from pulumi.dynamic.dynamic import serialize_provider

from components.kubernetes import ollama_model
from components.kubernetes.ollama_model import KubernetesOllamaModelProvider, run_in_pod
from components.servers.ollama_model import ServerDown
from llmfleet import _kube
from llmfleet._kube import ExecResult, KubeError, NoReadyPod

from .pulumi_program import PROJECT

LIST = """NAME                ID              SIZE      MODIFIED
qwen2.5:0.5b        a8b0c5157701    397 MB    2 minutes ago
"""
PROPS = {"kubeconfig": "/home/ops/.kube/config", "context": "gpu-cluster", "namespace": "llm",
         "deployment": "ollama", "container": "ollama", "tag": "qwen2.5:0.5b", "digest": None}  # fmt: skip


class FakePod:
    """Answers `ollama <cmd>` (or the shell that runs `ollama create`) like the real CLI in the pod."""

    def __init__(self, listing: str = LIST.splitlines()[0], fail: str | None = None) -> None:
        self.listing, self.fail, self.calls = listing, fail, []

    def __call__(self, props: dict[str, Any], argv: Sequence[str], timeout: float) -> tuple[int, str, str]:
        self.calls.append(list(argv))
        command = argv[1] if argv[0] == "ollama" else "create"
        if command == self.fail:
            return 1, "", "Error: pull model manifest: file does not exist"
        if command == "pull":
            self.listing = LIST
        if command == "rm":
            self.listing = LIST.splitlines()[0]
        if command == "create":
            self.listing = LIST + "house:latest        5d1e4bbbb0f1    1.1 GB    1 second ago\n"
        return 0, self.listing if command == "list" else "success\n", ""


def test_create_pulls_in_the_pod_and_ids_the_model_by_its_deployment() -> None:
    fake = FakePod()
    result = KubernetesOllamaModelProvider(fake).create(PROPS)
    assert fake.calls == [["ollama", "list"], ["ollama", "pull", "qwen2.5:0.5b"], ["ollama", "list"]]
    assert (result.id, result.outs["digest"]) == ("llm/ollama/qwen2.5:0.5b", "a8b0c5157701")


def test_a_model_from_a_file_is_created_through_a_modelfile_in_the_pod() -> None:
    fake = FakePod()
    result = KubernetesOllamaModelProvider(fake).create({**PROPS, "tag": "house", "gguf": "/models/house.gguf"})
    assert fake.calls[0][:2] == ["sh", "-c"] and fake.calls[0][-3:] == ["sh", "/models/house.gguf", "house"]
    assert result.outs["digest"] == "5d1e4bbbb0f1"


def test_a_failed_pull_names_the_deployment() -> None:
    with pytest.raises(RuntimeError, match=r"^`ollama pull qwen2.5:0.5b` in deployment llm/ollama failed \(1\): "
                                           r"Error: pull model manifest"):  # fmt: skip
        KubernetesOllamaModelProvider(FakePod(fail="pull")).create(PROPS)


def test_delete_runs_rm_in_the_pod() -> None:
    fake = FakePod(listing=LIST)
    KubernetesOllamaModelProvider(fake).delete("id", PROPS)
    assert fake.calls == [["ollama", "list"], ["ollama", "rm", "qwen2.5:0.5b"]]


def test_another_spelling_says_how_to_remove_it_with_kubectl() -> None:
    fake = FakePod(listing=LIST.replace("qwen2.5:0.5b  ", "Qwen2.5:0.5b  "))
    with pytest.raises(RuntimeError) as refused:
        KubernetesOllamaModelProvider(fake).create(PROPS)
    assert "Ollama in deployment llm/ollama has this model as 'Qwen2.5:0.5b'" in str(refused.value)
    assert ("(`kubectl --context gpu-cluster -n llm exec deploy/ollama -c ollama -- ollama rm Qwen2.5:0.5b`)"
            in str(refused.value))  # fmt: skip


def down(props: dict[str, Any], argv: Sequence[str], timeout: float) -> tuple[int, str, str]:
    raise ServerDown("deployment llm/ollama (selector ...): none of its 1 pods is ready (ollama-1 Pending)")


def test_no_ready_pod_is_a_server_down_refresh_shows_gone_and_delete_leaves_the_claim() -> None:
    provider = KubernetesOllamaModelProvider(down)
    assert (provider.read("id", PROPS).id, provider.read("id", PROPS).outs) == (None, {})
    provider.delete("id", PROPS)  # nothing to remove it through: done, the claim keeps the files
    with pytest.raises(ServerDown, match="none of its 1 pods is ready"):
        provider.create(PROPS)


def test_diff_replaces_on_a_new_place_and_moves_the_kubeconfig_path_in_place() -> None:
    provider = KubernetesOllamaModelProvider()
    assert provider.diff("id", PROPS, dict(PROPS)).changes is False
    for key, value in (("context", "other"), ("namespace", "llm2"), ("deployment", "ollama-b"), ("gguf", "/m/x")):
        diff = provider.diff("id", PROPS, {**PROPS, key: value})
        assert (diff.changes, diff.replaces) == (True, [key]), key
    moved = {**PROPS, "kubeconfig": "/srv/ci/kubeconfig"}
    diff = provider.diff("id", PROPS, moved)
    assert (diff.changes, diff.replaces) == (True, [])
    assert provider.update("id", {**PROPS, "digest": "a8b0c5157701"}, moved).outs == {**moved, "digest": "a8b0c5157701"}


def test_run_in_pod_finds_the_ready_pod_and_maps_api_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []
    monkeypatch.setattr(_kube, "load_kubeconfig", lambda path, context: seen.append((path, context)) or "access")
    monkeypatch.setattr(_kube, "deployment_ready_pod", lambda access, ns, name: f"{name}-7f9-abc")

    def exec_in_pod(access: str, ns: str, pod: str, container: str, argv: Sequence[str], timeout: float) -> ExecResult:
        seen.append((access, ns, pod, container, list(argv), timeout))
        return ExecResult(3, "out", "err")

    monkeypatch.setattr(_kube, "exec_in_pod", exec_in_pod)
    assert run_in_pod(PROPS, ["ollama", "list"], 60) == (3, "out", "err")
    assert seen == [("/home/ops/.kube/config", "gpu-cluster"),
                    ("access", "llm", "ollama-7f9-abc", "ollama", ["ollama", "list"], 60)]  # fmt: skip

    def no_pod(access: str, ns: str, name: str) -> str:
        raise NoReadyPod("deployment llm/ollama: not found; is it deployed?")

    monkeypatch.setattr(_kube, "deployment_ready_pod", no_pod)
    with pytest.raises(ServerDown, match=r"^deployment llm/ollama: not found; is it deployed\?$"):
        run_in_pod(PROPS, ["ollama", "list"], 60)

    def forbidden(access: str, ns: str, name: str) -> str:
        raise KubeError("deployment llm/ollama: forbidden for the user of x (403)")

    monkeypatch.setattr(_kube, "deployment_ready_pod", forbidden)
    with pytest.raises(RuntimeError, match=r"forbidden") as caught:
        run_in_pod(PROPS, ["ollama", "list"], 60)
    assert not isinstance(caught.value, ServerDown)  # refresh and delete fail loudly, never call it gone


def test_pickled_provider_loads_as_pulumi_runs_it() -> None:
    """Pulumi pickles the provider into the state and runs it in a fresh `python -m
    pulumi.dynamic` started in the program's directory: that must import it and register nothing."""
    blob = serialize_provider(KubernetesOllamaModelProvider())
    script = (
        "import sys, dill, base64\n"
        "p = dill.loads(base64.b64decode(sys.argv[1]))\n"
        "import pulumi.runtime.settings as s\n"
        "assert s.SETTINGS.monitor is None, 'importing the provider started a Pulumi program'\n"
        "print(type(p).__module__, p.where({'namespace': 'llm', 'deployment': 'ollama'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, blob], capture_output=True, text=True, timeout=60,
                          cwd=PROJECT)  # fmt: skip
    assert (done.returncode, done.stdout.strip()) == (0, f"{ollama_model.__name__} deployment llm/ollama"), done.stderr
