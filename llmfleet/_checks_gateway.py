"""Checks of LiteLLM's own settings in the catalog (`gateway:`): every key known to the pinned
LiteLLM, none that would change the served set or what llmfleet derives, and no credential in
plain text: a secret is an `os.environ/NAME` reference to a key of the stack's llmfleet:apiKeys."""

from __future__ import annotations

from ._checks_context import CheckContext, closest_name
from ._gateway_settings import DERIVED, SECTIONS, env_ref, walk
from ._litellm_keys import KNOWN, LITELLM_VERSION, SHAPES
from ._server_args import looks_secret
from ._stack import set_secret_command
from ._yaml import what_yaml_read


def gateway_settings(ctx: CheckContext) -> None:
    for section in SECTIONS:
        values = getattr(ctx.catalog.gateway, section)
        for key in values:
            path = ("gateway", section, key)
            if key in DERIVED[section]:
                why, instead = DERIVED[section][key]
                ctx.error(ctx.cat, path, why, "derived-setting", instead)
            elif key not in KNOWN[section]:
                # Hundreds of keys: only a near miss is worth naming.
                meant = closest_name(key, KNOWN[section], cutoff=0.8)
                hint = f"Did you mean '{meant}'?" if meant else f"See the {section} of LiteLLM's proxy config docs."
                ctx.error(ctx.cat, path, f"LiteLLM {LITELLM_VERSION} has no {section} key '{key}'",
                          "unknown-setting", hint)  # fmt: skip
            else:
                _shape(ctx, path, SHAPES[section].get(key), values[key])
        _secrets(ctx, section, {k: v for k, v in values.items() if k not in DERIVED[section]})
    router = ctx.catalog.gateway.router_settings
    if ctx.catalog.routes.context_window_fallbacks and router.get("enable_pre_call_checks", True) is not True:
        why = ("LiteLLM chooses a context-window fallback before the call only with pre-call checks on, and "
               "`routes.context_window_fallbacks` is set")  # fmt: skip
        path = ("gateway", "router_settings", "enable_pre_call_checks")
        ctx.error(ctx.cat, path, why, "derived-setting", "Remove it (llmfleet sets it true).")


def _shape(ctx: CheckContext, path: tuple[str, ...], shape: str | None, value: object) -> None:
    """A boolean where LiteLLM reads a number (`num_retries: on` would be 1), or anything but a
    boolean where it reads one (`drop_params: "false"` is a true string): no silent conversion."""
    if shape is None or value is None or env_ref(value) is not None:
        return
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if (shape == "number" and is_number) or (shape == "bool" and isinstance(value, bool)):
        return
    written = ctx.cat.not_strings.get(path)
    read = f"YAML reads `{written[0]}` as {what_yaml_read(value)}" if written else f"got {what_yaml_read(value)}"
    if isinstance(value, str):
        read = f"got the text '{value}'"
    want = "a number" if shape == "number" else "true or false"
    ctx.error(ctx.cat, path, f"{read}; LiteLLM reads this setting as {want}", "setting-type",
              f"Write {want}{' (unquoted)' if isinstance(value, str) else ''}.")  # fmt: skip


# Header names that carry credentials (a logger's or callback's headers map).
_CREDENTIAL_HEADERS = {"authorization", "proxy-authorization", "x-api-key", "api-key"}


def _credential(key: str, value: str) -> bool:
    return looks_secret(key) or key.lower() in _CREDENTIAL_HEADERS or value.startswith(("Bearer ", "Basic "))


def _secrets(ctx: CheckContext, section: str, values: dict) -> None:
    for path, value in walk(values, ("gateway", section)):
        name = env_ref(value)
        key = path[-1]
        if name is not None and isinstance(key, int):
            # LiteLLM resolves os.environ/ in maps at any depth, in a list only inside a map item
            # (proxy_server.py, _resolved_config_value): this text would reach it as written.
            ctx.error(ctx.cat, path, f"LiteLLM does not resolve `{value}` as a list item", "unresolved-env",
                      "Write the value itself: LiteLLM passes this text on unchanged.")  # fmt: skip
        elif name is not None:
            if name not in ctx.stack.api_keys:
                run = f"Run: {set_secret_command(f'llmfleet:apiKeys.{name}', ctx.name)}"
                message = f"no secret {name} for `{value}` in the catalog's gateway settings"
                ctx.warn(ctx.stk, ("config",), message, "missing-secret", run)
        elif isinstance(key, str) and isinstance(value, str) and value and _credential(key, value):
            name = key.upper().replace("-", "_")
            ctx.error(ctx.cat, path, "a credential in plain text in the catalog (a git file)", "catalog-secret",
                      f"Write `os.environ/{name}` and keep the value in the stack. "
                      f"Run: {set_secret_command(f'llmfleet:apiKeys.{name}', ctx.name)}")  # fmt: skip
