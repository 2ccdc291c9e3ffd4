"""Checks of what is served: the names providers serve and the load-balanced groups over them."""

from __future__ import annotations

from collections import defaultdict

from ._catalog import WILDCARD
from ._checks_context import CheckContext, closest
from ._errors import KeyPath


def served_path(ctx: CheckContext, provider: str, index: int) -> KeyPath:
    """Where the `index`th name a provider serves is written, by its kind."""
    p = ctx.catalog.providers[provider]
    field = {"ollama": "models", "external": "models", "vllm": "served_name"}.get(p.kind, "alias")
    return ("providers", provider, field, index) if field == "models" else ("providers", provider, field)


def served_names(ctx: CheckContext) -> None:
    servers: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for pname, provider in ctx.catalog.providers.items():
        for i, name in enumerate(provider.served_names):
            servers[name].append((pname, i))
            if WILDCARD.search(name):
                ctx.error(
                    ctx.cat,
                    served_path(ctx, pname, i),
                    f"'{name}' is a wildcard; LiteLLM expands it from its price list, not from the backend",
                    "wildcard-model",
                    "List each model name explicitly.",
                )
    groups = ctx.catalog.routes.groups
    for name, where in servers.items():
        if len(where) < 2:
            continue
        members = {(m.provider, m.model or name) for m in groups.get(name, [])}
        if all((p, name) in members for p, _ in where) and len({p for p, _ in where}) == len(where):
            continue  # declared as one load-balanced group
        first = where[0][0]
        for pname, i in where[1:]:
            ctx.error(
                ctx.cat,
                served_path(ctx, pname, i),
                f"'{name}' is also served by provider '{first}'",
                "duplicate-model",
                f"Rename one, or declare routes.groups['{name}'] listing both providers to load-balance them.",
            )


def groups(ctx: CheckContext) -> None:
    providers = ctx.catalog.providers
    for gname, members in ctx.catalog.routes.groups.items():
        if WILDCARD.search(gname):
            ctx.error(
                ctx.cat,
                ("routes", "groups", gname),
                f"'{gname}' is a wildcard",
                "wildcard-model",
                "Name the group explicitly.",
            )
        seen: set[tuple[str, str]] = set()
        for i, m in enumerate(members):
            path = ("routes", "groups", gname, i)
            if m.provider not in providers:
                ctx.error(
                    ctx.cat,
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
                    ctx.error(
                        ctx.cat,
                        path,
                        f"provider '{m.provider}' serves {len(served)} models",
                        "ambiguous-member",
                        f"Set `model:` to one of: {', '.join(served)}.",
                    )
                    continue
                model = served[0]
            elif model not in served:
                ctx.error(
                    ctx.cat,
                    (*path, "model"),
                    f"provider '{m.provider}' does not serve '{model}'",
                    "unknown-model",
                    closest(model, served),
                )
                continue
            if (m.provider, model) in seen:
                ctx.error(
                    ctx.cat,
                    path,
                    f"'{model}' on '{m.provider}' is listed twice",
                    "duplicate-member",
                    "Keep one entry and set its weight.",
                )
            seen.add((m.provider, model))
