"""The stack's cluster: an explicit pulumi-kubernetes provider for the kubeconfig context the stack
names, never the ambient current-context, so a `pulumi up` can only reach the cluster the stack says."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from llmfleet._kube import kubeconfig_path
from llmfleet._reach import stack_kubeconfig
from llmfleet._stack import Kubernetes


@dataclass(frozen=True)
class Cluster:
    """The stack's cluster: the provider its objects are created with, and what the waits
    (components/kubernetes/rollout.py) reach the API server with: the same file and context."""

    provider: k8s.Provider
    kubeconfig: str
    context: str
    unschedulable_s: int


def cluster_provider(stack: str, kube: Kubernetes, project_dir: Path) -> Cluster:
    path = kubeconfig_path(stack_kubeconfig(kube, project_dir))
    if not path.is_file():
        raise pulumi.RunError(
            f"stack '{stack}': no kubeconfig at {path} (llmfleet:kubernetes.kubeconfig, else $KUBECONFIG, else "
            f"~/.kube/config). Give the file that holds the context '{kube.context}'."
        )
    # The path, not the file's contents: no client key is copied into the stack's state.
    kubeconfig = str(path.resolve())
    provider = k8s.Provider("cluster", kubeconfig=kubeconfig, context=kube.context)
    return Cluster(provider, kubeconfig, kube.context, kube.unschedulable_seconds)
