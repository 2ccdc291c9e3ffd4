"""What a change to the catalog does to the gateway: names that appear or disappear in
/v1/models, and routes that change. Ready for a pull-request comment."""

from __future__ import annotations

from ._catalog import Alias, Catalog, GroupMember
from ._declared import declared_models
from ._errors import format_key_path


def _routes(catalog: Catalog | None) -> dict[tuple[str, str], str]:
    if catalog is None:
        return {}
    r = catalog.routes
    out: dict[tuple[str, str], str] = {}
    for key in ("fallbacks", "context_window_fallbacks"):
        for source, targets in getattr(r, key).items():
            out[(key, source)] = " -> ".join([source, *targets])
    for name, members in r.groups.items():
        out[("groups", name)] = ", ".join(_member(m) for m in members)
    for name, alias in r.alias_entries().items():
        out[("aliases", name)] = _alias(alias)
    return out


def _member(m: GroupMember) -> str:
    return f"{m.provider}{'/' + m.model if m.model else ''} x{m.weight:g}"


def _alias(a: Alias) -> str:
    return f"{a.model}{' (hidden)' if a.hidden else ''}"


def model_diff(base: Catalog | None, head: Catalog) -> list[str]:
    """`+ name` / `- name` for /v1/models, then `+`/`-`/`~` lines for routes; empty when equal."""
    before = set(declared_models(base)) if base else set()
    after = set(declared_models(head))
    lines = [f"+ {n}" for n in sorted(after - before)] + [f"- {n}" for n in sorted(before - after)]
    old, new = _routes(base), _routes(head)
    for key in sorted(old.keys() | new.keys()):
        where = format_key_path(("routes", *key))
        if key not in old:
            lines.append(f"+ {where}: {new[key]}")
        elif key not in new:
            lines.append(f"- {where}: {old[key]}")
        elif old[key] != new[key]:
            lines.append(f"~ {where}: {old[key]}  =>  {new[key]}")
    return lines


def diff_markdown(stack: str, lines: list[str]) -> str:
    if not lines:
        return f"**llmfleet** stack `{stack}`: no change to the gateway's models or routes.\n"
    body = "\n".join(lines)
    return f"**llmfleet** stack `{stack}`: changes to the gateway's models and routes\n\n```diff\n{body}\n```\n"
