"""Where `drift`, `probe` and the policy reach a stack's gateway and backends from where they run.

On Docker hosts: the gateway's URL (`--url`, else the stack's) and each backend's published port.
On Kubernetes, unless a URL is given (`--url`, or `llmfleet:gateway.url` for a gateway exposed
outside the cluster): through the API server, as `kubectl port-forward` does, to the Service
`gateway` and, with `--backends`, to each server's Service, with the kubeconfig file and context
the stack names (llmfleet/_kube.py). A failure to reach the cluster is a `KubeError` naming the
kubeconfig and context: the caller reports it as "could not check".
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ._kube import forwarded, load_kubeconfig
from ._load import Fleet
from ._stack import Kubernetes

GATEWAY_SERVICE = "gateway"  # components/kubernetes/gateway.py names its Service so


def stack_kubeconfig(kube: Kubernetes, project_dir: Path) -> str | None:
    """The stack's kubeconfig path, relative to the project; None: $KUBECONFIG's, else ~/.kube/config."""
    return str(project_dir / Path(kube.kubeconfig).expanduser()) if kube.kubeconfig else None


@dataclass(frozen=True)
class Reached:
    url: str
    backends: dict[str, str | None] | None  # None: each backend's published address (Docker)
    errors: tuple[list[str], ...] = ()  # what the API server said on each forward's error channel


@contextlib.contextmanager
def reached(fleet: Fleet, project_dir: Path, url: str | None, backends: bool = False) -> Iterator[Reached]:
    """The gateway's URL (and the backends' with `backends`), forwards kept open until exit."""
    kube = fleet.stack.kubernetes
    url = url or fleet.stack.gateway.url
    if not fleet.stack.on_kubernetes or kube is None or (url and not backends):
        yield Reached(url or fleet.stack.gateway_url, None)
        return
    access = load_kubeconfig(stack_kubeconfig(kube, project_dir), kube.context)
    with contextlib.ExitStack() as forwards:
        errors: list[list[str]] = []
        if not url:
            port = fleet.stack.gateway.port
            gateway = forwards.enter_context(forwarded(access, kube.namespace, GATEWAY_SERVICE, port))
            errors.append(gateway.errors)
            url = str(gateway)
        found: dict[str, str | None] | None = None
        if backends:
            found = {}
            for name, provider in fleet.catalog.local_providers().items():
                backend = forwards.enter_context(forwarded(access, kube.namespace, name, provider.listen_port))
                errors.append(backend.errors)
                found[name] = str(backend)
        yield Reached(url, found, tuple(errors))
