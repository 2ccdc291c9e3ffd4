"""Write llmfleet/_litellm_keys.py: the settings keys the pinned LiteLLM knows, per section of
its proxy config, read from the installed LiteLLM the way its proxy applies each section
(litellm/proxy/proxy_server.py, ProxyConfig.load_config):

- router_settings: passed to `Router(...)` when in `Router.get_valid_args()` and not in
  `ROUTER_SETTINGS_MANAGED_OUTSIDE_CONFIG`; anything else is ignored with a warning.
- litellm_settings: each key is either handled by name in the loop over `litellm_settings`
  (`key == "..."`) or set as an attribute of the litellm module, so a known key is one of those
  names or a public module-level setting (a plain value: no module, class or function).
- general_settings: read with `general_settings.get("...")` / `general_settings["..."]` across the
  proxy, plus the fields of `ConfigGeneralSettings`.

`validate` must not import litellm (users install pydantic, pyyaml and httpx only, and the drift
path must stay fast), so the keys are generated here and committed; tests/test_gateway_settings.py
regenerates them from the installed LiteLLM and fails when the committed file differs.

    python tools/litellm_keys.py          # rewrite llmfleet/_litellm_keys.py
"""

from __future__ import annotations

import ast
import inspect
import os
import re
import sys
import types
import typing
from pathlib import Path

TARGET = Path(__file__).resolve().parent.parent / "llmfleet" / "_litellm_keys.py"
_PLAIN = (type(None), bool, int, float, str, list, dict, set, tuple)


def _special_litellm_settings(source: str) -> set[str]:
    """The names compared with `key` inside the `for key, value in litellm_settings.items()` loop."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.For | ast.AsyncFor) and isinstance(node.iter, ast.Call)):
            continue
        func = node.iter.func
        if not (isinstance(func, ast.Attribute) and func.attr == "items"):
            continue
        if not (isinstance(func.value, ast.Name) and func.value.id == "litellm_settings"):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.Compare) and isinstance(inner.left, ast.Name) and inner.left.id == "key":
                for comp in inner.comparators:
                    if isinstance(comp, ast.Constant) and isinstance(comp.value, str):
                        names.add(comp.value)
    return names


def _shape(annotation: object) -> str | None:
    """ "bool" or "number" when an annotation admits only that (and None); None otherwise."""
    leaves = {annotation}
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        leaves = set(typing.get_args(annotation))
    leaves.discard(type(None))
    if leaves == {bool}:
        return "bool"
    if leaves and leaves <= {int, float}:
        return "number"
    return None


def _value_shape(value: object) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return None


def shapes() -> dict[str, dict[str, str]]:
    """For each section, the keys whose value LiteLLM reads as a boolean or as a number: from
    Router.__init__'s and ConfigGeneralSettings' annotations, and from the litellm module's own
    default value (the proxy sets each as an attribute, some after handling them by name)."""
    import litellm
    from litellm.proxy._types import ConfigGeneralSettings

    keys = known_keys()
    hints = typing.get_type_hints(litellm.Router.__init__)
    found = {
        "router_settings": {k: _shape(hints.get(k)) for k in keys["router_settings"]},
        "litellm_settings": {k: _value_shape(getattr(litellm, k, None)) for k in keys["litellm_settings"]},
        "general_settings": {
            k: _shape(f.annotation)
            for k, f in ConfigGeneralSettings.model_fields.items()
            if k in keys["general_settings"]
        },
    }
    return {section: {k: v for k, v in sorted(values.items()) if v} for section, values in found.items()}


def known_keys() -> dict[str, list[str]]:
    import litellm
    from litellm.constants import ROUTER_SETTINGS_MANAGED_OUTSIDE_CONFIG
    from litellm.proxy import proxy_server
    from litellm.proxy._types import ConfigGeneralSettings

    router = set(litellm.Router.get_valid_args()) - set(ROUTER_SETTINGS_MANAGED_OUTSIDE_CONFIG)
    module = {
        name
        for name, value in vars(litellm).items()
        if not name.startswith("_") and name != "TYPE_CHECKING" and isinstance(value, _PLAIN)
    }
    special = _special_litellm_settings(inspect.getsource(proxy_server))
    general = set(ConfigGeneralSettings.model_fields)
    read = re.compile(r"""general_settings(?:\.get\(\s*|\[)["']([a-z0-9_]+)["']""")
    for path in sorted(Path(litellm.__file__).parent.rglob("*.py")):
        general |= set(read.findall(path.read_text(encoding="utf-8", errors="replace")))
    return {
        "router_settings": sorted(router),
        "litellm_settings": sorted(module | special),
        "general_settings": sorted(general),
    }


def render() -> str:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network at import
    import litellm

    version = litellm.version if isinstance(getattr(litellm, "version", None), str) else _version()
    lines = [
        f'"""Settings keys LiteLLM {version} knows, per section of its proxy config.',
        "",
        "Generated by tools/litellm_keys.py from the installed LiteLLM; do not edit. Regenerate after",
        'upgrading the pinned LiteLLM: python tools/litellm_keys.py"""',
        "",
        f'LITELLM_VERSION = "{version}"',
        "",
        "KNOWN: dict[str, frozenset[str]] = {",
    ]
    for section, keys in known_keys().items():
        lines.append(f'    "{section}": frozenset(')
        lines.append("        {")
        lines += [f'            "{key}",' for key in keys]
        lines.append("        }")
        lines.append("    ),")
    lines.append("}")
    lines += [
        "",
        "# What LiteLLM reads a key's value as, where it is a boolean or a number only.",
        "SHAPES: dict[str, dict[str, str]] = {",
    ]
    for section, values in shapes().items():
        lines.append(f'    "{section}": {{')
        lines += [f'        "{key}": "{shape}",' for key, shape in values.items()]
        lines.append("    },")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _version() -> str:
    from importlib.metadata import version

    return version("litellm")


if __name__ == "__main__":
    TARGET.write_text(render())
    sys.stdout.write(f"wrote {TARGET}\n")
