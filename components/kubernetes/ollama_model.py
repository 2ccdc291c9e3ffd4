"""One Ollama model on Kubernetes, pulled or created from a GGUF file, as a Pulumi dynamic resource:
what it does is the same as on Docker (components/servers/ollama_model.py: pull, create from a GGUF
through a temporary Modelfile, list, rm and its retry); this module says only how a command runs
in the server: in the Ollama container of the newest ready pod of the Deployment named for the
provider, through the API server's `exec` (llmfleet/_kube.py `exec_in_pod`), as `kubectl exec
deploy/<provider> -c ollama` does. The machine that runs `pulumi up` therefore needs the stack's
kubeconfig context to hold `get` and `create` on `pods/exec` in the namespace (Kubernetes 1.37 checks
both for a websocket exec), beside `get` and `list` on Deployments and pods; no port is opened.

A Deployment that is missing or has no ready pod is a server that is down, as a stopped container
is on Docker: delete then succeeds without touching the models' claim (kept on destroy), and a
refresh shows the model as gone. The kubeconfig is read from its path at each call, never copied
into the state (the state holds the path and the context, as the stack's cluster provider does).

Pulumi pickles the provider by reference to this module into the state and runs it in another
process started in the program's directory; importing this module must register nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import DiffResult, Resource, UpdateResult

from llmfleet import OllamaProvider

from ..servers.ollama import model_resource_name
from ..servers.ollama_model import OllamaModelLifecycle, ServerDown, model_props
from .workload import ServerWorkload, container_name

# (props, argv, timeout seconds) -> (exit code, stdout, stderr); tests pass a fake one.
PodRunner = Callable[[dict[str, Any], Sequence[str], float], tuple[int, str, str]]


def run_in_pod(props: dict[str, Any], argv: Sequence[str], timeout: float) -> tuple[int, str, str]:
    """`argv` in the container `container` of the ready pod of the Deployment `deployment`."""
    from llmfleet._kube import KubeError, NoReadyPod, deployment_ready_pod, exec_in_pod, load_kubeconfig

    namespace, deployment = props["namespace"], props["deployment"]
    try:
        access = load_kubeconfig(props["kubeconfig"], props["context"])
        pod = deployment_ready_pod(access, namespace, deployment)
        done = exec_in_pod(access, namespace, pod, props["container"], argv, timeout)
    except NoReadyPod as exc:
        raise ServerDown(str(exc)) from None
    except KubeError as exc:
        raise RuntimeError(str(exc)) from None
    return done.exit_code, done.stdout, done.stderr


class KubernetesOllamaModelProvider(OllamaModelLifecycle):
    """The model in the Ollama of Deployment `deployment` in `namespace` of the cluster `context`
    names: a change of those, of the container, of the source file or of the tag replaces (a moved
    kubeconfig file does not)."""

    PLACEMENT = ("context", "namespace", "deployment", "container")

    def __init__(self, runner: PodRunner | None = None) -> None:
        self._runner = runner

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """As on every target; a kubeconfig at another path (the project moved, another machine)
        only updates the path in the state, so a later delete or refresh reads the file that exists."""
        diff = super().diff(id_, olds, news)
        if not diff.changes and olds.get("kubeconfig") != news.get("kubeconfig"):
            return DiffResult(changes=True, replaces=[], delete_before_replace=True)
        return diff

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs={**news, "digest": olds.get("digest")})

    def run(self, props: dict[str, Any], argv: Sequence[str], timeout: float) -> tuple[int, str, str]:
        return (self._runner or run_in_pod)(props, argv, timeout)

    def where(self, props: dict[str, Any]) -> str:
        return f"deployment {props['namespace']}/{props['deployment']}"

    def rm_command(self, props: dict[str, Any], name: str) -> str:
        return (f"kubectl --context {props['context']} -n {props['namespace']} exec deploy/{props['deployment']} "
                f"-c {props['container']} -- ollama rm {name}")  # fmt: skip

    def model_id(self, props: dict[str, Any]) -> str:
        return f"{props['namespace']}/{props['deployment']}/{props['tag']}"


@dataclass
class KubernetesOllamaModelArgs:
    kubeconfig: str  # the kubeconfig's absolute path where `pulumi up` runs
    context: str
    namespace: str
    deployment: str  # the Ollama server's Deployment (named for its provider)
    container: str  # its Ollama container
    tag: str  # what Ollama lists: the library tag or hf.co reference pulled, or the name created
    gguf: str | None = None  # create the model from this file in the pod instead of pulling
    insecure: bool = False  # pull over plain http (`ollama pull --insecure`)


class KubernetesOllamaModel(Resource):
    """Type token `pulumi-python:dynamic:Resource` (fixed by the SDK for dynamic resources)."""

    digest: pulumi.Output[str]

    def __init__(self, name: str, args: KubernetesOllamaModelArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props: dict[str, Any] = {
            "kubeconfig": args.kubeconfig,
            "context": args.context,
            "namespace": args.namespace,
            "deployment": args.deployment,
            "container": args.container,
            **model_props(args.tag, args.gguf, args.insecure),
        }
        super().__init__(KubernetesOllamaModelProvider(), name, props, opts)


def ollama_models(
    name: str,
    server: ServerWorkload,
    provider: OllamaProvider,
    *,
    kubeconfig: str,
    context: str,
    namespace: str,
    keep: bool,
) -> list[KubernetesOllamaModel]:
    """One model resource per model `provider` declares, in its server `name`'s Deployment, created once it
    has rolled out (its rollout wait). Named as on Docker, by the model Ollama lists
    (components/servers/ollama.py `model_resource_name`), so renaming a gateway name over the same
    pull changes nothing. The Deployment's name goes in as the plain value, never its output: the
    engine would otherwise re-diff each model with that input unknown when the Deployment is
    replaced, and replace it (`ollama rm`, a pull again); the models live on the server's claim,
    which outlives any pod. `keep`: the models are in a store llmfleet did not create (an existing
    claim): never removed, neither on destroy nor when the catalog drops one."""
    return [
        KubernetesOllamaModel(
            model_resource_name(name, m),
            KubernetesOllamaModelArgs(kubeconfig=kubeconfig, context=context, namespace=namespace, deployment=name,
                                      container=container_name("ollama"), tag=m.ollama_name, gguf=m.gguf,
                                      insecure=m.insecure),
            opts=pulumi.ResourceOptions(parent=server, depends_on=[server.ready], retain_on_delete=keep),
        )
        for m in provider.models
    ]  # fmt: skip
