"""Checks of routing: aliases and fallback chains must name model groups the gateway serves, and
a chain must end."""

from __future__ import annotations

from ._catalog import WILDCARD, Alias
from ._checks_context import CheckContext, closest
from ._errors import KeyPath


def reference(ctx: CheckContext, path: KeyPath, name: str, what: str) -> bool:
    """Check that `name` is a gateway model group; report and return False otherwise."""
    if name in ctx.models:
        return True
    providers = ctx.catalog.providers
    if name in providers:
        ctx.error(
            ctx.cat,
            path,
            f"{what} '{name}' is a provider, not a model",
            "provider-not-model",
            f"Use one of its models: {', '.join(providers[name].served_names)}.",
        )
    elif name in ctx.aliases:
        ctx.error(
            ctx.cat,
            path,
            f"{what} '{name}' is an alias",
            "alias-not-model",
            f"Use the model it points to: '{ctx.aliases[name].model}'.",
        )
    else:
        ctx.error(ctx.cat, path, f"{what} '{name}' is not a declared model", "unknown-model", closest(name, ctx.models))
    return False


def aliases(ctx: CheckContext) -> None:
    for alias, target in ctx.aliases.items():
        path = ("routes", "aliases", alias)
        if WILDCARD.search(alias):
            ctx.error(ctx.cat, path, f"'{alias}' is a wildcard", "wildcard-model", "Name the alias explicitly.")
        if alias in ctx.models:
            ctx.error(
                ctx.cat,
                path,
                f"alias '{alias}' has the name of a model",
                "alias-shadows-model",
                "Rename the alias; LiteLLM would list the name once and route it ambiguously.",
            )
        target_path = (*path, "model") if isinstance(ctx.catalog.routes.aliases[alias], Alias) else path
        reference(ctx, target_path, target.model, "alias target")


def fallbacks(ctx: CheckContext) -> None:
    _chains(ctx, "fallbacks")


def context_window_fallbacks(ctx: CheckContext) -> None:
    _chains(ctx, "context_window_fallbacks")


def _chains(ctx: CheckContext, key: str) -> None:
    chains: dict[str, list[str]] = getattr(ctx.catalog.routes, key)
    contexts = _contexts(ctx) if key == "context_window_fallbacks" else {}
    for source, targets in chains.items():
        reference(ctx, ("routes", key, source), source, "fallback source")
        for i, target in enumerate(targets):
            path = ("routes", key, source, i)
            reference(ctx, path, target, "fallback")
            if targets.index(target) != i:
                ctx.warn(
                    ctx.cat,
                    path,
                    f"'{target}' appears twice in the chain",
                    "fallback-repeat",
                    "Remove the repeat.",
                )
            if key == "context_window_fallbacks":
                a, b = contexts.get(source), contexts.get(target)
                if a and b and b <= a:
                    ctx.warn(
                        ctx.cat,
                        path,
                        f"'{target}' has a context of {b}, not larger than {a}",
                        "context-window-not-larger",
                        "Fall back to a model with a larger context.",
                    )
    _cycles(ctx, key, chains)


def _contexts(ctx: CheckContext) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in ctx.catalog.providers.values():
        for name in p.served_names:
            if p.context_length:
                out[name] = p.context_length
    return out


def _cycles(ctx: CheckContext, key: str, chains: dict[str, list[str]]) -> None:
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
                    ctx.error(
                        ctx.cat,
                        ("routes", key, node, i),
                        f"cycle: {' -> '.join(cycle)}",
                        "fallback-cycle",
                        "Break the cycle: a fallback chain must end.",
                    )
            elif not state.get(nxt):
                state[nxt] = 1
                stack.append((nxt, 0))
                trail.append(nxt)
