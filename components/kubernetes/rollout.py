"""Wait until a Deployment has rolled out, failing fast when it cannot (a dynamic provider).

pulumi-kubernetes' own Deployment awaiter waits the whole timeout for a pod the scheduler cannot
place (it logs the reason and fails only at the deadline: ten minutes by default, our start budget
of half an hour for vLLM). So each Deployment's readiness wait is replaced (`pulumi.com/waitFor` a
field it has at once; components/kubernetes/workload.py says why not `skipAwait`) and this resource
waits for it instead, polling the Deployment and its pods through the API server
(llmfleet/_kube.py) and deciding with llmfleet/_kube_rollout.py: done once every replica runs the
new template and is available with no old pod left; failed, naming the pod and the scheduler's own
words, once a pod has been unschedulable for `unschedulable_s` (Insufficient nvidia.com/gpu, no
node matching the pool), or at once when its image cannot be pulled or it keeps crashing; failed
with how far it got when the kind's start budget runs out.

The Deployment's `metadata.generation` is an input: a change to the template is a new generation,
so the wait runs again on every roll. Pulumi pickles the provider by reference to this module into
the state (as components/docker/container_health.py); importing it registers nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from llmfleet._kube import KubeError, get_json, load_kubeconfig
from llmfleet._kube_rollout import RolloutWatch, Verdict

POLL_S = 1.0
WATCHED = ("generation", "deployment", "namespace", "budget_s", "unschedulable_s")


class RolloutProvider(ResourceProvider):
    def __init__(self, poll_s: float = POLL_S) -> None:
        self._poll_s = poll_s

    def observe(self, props: dict[str, Any], watch: RolloutWatch) -> Verdict:
        access = load_kubeconfig(props["kubeconfig"], props["context"])
        namespace, name = props["namespace"], props["deployment"]
        deployment = get_json(access, f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
                              what=f"Deployment {namespace}/{name}")  # fmt: skip
        selector = ",".join(f"{k}={v}" for k, v in sorted(deployment["spec"]["selector"]["matchLabels"].items()))
        pods = get_json(access, f"/api/v1/namespaces/{namespace}/pods", {"labelSelector": selector},
                        what=f"the pods of {namespace}/{name}")["items"]  # fmt: skip
        return watch.observe(deployment, pods, time.monotonic())

    def wait(self, props: dict[str, Any]) -> None:
        name = f"{props['namespace']}/{props['deployment']}"
        watch = RolloutWatch(f"Deployment {name}", unschedulable_s=float(props["unschedulable_s"]))
        deadline = time.monotonic() + float(props["budget_s"])
        verdict = Verdict(False, progress="not yet read")
        while True:
            try:
                verdict = self.observe(props, watch)
            except KubeError as exc:
                verdict = Verdict(False, progress=f"the API server did not answer: {exc}")
            if verdict.done:
                return
            if verdict.failure:
                raise RuntimeError(f"{verdict.failure}. Nothing waits for it: fix the stack or the cluster, then "
                                   "`pulumi up` again.")  # fmt: skip
            if time.monotonic() > deadline:
                raise RuntimeError(f"Deployment {name} did not roll out within its start budget of "
                                   f"{props['budget_s']} s: {verdict.progress}. `kubectl -n {props['namespace']} "
                                   f"describe deployment {props['deployment']}` and its pods say why.")  # fmt: skip
            time.sleep(self._poll_s)

    def create(self, props: dict[str, Any]) -> CreateResult:
        self.wait(props)
        return CreateResult(f"{props['namespace']}/{props['deployment']}", outs=props)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self.wait(news)
        return UpdateResult(outs=news)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in WATCHED if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, props)


@dataclass
class RolloutArgs:
    kubeconfig: str
    context: str
    namespace: str
    deployment: str
    generation: pulumi.Input[int]
    budget_s: int
    unschedulable_s: int


class Rollout(Resource):
    """Done once the Deployment has rolled out; its failure fails the `up`, naming why."""

    def __init__(self, name: str, args: RolloutArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(RolloutProvider(), name, vars(args), opts)
