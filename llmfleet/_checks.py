"""Checks across the whole catalog and stack, run after both parse cleanly.

Each check appends every problem it finds (never stops at the first) with the key path of the
offending value, so one run of `validate` shows the user everything to fix.
Rules that are warnings (reported, exit 0): missing-secret, vllm-without-gpu,
fallback-repeat, context-window-not-larger.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Iterable

from ._catalog import WILDCARD, Alias, Catalog, ExternalProvider, LocalProvider, VllmProvider
from ._errors import KeyPath, Problem
from ._front_proxy import FRONT_ALIAS, GATEWAY_ALIAS
from ._stack import BuildSpec, StackSettings
from ._yaml import SourceMap

# vLLM's utilization is a share of the whole GPU; leave headroom for the CUDA context.
GPU_BUDGET = 0.95


def closest_name(name: str, candidates: Iterable[str]) -> str | None:
    """The declared name `name` was most likely meant to be, if any is close enough."""
    match = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return match[0] if match else None


def closest(name: str, candidates: Iterable[str]) -> str:
    """A hint naming the closest declared name, or listing what is declared."""
    candidates = sorted(set(candidates))
    match = closest_name(name, candidates)
    if match:
        return f"Did you mean '{match}'?"
    shown = ", ".join(candidates[:8]) + (", ..." if len(candidates) > 8 else "")
    return f"Declared: {shown}." if candidates else ""


def gateway_names(catalog: Catalog) -> set[str]:
    """Model groups the gateway serves: every served name plus every load-balanced group."""
    names = {n for p in catalog.providers.values() for n in p.served_names}
    return names | set(catalog.routes.groups)


class _Checker:
    def __init__(self, name: str, catalog: Catalog, stack: StackSettings, cat: SourceMap, stk: SourceMap) -> None:
        self.name, self.catalog, self.stack, self.cat, self.stk = name, catalog, stack, cat, stk
        self.problems: list[Problem] = []
        self.models = gateway_names(catalog)
        self.aliases = catalog.routes.alias_entries()

    def error(self, src: SourceMap, path: KeyPath, message: str, rule: str, hint: str = "") -> None:
        self.problems.append(src.problem(path, message, rule, hint))

    def warn(self, src: SourceMap, path: KeyPath, message: str, rule: str, hint: str = "") -> None:
        self.problems.append(src.problem(path, message, rule, hint, severity="warning"))

    def run(self) -> list[Problem]:
        self.served_names()
        self.groups()
        self.aliases_()
        self.fallbacks("fallbacks")
        self.fallbacks("context_window_fallbacks")
        self.placement()
        self.reserved_names()
        self.ports()
        self.gpu_budget()
        self.images()
        if self.stack.master_key is None:
            self.warn(
                self.stk,
                ("config",),
                "no gateway master key is set",
                "missing-secret",
                f"Run: pulumi config set --secret llmfleet:masterKey <key> --stack {self.name}.",
            )
        for pname, p in self.catalog.providers.items():
            if isinstance(p, ExternalProvider) and p.api_key_env and p.api_key_env not in self.stack.api_keys:
                self.warn(
                    self.stk,
                    ("config",),
                    f"no secret {p.api_key_env} for external provider '{pname}'",
                    "missing-secret",
                    f"Run: pulumi config set --secret --path 'llmfleet:apiKeys.{p.api_key_env}' <key>"
                    f" --stack {self.name}.",
                )
        return self.problems

    # -- what is served -------------------------------------------------------------------
    def _served_path(self, provider: str, index: int) -> KeyPath:
        p = self.catalog.providers[provider]
        field = {"ollama": "models", "external": "models", "vllm": "served_name"}.get(p.kind, "alias")
        return ("providers", provider, field, index) if field == "models" else ("providers", provider, field)

    def served_names(self) -> None:
        servers: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for pname, provider in self.catalog.providers.items():
            for i, name in enumerate(provider.served_names):
                servers[name].append((pname, i))
                if WILDCARD.search(name):
                    self.error(
                        self.cat,
                        self._served_path(pname, i),
                        f"'{name}' is a wildcard; LiteLLM expands it from its price list, not from the backend",
                        "wildcard-model",
                        "List each model name explicitly.",
                    )
            if isinstance(provider, VllmProvider) and provider.gpus is None:
                self.warn(
                    self.cat,
                    ("providers", pname),
                    "vLLM has no GPU; the vllm-openai image needs one",
                    "vllm-without-gpu",
                    "Set `gpus: all` or a list of device ids.",
                )
        groups = self.catalog.routes.groups
        for name, where in servers.items():
            if len(where) < 2:
                continue
            members = {(m.provider, m.model or name) for m in groups.get(name, [])}
            if all((p, name) in members for p, _ in where) and len({p for p, _ in where}) == len(where):
                continue  # declared as one load-balanced group
            first = where[0][0]
            for pname, i in where[1:]:
                self.error(
                    self.cat,
                    self._served_path(pname, i),
                    f"'{name}' is also served by provider '{first}'",
                    "duplicate-model",
                    f"Rename one, or declare routes.groups['{name}'] listing both providers to load-balance them.",
                )

    def groups(self) -> None:
        providers = self.catalog.providers
        for gname, members in self.catalog.routes.groups.items():
            if WILDCARD.search(gname):
                self.error(
                    self.cat,
                    ("routes", "groups", gname),
                    f"'{gname}' is a wildcard",
                    "wildcard-model",
                    "Name the group explicitly.",
                )
            seen: set[tuple[str, str]] = set()
            for i, m in enumerate(members):
                path = ("routes", "groups", gname, i)
                if m.provider not in providers:
                    self.error(
                        self.cat,
                        (*path, "provider"),
                        f"no provider named '{m.provider}'",
                        "unknown-provider",
                        closest(m.provider, providers),
                    )
                    continue
                served = providers[m.provider].served_names
                model = m.model
                if model is None:
                    if len(served) != 1:
                        self.error(
                            self.cat,
                            path,
                            f"provider '{m.provider}' serves {len(served)} models",
                            "ambiguous-member",
                            f"Set `model:` to one of: {', '.join(served)}.",
                        )
                        continue
                    model = served[0]
                elif model not in served:
                    self.error(
                        self.cat,
                        (*path, "model"),
                        f"provider '{m.provider}' does not serve '{model}'",
                        "unknown-model",
                        closest(model, served),
                    )
                    continue
                if (m.provider, model) in seen:
                    self.error(
                        self.cat,
                        path,
                        f"'{model}' on '{m.provider}' is listed twice",
                        "duplicate-member",
                        "Keep one entry and set its weight.",
                    )
                seen.add((m.provider, model))

    # -- routing --------------------------------------------------------------------------
    def _reference(self, path: KeyPath, name: str, what: str) -> bool:
        """Check that `name` is a gateway model group; report and return False otherwise."""
        if name in self.models:
            return True
        providers = self.catalog.providers
        if name in providers:
            self.error(
                self.cat,
                path,
                f"{what} '{name}' is a provider, not a model",
                "provider-not-model",
                f"Use one of its models: {', '.join(providers[name].served_names)}.",
            )
        elif name in self.aliases:
            self.error(
                self.cat,
                path,
                f"{what} '{name}' is an alias",
                "alias-not-model",
                f"Use the model it points to: '{self.aliases[name].model}'.",
            )
        else:
            self.error(
                self.cat, path, f"{what} '{name}' is not a declared model", "unknown-model", closest(name, self.models)
            )
        return False

    def aliases_(self) -> None:
        for alias, target in self.aliases.items():
            path = ("routes", "aliases", alias)
            if WILDCARD.search(alias):
                self.error(self.cat, path, f"'{alias}' is a wildcard", "wildcard-model", "Name the alias explicitly.")
            if alias in self.models:
                self.error(
                    self.cat,
                    path,
                    f"alias '{alias}' has the name of a model",
                    "alias-shadows-model",
                    "Rename the alias; LiteLLM would list the name once and route it ambiguously.",
                )
            target_path = (*path, "model") if isinstance(self.catalog.routes.aliases[alias], Alias) else path
            self._reference(target_path, target.model, "alias target")

    def fallbacks(self, key: str) -> None:
        chains: dict[str, list[str]] = getattr(self.catalog.routes, key)
        contexts = self._contexts() if key == "context_window_fallbacks" else {}
        for source, targets in chains.items():
            self._reference(("routes", key, source), source, "fallback source")
            for i, target in enumerate(targets):
                path = ("routes", key, source, i)
                self._reference(path, target, "fallback")
                if targets.index(target) != i:
                    self.warn(
                        self.cat,
                        path,
                        f"'{target}' appears twice in the chain",
                        "fallback-repeat",
                        "Remove the repeat.",
                    )
                if key == "context_window_fallbacks":
                    a, b = contexts.get(source), contexts.get(target)
                    if a and b and b <= a:
                        self.warn(
                            self.cat,
                            path,
                            f"'{target}' has a context of {b}, not larger than {a}",
                            "context-window-not-larger",
                            "Fall back to a model with a larger context.",
                        )
        self._cycles(key, chains)

    def _contexts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.catalog.providers.values():
            for name in p.served_names:
                if p.context_length:
                    out[name] = p.context_length
        return out

    def _cycles(self, key: str, chains: dict[str, list[str]]) -> None:
        # Iterative DFS; each cycle is reported once, at the entry that closes it.
        state: dict[str, int] = {}  # 1 on the stack, 2 done
        reported: set[frozenset[str]] = set()
        for root in chains:
            if state.get(root):
                continue
            stack: list[tuple[str, int]] = [(root, 0)]
            trail: list[str] = [root]
            state[root] = 1
            while stack:
                node, i = stack[-1]
                targets = chains.get(node, [])
                if i == len(targets):
                    stack.pop()
                    trail.pop()
                    state[node] = 2
                    continue
                stack[-1] = (node, i + 1)
                nxt = targets[i]
                if state.get(nxt) == 1:
                    cycle = [*trail[trail.index(nxt) :], nxt]
                    if frozenset(cycle) not in reported:
                        reported.add(frozenset(cycle))
                        self.error(
                            self.cat,
                            ("routes", key, node, i),
                            f"cycle: {' -> '.join(cycle)}",
                            "fallback-cycle",
                            "Break the cycle: a fallback chain must end.",
                        )
                elif not state.get(nxt):
                    state[nxt] = 1
                    stack.append((nxt, 0))
                    trail.append(nxt)

    # -- where things run -----------------------------------------------------------------
    def placement(self) -> None:
        hosts = self.stack.hosts
        if self.stack.gateway.host and self.stack.gateway.host not in hosts:
            self.error(
                self.stk,
                ("config", "llmfleet:gateway", "host"),
                f"no host named '{self.stack.gateway.host}'",
                "unknown-host",
                closest(self.stack.gateway.host, hosts),
            )
        for pname, placed in self.stack.providers.items():
            path = ("config", "llmfleet:providers", pname)
            provider = self.catalog.providers.get(pname)
            if provider is None:
                self.error(
                    self.stk,
                    path,
                    f"the catalog has no provider '{pname}'",
                    "unknown-provider",
                    closest(pname, self.catalog.providers),
                )
                continue
            if isinstance(provider, ExternalProvider):
                self.error(
                    self.stk,
                    path,
                    f"'{pname}' is external: it is not deployed, so it has no placement",
                    "external-placement",
                    "Remove this entry.",
                )
                continue
            if placed.host and placed.host not in hosts:
                self.error(
                    self.stk,
                    (*path, "host"),
                    f"no host named '{placed.host}'",
                    "unknown-host",
                    closest(placed.host, hosts),
                )
        for pname in self.catalog.local_providers():
            host = self.stack.host_of(pname)
            if host in hosts and host != self.stack.gateway_host and not hosts[host].address:
                self.error(
                    self.stk,
                    ("config", "llmfleet:hosts", host),
                    f"provider '{pname}' runs on '{host}' but the gateway has no address to reach it",
                    "missing-address",
                    f"Set llmfleet:hosts.{host}.address to an IP or name of '{host}'.",
                )

    def reserved_names(self) -> None:
        # Provider names are network aliases on the fleet network, beside the gateways' own.
        for reserved in (GATEWAY_ALIAS, FRONT_ALIAS):
            if reserved in self.catalog.local_providers():
                self.error(self.cat, ("providers", reserved),
                           f"'{reserved}' is a network alias llmfleet uses for the gateways and their front proxy",
                           "reserved-name", "Rename the provider.")  # fmt: skip

    def ports(self) -> None:
        # Only published ports can clash: on the fleet's bridge network each container has its
        # own network namespace, so two unpublished servers may both listen on 8000.
        used: dict[tuple[str, int], str] = {}
        gw_host = self.stack.gateway_host
        used[(gw_host, self.stack.gateway.port)] = "the gateway"
        for pname, provider in self.catalog.local_providers().items():
            if self.stack.host_of(pname) not in self.stack.hosts or self.stack.publish_ip(pname) is None:
                continue  # an unknown host is reported by placement()
            key = (self.stack.host_of(pname), provider.listen_port)
            if key in used:
                path = ("providers", pname, "port") if provider.port else ("providers", pname)
                self.error(
                    self.cat,
                    path,
                    f"port {key[1]} on host '{key[0]}' is already published by {used[key]}",
                    "port-conflict",
                    "Set `port:` to a free port.",
                )
            else:
                used[key] = f"provider '{pname}'"

    def gpu_budget(self) -> None:
        by_host: dict[str, list[tuple[str, LocalProvider]]] = defaultdict(list)
        for pname, p in self.catalog.local_providers().items():
            if p.gpus is not None:
                by_host[self.stack.host_of(pname)].append((pname, p))
            # Distinct devices: the schema refuses a repeated id, and a GPU counts once anyway.
            distinct = len(set(p.gpus)) if isinstance(p.gpus, list) else 0
            if isinstance(p, VllmProvider) and isinstance(p.gpus, list) and distinct < p.tensor_parallel_size:
                self.error(
                    self.cat,
                    ("providers", pname, "tensor_parallel_size"),
                    f"tensor_parallel_size {p.tensor_parallel_size} needs as many GPUs, {distinct} given",
                    "tensor-parallel",
                    "List enough device ids in `gpus`, or lower tensor_parallel_size.",
                )
        unbudgeted: set[str] = set()
        for host, users in by_host.items():
            ids = sorted({i for _, p in users if isinstance(p.gpus, list) for i in p.gpus}) or ["all"]
            seen: set[frozenset[str]] = set()
            for gpu in ids:
                sharing = [(n, p) for n, p in users if p.gpus == "all" or gpu in p.gpus]
                names = frozenset(n for n, _ in sharing)
                if names in seen or not any(isinstance(p, VllmProvider) for _, p in sharing):
                    continue
                seen.add(names)
                self._check_shared_gpu(f"GPU {gpu} on host '{host}'", sharing, unbudgeted)

    def _check_shared_gpu(self, where: str, sharing: list[tuple[str, LocalProvider]], unbudgeted: set[str]) -> None:
        shares: list[tuple[str, float]] = []
        for n, p in sharing:
            share = p.gpu_memory_utilization if isinstance(p, VllmProvider) else p.gpu_memory_budget
            if share is not None:
                shares.append((n, share))
            elif len(sharing) > 1 and n not in unbudgeted:
                unbudgeted.add(n)  # one report per server, however many GPUs it shares
                self.error(
                    self.cat,
                    ("providers", n, "gpus"),
                    f"shares {where} with vLLM but declares no gpu_memory_budget",
                    "gpu-budget",
                    "Set gpu_memory_budget (a fraction of GPU memory) so vLLM's share can be checked.",
                )
        total = sum(share for _, share in shares)
        if total > GPU_BUDGET + 1e-9:
            last = next(n for n, p in reversed(sharing) if isinstance(p, VllmProvider))
            parts = ", ".join(f"{n} {share:g}" for n, share in shares)
            self.error(
                self.cat,
                ("providers", last, "gpu_memory_utilization"),
                f"{where} is over budget: {parts} sum to {total:.2f} (at most {GPU_BUDGET})",
                "gpu-budget",
                "Lower gpu_memory_utilization, or put the servers on different GPUs.",
            )

    def images(self) -> None:
        images = self.stack.images
        kinds = {p.kind for p in self.catalog.local_providers().values()}
        for kind in [*sorted(kinds), "litellm", "haproxy"]:
            ref = getattr(images, kind)
            path = ("config", "llmfleet:images", kind)
            if ref is None:
                self.error(
                    self.stk,
                    ("config", "llmfleet:images"),
                    f"no image for '{kind}' providers",
                    "missing-image",
                    f"Set llmfleet:images.{kind} to a pinned image tag.",
                )
            elif isinstance(ref, str) and not _pinned(ref):
                self.error(
                    self.stk,
                    path,
                    f"image '{ref}' is not pinned",
                    "image-unpinned",
                    "Use a version tag or a digest, not `latest` or no tag.",
                )
            elif isinstance(ref, BuildSpec) and not _pinned(ref.tag):
                self.error(
                    self.stk,
                    (*path, "tag"),
                    f"image tag '{ref.tag}' is not pinned",
                    "image-unpinned",
                    "Give the built image an explicit tag.",
                )
        if isinstance(images.llama_cpp_python, BuildSpec):
            self._remote_builds(images.llama_cpp_python)

    def _remote_builds(self, spec: BuildSpec) -> None:
        """Builds through an ssh:// Docker host fail with terraform-provider-docker 4.5.0
        (kreuzwerker/terraform-provider-docker#972, open), which pulumi-docker 5.x wraps: refuse
        them before `pulumi up` starts, and say how to use a prebuilt image instead."""
        hosts = sorted({self.stack.host_of(n) for n, p in self.catalog.local_providers().items()
                        if p.kind == "llama_cpp_python"})  # fmt: skip
        for host in hosts:
            docker_url = self.stack.hosts[host].docker if host in self.stack.hosts else None
            if docker_url and docker_url.startswith("ssh://"):
                self.error(
                    self.stk,
                    ("config", "llmfleet:images", "llama_cpp_python", "build"),
                    f"cannot build '{spec.tag}' on host '{host}' over {docker_url}: image builds through ssh:// "
                    "fail in terraform-provider-docker 4.5.0 (kreuzwerker/terraform-provider-docker#972)",
                    "remote-build",
                    f"Build it on '{host}' (`docker build -t {spec.tag} {spec.build}`) and set "
                    f"llmfleet:images.llama_cpp_python to '{spec.tag}': a present image is used, not pulled.",
                )


def _pinned(ref: str) -> bool:
    if "@sha256:" in ref:
        return True
    name, _, tag = ref.rpartition(":")
    if not name or "/" in tag:  # no tag at all (the colon belonged to a registry port)
        return False
    return tag != "latest"


def check(name: str, catalog: Catalog, stack: StackSettings, cat: SourceMap, stk: SourceMap) -> list[Problem]:
    """Every cross-reference problem of a stack `name` and its catalog."""
    return _Checker(name, catalog, stack, cat, stk).run()
