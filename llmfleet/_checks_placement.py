"""Checks of where things run: hosts named in the stack exist and are reachable, names that
become network aliases do not collide, and published ports do not clash."""

from __future__ import annotations

import ipaddress

from ._catalog import ExternalProvider, OllamaProvider
from ._checks_context import CheckContext, closest
from ._docker_names import reserved_provider_names
from ._front_proxy import FRONT_ALIAS, GATEWAY_ALIAS


def placement(ctx: CheckContext) -> None:
    hosts = ctx.stack.hosts
    # A Kubernetes stack has no hosts: _checks_kubernetes.py refuses host keys there.
    docker = not ctx.stack.on_kubernetes
    if docker and ctx.stack.gateway.host and ctx.stack.gateway.host not in hosts:
        ctx.error(
            ctx.stk,
            ("config", "llmfleet:gateway", "host"),
            f"no host named '{ctx.stack.gateway.host}'",
            "unknown-host",
            closest(ctx.stack.gateway.host, hosts),
        )
    for pname, placed in ctx.stack.providers.items():
        path = ("config", "llmfleet:providers", pname)
        provider = ctx.catalog.providers.get(pname)
        if provider is None:
            ctx.error(
                ctx.stk,
                path,
                f"the catalog has no provider '{pname}'",
                "unknown-provider",
                closest(pname, ctx.catalog.providers),
            )
            continue
        if isinstance(provider, ExternalProvider):
            ctx.error(
                ctx.stk,
                path,
                f"'{pname}' is external: it is not deployed, so it has no placement",
                "external-placement",
                "Remove this entry.",
            )
            continue
        _ollama_models(ctx, pname, provider, placed.ollama_models)
        if docker and placed.host and placed.host not in hosts:
            ctx.error(
                ctx.stk,
                (*path, "host"),
                f"no host named '{placed.host}'",
                "unknown-host",
                closest(placed.host, hosts),
            )
    if not docker:
        return
    loopback_warned: set[str] = set()
    for pname in ctx.catalog.local_providers():
        host = ctx.stack.host_of(pname)
        if host not in hosts or host == ctx.stack.gateway_host:
            continue
        address = hosts[host].address
        if not address:
            ctx.error(
                ctx.stk,
                ("config", "llmfleet:hosts", host),
                f"provider '{pname}' runs on '{host}' but the gateway has no address to reach it",
                "missing-address",
                f"Set llmfleet:hosts.{host}.address to the IP address of '{host}'.",
            )
        elif ipaddress.ip_address(address).is_loopback and host not in loopback_warned:
            loopback_warned.add(host)
            ctx.warn(
                ctx.stk,
                ("config", "llmfleet:hosts", host, "address"),
                f"'{address}' is a loopback address: provider '{pname}' on '{host}' is published there, and the "
                "gateway, in a container, reaches its own loopback, never a host's (even on one machine)",
                "loopback-address",
                f"Set llmfleet:hosts.{host}.address to the IP address of '{host}' on the network the gateway's "
                "host reaches it through.",
            )


def _ollama_models(ctx: CheckContext, pname: str, provider: object, store: object) -> None:
    path = ("config", "llmfleet:providers", pname, "ollama_models")
    if store is None:
        return
    if not isinstance(provider, OllamaProvider):
        ctx.error(ctx.stk, path, f"'{pname}' is not an Ollama provider: only Ollama keeps a models store",
                  "ollama-models", "Remove this key.")  # fmt: skip
    elif isinstance(store, str) and store.rstrip("/").endswith("/models"):
        parent = store.rstrip("/").removesuffix("/models") or "/"
        ctx.warn(ctx.stk, path, f"'{store}' looks like Ollama's models/ directory itself; it is mounted at "
                 "/root/.ollama, where Ollama looks for models/ inside it",
                 "ollama-models", f"Give the directory that holds models/: {parent}")  # fmt: skip


def reserved_names(ctx: CheckContext) -> None:
    # Provider names are network aliases on the fleet network, beside the gateways' own.
    for reserved in (GATEWAY_ALIAS, FRONT_ALIAS):
        if reserved in ctx.catalog.local_providers():
            ctx.error(ctx.cat, ("providers", reserved),
                      f"'{reserved}' is a network alias llmfleet uses for the gateways and their front proxy",
                      "reserved-name", "Rename the provider.")  # fmt: skip
    # Names llmfleet gives its own containers (and `llmfleet logs` accepts beside the providers').
    for reserved, why in reserved_provider_names().items():
        if reserved in ctx.catalog.local_providers():
            ctx.error(ctx.cat, ("providers", reserved), f"'{reserved}' is reserved: {why}", "reserved-name",
                      "Rename the provider.")  # fmt: skip


def ports(ctx: CheckContext) -> None:
    # Only published ports can clash: on the fleet's bridge network each container has its
    # own network namespace, so two unpublished servers may both listen on 8000.
    used: dict[tuple[str, int], str] = {}
    gw_host = ctx.stack.gateway_host
    used[(gw_host, ctx.stack.gateway.port)] = "the gateway"
    for pname, provider in ctx.catalog.local_providers().items():
        if ctx.stack.host_of(pname) not in ctx.stack.hosts or ctx.stack.publish_ip(pname) is None:
            continue  # an unknown host is reported by placement()
        key = (ctx.stack.host_of(pname), provider.listen_port)
        if key in used:
            path = ("providers", pname, "port") if provider.port else ("providers", pname)
            ctx.error(
                ctx.cat,
                path,
                f"port {key[1]} on host '{key[0]}' is already published by {used[key]}",
                "port-conflict",
                "Set `port:` to a free port.",
            )
        else:
            used[key] = f"provider '{pname}'"
