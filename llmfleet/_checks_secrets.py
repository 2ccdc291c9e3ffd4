"""Checks of secrets: the stack holds the gateway's master key and every external provider's
API key. Only their presence is checked (warnings): the values are encrypted for Pulumi. A map of
keys given as one encrypted value is an error: nothing could tell which keys it holds."""

from __future__ import annotations

from ._catalog import ExternalProvider
from ._checks_context import CheckContext
from ._stack import remove_command, set_secret_command


def secrets(ctx: CheckContext) -> None:
    if ctx.stack.master_key is None:
        ctx.warn(
            ctx.stk,
            ("config",),
            "no gateway master key is set",
            "missing-secret",
            f"Run: {set_secret_command('llmfleet:masterKey', ctx.name)}",
        )
    api_keys = "llmfleet:apiKeys"
    if api_keys in ctx.stack.sealed:
        # What `pulumi config set --secret llmfleet:apiKeys <value>` (Pulumi's own hint for a missing
        # key) writes: one secret whose names nothing can check. Replaced by one secret per key.
        names = sorted({p.api_key_env for p in ctx.catalog.providers.values()
                        if isinstance(p, ExternalProvider) and p.api_key_env})  # fmt: skip
        commands = [remove_command(api_keys, ctx.name)]
        commands += [set_secret_command(f"{api_keys}.{n}", ctx.name) for n in names]
        needed = f"one secret per key the catalog names ({', '.join(names)})" if names else "no key for this catalog"
        ctx.error(
            ctx.stk,
            ("config", api_keys),
            f"set as one encrypted value (`secure:`), which llmfleet cannot read as a map of keys: it needs {needed}",
            "whole-map-secret",
            f"Remove it{' and set each key by itself' if names else ''}. Run: {' && '.join(commands)}",
        )
        return
    for pname, p in ctx.catalog.providers.items():
        if isinstance(p, ExternalProvider) and p.api_key_env and p.api_key_env not in ctx.stack.api_keys:
            ctx.warn(
                ctx.stk,
                ("config",),
                f"no secret {p.api_key_env} for external provider '{pname}'",
                "missing-secret",
                f"Run: {set_secret_command(f'llmfleet:apiKeys.{p.api_key_env}', ctx.name)}",
            )
