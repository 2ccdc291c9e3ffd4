"""Stacks checked against each other where they share a Docker engine.

Two stacks deployed to one engine must not both publish an address (the front proxy's
`bind:port`, a backend's port) nor create a container, network or Ollama models volume of the
same name: the second `pulumi up` fails halfway ("port is already allocated", "Conflict. The
container name ... is already in use"), or worse, one stack's Ollama removes the other's models.
The engine is the host's `docker:` endpoint; a host without one is the local engine of whoever
deploys (DOCKER_HOST or the default socket), so every such host of every stack is one engine.
`ssh://` and `tcp://` endpoints are compared by host and port (whoever logs in), others as
written: two spellings of one machine (a name and its address, the default socket written out
beside a host without `docker:`) are not recognised.

Names come from `_docker_names`, the module the components name things with. The cache volumes
(Hugging Face, vLLM, GGUF) are shared on purpose by the servers of a host and are not claimed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ._catalog import Catalog, OllamaProvider
from ._checks_context import CheckContext
from ._docker_names import FRONT_PROXY, container_name, network_name, volume_name
from ._errors import ConfigError, KeyPath, Problem
from ._project import stack_names
from ._stack import StackSettings
from ._yaml import SourceMap, parse_yaml

if TYPE_CHECKING:
    from ._load import Fleet

LOCAL_ENGINE = "local"
_HOSTS, _PROVIDERS, _GATEWAY = "llmfleet:hosts", "llmfleet:providers", "llmfleet:gateway"


def engine_of(docker: str | None) -> str:
    """Which Docker engine a host's `docker:` endpoint names, normalised for comparison."""
    if docker is None:
        return LOCAL_ENGINE
    parts = urlsplit(docker)
    if parts.scheme in ("ssh", "tcp") and parts.hostname:
        default = 22 if parts.scheme == "ssh" else 2375
        try:
            port = parts.port or default
        except ValueError:
            return docker
        return f"{parts.scheme}://{parts.hostname.lower()}:{port}"
    return docker


def describe_engine(engine: str) -> str:
    if engine.startswith("kubernetes:"):
        return f"the cluster of context '{engine.removeprefix('kubernetes:')}'"
    return "the local Docker engine (hosts without `docker:`)" if engine == LOCAL_ENGINE else f"Docker host {engine}"


@dataclass(frozen=True)
class Claim:
    """Something a stack holds on a Docker engine that no other stack there may hold too."""

    engine: str
    kind: str  # "address", "container", "network", "volume"
    name: str  # the Docker name; for an address, `ip:port`
    owner: str  # what holds it, for messages: "the gateway", "provider 'ollama'"
    path: KeyPath  # where the stack file decides it
    port: int = 0  # addresses only
    ip: str = ""

    def clashes(self, other: Claim) -> bool:
        if (self.engine, self.kind) != (other.engine, other.kind):
            return False
        if self.kind != "address":
            return self.name == other.name
        return self.port == other.port and _overlap(self.ip, other.ip)


def _overlap(a: str, b: str) -> bool:
    """Two bind addresses on one port clash when equal or when either is every interface."""
    try:
        return a == b or ipaddress.ip_address(a).is_unspecified or ipaddress.ip_address(b).is_unspecified
    except ValueError:
        return a == b


def _provider_path(stack: StackSettings, name: str, *key: str) -> KeyPath:
    """Where the stack file places a provider; a provider it does not place is there because its
    catalog declares it: `llmfleet:catalog` is the line that brings it in."""
    if name in stack.providers:
        return ("config", _PROVIDERS, name, *key)
    return ("config", "llmfleet:catalog")


def docker_claims(name: str, catalog: Catalog, stack: StackSettings) -> list[Claim]:
    """What stack `name` creates or publishes on each Docker engine it uses."""
    if stack.on_kubernetes:
        # Nothing on a Docker engine; its namespace, where its objects have fixed names (a Deployment
        # and a Service per provider, `gateway`): two stacks there would take each other's. Clusters
        # are compared by context name (the same name in two kubeconfig files is taken as one cluster).
        kube = stack.kubernetes
        if kube is None:
            return []
        return [Claim(f"kubernetes:{kube.context}", "namespace", kube.namespace, "the fleet",
                      ("config", "llmfleet:kubernetes", "namespace"))]  # fmt: skip
    engine = {h: engine_of(host.docker) for h, host in stack.hosts.items()}
    gw_host = stack.gateway_host
    if gw_host not in engine:
        return []  # an unknown host: reported by the stack's own checks
    gw = stack.gateway
    claims = [
        Claim(engine[gw_host], "address", f"{_show(gw.bind)}:{gw.port}", "the gateway", ("config", _GATEWAY, "port"),
              gw.port, gw.bind),
        Claim(engine[gw_host], "container", container_name(name, FRONT_PROXY), "the gateway's front proxy",
              ("config", _GATEWAY)),
    ]  # fmt: skip
    in_use = {gw_host}
    for pname, provider in catalog.local_providers().items():
        host = stack.host_of(pname)
        if host not in engine:
            continue
        in_use.add(host)
        owner = f"provider '{pname}'"
        where = engine[host]
        claims.append(Claim(where, "container", container_name(name, pname), owner, _provider_path(stack, pname)))
        if isinstance(provider, OllamaProvider):
            claims.append(Claim(where, "volume", volume_name(name, f"{pname}-models"), owner,
                                _provider_path(stack, pname)))  # fmt: skip
        ip = stack.publish_ip(pname)
        if ip:
            key = "host" if host != gw_host else "publish"
            claims.append(Claim(where, "address", f"{_show(ip)}:{provider.listen_port}", owner,
                                _provider_path(stack, pname, key), provider.listen_port, ip))  # fmt: skip
    for host in sorted(in_use):
        claims.append(Claim(engine[host], "network", network_name(name), f"host '{host}'", ("config", _HOSTS, host)))
    return claims


def _show(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


_WHAT = {
    "address": ("publishes", "stack-port-conflict",
                "Give one of them another port (llmfleet:gateway.port, or the provider's `port:` in its catalog), "
                "or deploy it to another Docker host (llmfleet:hosts.<host>.docker)."),
    "container": ("creates the container", "stack-name-conflict",
                  "Rename the stack or the provider (containers are named llmfleet-<stack>-<provider>), or deploy "
                  "it to another Docker host."),
    "network": ("creates the network", "stack-name-conflict",
                "Rename one of the stacks (the network is llmfleet-<stack>), or deploy it to another Docker host."),
    "namespace": ("deploys into the namespace", "stack-name-conflict",
                  "Give one of them another namespace (llmfleet:kubernetes.namespace): its Deployments and Services "
                  "are named for its providers, and the gateway's Service is `gateway`."),
    "volume": ("creates the Ollama models volume", "stack-name-conflict",
               "Rename the stack or the provider (the volume is llmfleet-<stack>-<provider>-models): two Ollama "
               "servers on one volume remove each other's models."),
}  # fmt: skip


@dataclass(frozen=True)
class StackClaims:
    """One stack's claims and the source map of its stack file (to name the other's line)."""

    name: str
    claims: list[Claim]
    source: SourceMap


def conflicts(mine: StackClaims, others: Iterable[StackClaims]) -> list[Problem]:
    """Each of `mine`'s claims that another stack also holds on the same engine, located in
    `mine`'s stack file and naming the other stack's file and line."""
    problems = []
    for claim in mine.claims:
        for other in others:
            theirs = next((c for c in other.claims if claim.clashes(c)), None)
            if theirs is None:
                continue
            verb, rule, hint = _WHAT[claim.kind]
            line, col = other.source.locate(theirs.path)
            sharing = "a cluster" if claim.kind == "namespace" else "an engine"
            message = (f"{claim.owner} {verb} {claim.name} on {describe_engine(claim.engine)}, and so does "
                       f"{theirs.owner} of stack '{other.name}' ({other.source.file}:{line}:{col}): two stacks "
                       f"sharing {sharing} cannot both hold it")  # fmt: skip
            problems.append(mine.source.problem(claim.path, message, rule, hint))
    return problems


def shared_engine(ctx: CheckContext) -> None:
    """Within one stack: two hosts in use on one engine would each create the stack's network
    (and its caches) there, and the second fails."""
    if ctx.stack.on_kubernetes:
        return
    seen: dict[str, str] = {}
    in_use = {ctx.stack.host_of(p) for p in ctx.catalog.local_providers()} | {ctx.stack.gateway_host}
    for host in sorted(h for h in in_use if h in ctx.stack.hosts):
        engine = engine_of(ctx.stack.hosts[host].docker)
        if engine in seen:
            ctx.error(ctx.stk, ("config", _HOSTS, host),
                      f"hosts '{seen[engine]}' and '{host}' are both {describe_engine(engine)}: each would create "
                      f"the network {network_name(ctx.name)} there", "same-engine",
                      "Give each host its own `docker:` endpoint, or make them one host.")  # fmt: skip
        else:
            seen[engine] = host


def load_claims(project: Path, fleet: Fleet) -> StackClaims:
    """A loaded stack's claims, with its stack file's source map (read again: it loaded, so it parses)."""
    shown = f"stacks/Pulumi.{fleet.name}.yaml"
    source = parse_yaml((project / shown).read_text(encoding="utf-8"), shown).source
    return StackClaims(fleet.name, docker_claims(fleet.name, fleet.catalog, fleet.stack), source)


class AcrossStacks:
    """Checks stacks of one project against each other, as `validate` goes through them.

    `checked`: the stacks `validate` was asked for, each compared with every other stack of the
    project that loads. A pair of two checked stacks is reported once, in the stack file of the
    later name; a checked stack is where its pairs with the others are reported. Stacks that do not
    load are skipped: their errors are reported as theirs (or by `validate --stack` for them)."""

    def __init__(self, project: Path, checked: list[str]) -> None:
        self.project, self.checked = project, set(checked)
        self._claims: dict[str, StackClaims | None] = {}

    def _of(self, name: str, fleet: Fleet | None = None) -> StackClaims | None:
        if name not in self._claims:
            if fleet is None:
                from ._load import load_fleet  # _load imports the checks

                try:
                    fleet = load_fleet(self.project, name)
                except ConfigError:
                    fleet = None
            self._claims[name] = load_claims(self.project, fleet) if fleet else None
        return self._claims[name]

    def problems(self, fleet: Fleet) -> list[Problem]:
        """What `fleet` (a checked stack that loaded) clashes with."""
        mine = self._of(fleet.name, fleet)
        assert mine is not None
        others = [self._of(n) for n in stack_names(self.project)
                  if n != fleet.name and not (n in self.checked and n > fleet.name)]  # fmt: skip
        return conflicts(mine, [o for o in others if o is not None])
