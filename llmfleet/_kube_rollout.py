"""Whether a Deployment's roll is done, under way, or cannot finish, read from the Deployment and its
pods as the API server returns them: what `pulumi up` waits on for each workload on Kubernetes
(components/kubernetes/rollout.py), so a deploy that cannot schedule fails in seconds naming why
(Insufficient nvidia.com/gpu, no node matching the pool), never after a silent ten-minute wait.

Pure: JSON in, a verdict out; the caller polls the API and keeps one `RolloutWatch` per wait.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Waiting reasons a pod does not recover from by waiting: the image cannot be had, the container
# cannot be made from the spec, or it keeps exiting.
FATAL_WAITING = {
    "ImagePullBackOff": "its image cannot be pulled",
    "ErrImageNeverPull": "its image is not on the node and the pull policy is Never",
    "InvalidImageName": "its image reference is not valid",
    "CreateContainerConfigError": "its container cannot be configured",
    "CreateContainerError": "its container cannot be created",
    "CrashLoopBackOff": "it keeps exiting",
}


@dataclass(frozen=True)
class Verdict:
    done: bool
    failure: str | None = None
    progress: str = ""


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in obj.get("status", {}).get("conditions", []) if c.get("type") == kind), {})


def rolled_out(deployment: dict[str, Any]) -> tuple[bool, str]:
    """Whether every replica runs the newest template and is available, with no old pod left, as
    `kubectl rollout status` decides it; and how far it is, in words."""
    spec, status = deployment.get("spec", {}), deployment.get("status", {})
    want = spec.get("replicas", 1)
    generation = deployment.get("metadata", {}).get("generation", 0)
    if status.get("observedGeneration", 0) < generation:
        return False, "waiting for the controller to see the change"
    updated, ready = status.get("updatedReplicas", 0), status.get("readyReplicas", 0)
    available, total = status.get("availableReplicas", 0), status.get("replicas", 0)
    progress = f"{updated}/{want} updated, {ready} ready, {available} available, {total} in all"
    return updated == want and available == want and ready == want and total == want, progress


@dataclass
class RolloutWatch:
    """One wait on one Deployment. A pod the scheduler cannot place fails the wait once it has been
    unschedulable for `unschedulable_s` (the scheduler retries when nodes change; a cluster
    autoscaler adding a node is what that time is for)."""

    name: str
    unschedulable_s: float = 20.0
    _unschedulable_since: dict[str, float] = field(default_factory=dict)

    def observe(self, deployment: dict[str, Any], pods: list[dict[str, Any]], now: float) -> Verdict:
        done, progress = rolled_out(deployment)
        if done:
            return Verdict(True, progress=progress)
        seen: set[str] = set()
        if any(pod.get("metadata", {}).get("deletionTimestamp") for pod in pods):
            # An old pod on its way out (a Recreate, or the Deployment replaced) still holds its GPUs:
            # the new one may wait for them, and the clock starts once it is gone.
            self._unschedulable_since.clear()
            return Verdict(False, progress=rolled_out(deployment)[1] + ", an old pod stopping")
        for pod in pods:
            meta = pod.get("metadata", {})
            name = meta.get("name", "?")
            scheduled = _condition(pod, "PodScheduled")
            if scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
                seen.add(name)
                since = self._unschedulable_since.setdefault(name, now)
                if now - since >= self.unschedulable_s:
                    why = scheduled.get("message") or "no reason given"
                    return Verdict(False, f"{self.name}: pod {name} cannot be scheduled: {why}", progress)
            for status in pod.get("status", {}).get("containerStatuses", []):
                waiting = status.get("state", {}).get("waiting", {})
                reason = waiting.get("reason", "")
                if reason in FATAL_WAITING:
                    detail = f": {waiting['message']}" if waiting.get("message") else ""
                    return Verdict(False, f"{self.name}: pod {name} {FATAL_WAITING[reason]} ({reason}{detail})",
                                   progress)  # fmt: skip
        for name in set(self._unschedulable_since) - seen:  # placed since, or gone
            del self._unschedulable_since[name]
        return Verdict(False, progress=progress)
