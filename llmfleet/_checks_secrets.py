"""Checks of secrets: the stack holds the gateway's master key and every external provider's
API key. Only their presence is checked (warnings): the values are encrypted for Pulumi."""

from __future__ import annotations

from ._catalog import ExternalProvider
from ._checks_context import CheckContext
from ._stack import set_secret_command


def secrets(ctx: CheckContext) -> None:
    if ctx.stack.master_key is None:
        ctx.warn(
            ctx.stk,
            ("config",),
            "no gateway master key is set",
            "missing-secret",
            f"Run: {set_secret_command('llmfleet:masterKey', ctx.name)}",
        )
    for pname, p in ctx.catalog.providers.items():
        if isinstance(p, ExternalProvider) and p.api_key_env and p.api_key_env not in ctx.stack.api_keys:
            ctx.warn(
                ctx.stk,
                ("config",),
                f"no secret {p.api_key_env} for external provider '{pname}'",
                "missing-secret",
                f"Run: {set_secret_command(f'llmfleet:apiKeys.{p.api_key_env}', ctx.name)}",
            )
