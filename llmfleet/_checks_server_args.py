"""Checks of a server's extra `args` and `env`: passed through, but never over what llmfleet
derives (the served name, the port, the model, the context, ...: see _server_args.py), never in a
form the server cannot read, and never a credential in plain text in the catalog."""

from __future__ import annotations

from ._catalog import ExternalProvider
from ._checks_context import CheckContext
from ._server_args import ENV_ONLY, HF_TOKEN, Derived, derived_env, derived_flag, flag_name, looks_secret
from ._stack import set_secret_command


def server_args(ctx: CheckContext) -> None:
    for pname, p in ctx.catalog.providers.items():
        if isinstance(p, ExternalProvider):
            continue
        where = ("providers", pname)
        if p.args and p.kind in ENV_ONLY:
            ctx.error(ctx.cat, (*where, "args"), ENV_ONLY[p.kind], "args-not-supported")
        else:
            for i, token in enumerate(p.args):
                _check_arg(ctx, (*where, "args", i), p.kind, token)
        for name in p.env:
            _check_env(ctx, (*where, "env", name), p.kind, name)


def _check_arg(ctx: CheckContext, path: tuple[str | int, ...], kind: str, token: str) -> None:
    found = derived_flag(kind, token)
    if found:
        flag, derived = found
        read_as = "" if flag == token.split("=", 1)[0] else f" (read as `{flag}`)"
        ctx.error(ctx.cat, path, f"`{token}`{read_as} would override {derived.what} that llmfleet sets",
                  "derived-arg", _instead(ctx, derived))  # fmt: skip
        return
    name = flag_name(kind, token)
    if kind == "llama_cpp" and name is not None and "=" in token:
        value = token.split("=", 1)[1]
        ctx.error(ctx.cat, path, f"llama-server does not read `{token}` (it refuses `--option=value`)",
                  "server-arg-form", f"Give the value as the next item: `{name}`, `{value}`.")  # fmt: skip
    elif name is not None and looks_secret(name.lstrip("-").replace("-", "_")):
        ctx.error(ctx.cat, path, f"`{name}` passes a credential, which would be plain text in the catalog (a git file)",
                  "catalog-secret", NO_SECRETS)  # fmt: skip


def _check_env(ctx: CheckContext, path: tuple[str | int, ...], kind: str, name: str) -> None:
    found = derived_env(kind, name)
    if found:
        var, derived = found
        read_as = "" if var == name else f" (read as {var}: the server matches names ignoring case)"
        ctx.error(ctx.cat, path, f"{name}{read_as} would override {derived.what} that llmfleet sets",
                  "derived-env", _instead(ctx, derived))  # fmt: skip
    elif looks_secret(name):
        message = f"{name} looks like a credential, which would be plain text in the catalog (a git file)"
        ctx.error(ctx.cat, path, message, "catalog-secret", NO_SECRETS)


NO_SECRETS = "Per-server secrets are not supported yet (only the Hugging Face token, for vLLM and llama-server)."


def _instead(ctx: CheckContext, derived: Derived) -> str:
    if derived is HF_TOKEN:
        return f"{derived.instead}. Run: {set_secret_command('llmfleet:hfToken', ctx.name)}"
    return f"{derived.instead}."
