"""The rollout verdict (llmfleet/_kube_rollout.py) on Deployments and pods shaped as the API server
returns them, and the wait that polls it (components/kubernetes/rollout.py) with the API stood in.
What a real cluster says: tests/test_kubernetes_deploy_real.py."""

from __future__ import annotations

from typing import Any

import pytest

from components.kubernetes.rollout import RolloutProvider
from llmfleet._kube_rollout import RolloutWatch, Verdict, rolled_out

UNSCHEDULABLE = (
    "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient nvidia.com/gpu. "
    "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
)


def deployment(want: int = 2, generation: int = 2, observed: int = 2, **status: int) -> dict[str, Any]:
    return {"metadata": {"name": "gateway", "generation": generation}, "spec": {"replicas": want},
            "status": {"observedGeneration": observed, **status}}  # fmt: skip


def pod(name: str, *, unschedulable: bool = False, waiting: str | None = None, deleting: bool = False) -> dict:
    status: dict[str, Any] = {"phase": "Pending" if unschedulable else "Running", "conditions": []}
    if unschedulable:
        status["conditions"].append({"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                     "message": UNSCHEDULABLE})  # fmt: skip
    if waiting:
        state = {"waiting": {"reason": waiting, "message": "back-off pulling"}}
        status["containerStatuses"] = [{"name": "vllm", "state": state}]
    meta: dict[str, Any] = {"name": name}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-03T20:00:00Z"
    return {"metadata": meta, "status": status}


ROLLED = {"updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2, "replicas": 2}


def test_rolled_out_only_when_every_replica_is_new_and_available_and_no_old_one_is_left() -> None:
    assert rolled_out(deployment(**ROLLED))[0]
    assert not rolled_out(deployment(observed=1, **ROLLED))[0]  # the controller has not seen the change
    surge = {**ROLLED, "replicas": 3}  # an old pod still there
    done, progress = rolled_out(deployment(**surge))
    assert not done and progress == "2/2 updated, 2 ready, 2 available, 3 in all"
    assert not rolled_out(deployment(**{**ROLLED, "availableReplicas": 1}))[0]


def test_an_unschedulable_pod_fails_the_wait_after_its_grace_with_the_schedulers_words() -> None:
    watch = RolloutWatch("Deployment llm/vllm", unschedulable_s=20)
    pods = [pod("vllm-1", unschedulable=True)]
    assert watch.observe(deployment(want=1), pods, now=100.0).failure is None
    assert watch.observe(deployment(want=1), pods, now=119.0).failure is None
    verdict = watch.observe(deployment(want=1), pods, now=120.0)
    assert verdict.failure == f"Deployment llm/vllm: pod vllm-1 cannot be scheduled: {UNSCHEDULABLE}"


def test_a_pod_placed_in_its_grace_starts_the_clock_again() -> None:
    watch = RolloutWatch("d", unschedulable_s=20)
    watch.observe(deployment(want=1), [pod("a", unschedulable=True)], now=0.0)
    watch.observe(deployment(want=1), [pod("a")], now=10.0)  # placed: a node was added
    assert watch.observe(deployment(want=1), [pod("a", unschedulable=True)], now=25.0).failure is None


@pytest.mark.parametrize("reason", ["ImagePullBackOff", "CrashLoopBackOff", "InvalidImageName"])
def test_a_pod_that_cannot_start_fails_the_wait_at_once(reason: str) -> None:
    verdict = RolloutWatch("Deployment llm/vllm").observe(deployment(want=1), [pod("v", waiting=reason)], 0.0)
    assert verdict.failure is not None and f"({reason}: back-off pulling)" in verdict.failure


def test_a_pulling_pod_is_waited_for() -> None:
    watch = RolloutWatch("d", unschedulable_s=0)
    verdict = watch.observe(deployment(want=1), [pod("new", waiting="ContainerCreating")], 0.0)
    assert verdict == Verdict(False, progress="0/1 updated, 0 ready, 0 available, 0 in all")


def test_while_an_old_pod_stops_a_new_one_may_wait_for_its_gpus() -> None:
    """A Recreate, or a Deployment replaced under its name: the new pod is unschedulable until the
    old one has released its GPUs. The clock starts once the old pod is gone."""
    watch = RolloutWatch("d", unschedulable_s=20)
    stopping = [pod("new", unschedulable=True), pod("old", deleting=True)]
    for now in (0.0, 30.0, 60.0):
        verdict = watch.observe(deployment(want=1), stopping, now)
        assert verdict.failure is None and verdict.progress.endswith(", an old pod stopping"), verdict
    assert watch.observe(deployment(want=1), [pod("new", unschedulable=True)], 61.0).failure is None
    assert watch.observe(deployment(want=1), [pod("new", unschedulable=True)], 81.0).failure is not None


class Replayed(RolloutProvider):
    """The wait with the API stood in: each poll answers the next verdict."""

    def __init__(self, verdicts: list[Verdict]) -> None:
        super().__init__(poll_s=0)
        self.verdicts = verdicts

    def observe(self, props: dict[str, Any], watch: RolloutWatch) -> Verdict:
        return self.verdicts.pop(0)


PROPS = {"namespace": "llm", "deployment": "vllm", "budget_s": 60, "unschedulable_s": 20}


def test_the_wait_returns_once_rolled_out_and_raises_a_failure_naming_what_to_do() -> None:
    Replayed([Verdict(False, progress="0/1"), Verdict(True)]).wait(PROPS)
    with pytest.raises(RuntimeError, match=r"^pod x cannot be scheduled: why\. Nothing waits for it"):
        Replayed([Verdict(False, "pod x cannot be scheduled: why")]).wait(PROPS)


def test_the_wait_gives_up_at_its_budget_saying_how_far_it_got() -> None:
    provider = Replayed([Verdict(False, progress="0/1 updated")] * 3)
    with pytest.raises(RuntimeError, match=r"within its start budget of 0 s: 0/1 updated\. `kubectl -n llm describe"):
        provider.wait({**PROPS, "budget_s": 0})


def test_a_new_generation_waits_again_without_replacing() -> None:
    diff = RolloutProvider().diff("llm/vllm", {**PROPS, "generation": 1}, {**PROPS, "generation": 2})
    assert diff.changes and not diff.replaces
    assert not RolloutProvider().diff("llm/vllm", {**PROPS, "generation": 2}, {**PROPS, "generation": 2}).changes
