"""A block-style YAML emitter for plain data (dict, list, str, int, float, bool, None).

PyYAML's representer is pure Python and took 75% of `render` on a 10,000-model fleet (0.65 s
of 0.87 s), even with libyaml's emitter. Our output is plain data, so this writes it directly:
strings that are not unmistakably plain are written as JSON strings, which are valid YAML
double-quoted scalars. tests/test_yaml_emit.py checks that PyYAML reads back exactly what went in.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

# Plain only when YAML cannot read it as anything but this string (no bool, null, number,
# indicator or comment); everything else is quoted.
_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./@-]*(:[A-Za-z0-9_./@-]+)*")
_RESERVED = re.compile(r"(?i)y|n|yes|no|on|off|true|false|null|[-+]?(\.inf|\.nan)|.*[eE][-+]?\d.*")


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return {"nan": ".nan", "inf": ".inf", "-inf": "-.inf"}[repr(value)]
        text = repr(value)
        # YAML 1.1 (PyYAML) reads 1e-09 as a string: the mantissa needs a dot.
        return text.replace("e", ".0e", 1) if "e" in text and "." not in text else text
    if isinstance(value, str):
        return _string(value)
    raise TypeError(f"cannot emit {type(value).__name__} as YAML")


@functools.lru_cache(maxsize=65536)
def _string(value: str) -> str:
    # Keys and api_bases repeat thousands of times in a large config: decide each once.
    if _PLAIN.fullmatch(value) and not _RESERVED.fullmatch(value):
        return value
    return json.dumps(value, ensure_ascii=False)


def _emit(value: Any, indent: str, out: list[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            head = f"{indent}{_scalar(key)}:"
            if isinstance(item, dict | list) and item:
                out.append(head)
                # Lists sit at their key's indent, as PyYAML writes them.
                _emit(item, indent + "  " if isinstance(item, dict) else indent, out)
            else:
                out.append(f"{head} {_empty(item) if isinstance(item, dict | list) else _scalar(item)}")
    else:
        for item in value:
            if isinstance(item, dict) and item:
                inner: list[str] = []
                _emit(item, indent + "  ", inner)
                out.append(f"{indent}- {inner[0][len(indent) + 2 :]}")
                out.extend(inner[1:])
            elif isinstance(item, list) and item:
                out.append(f"{indent}-")
                _emit(item, indent + "  ", out)
            else:
                out.append(f"{indent}- {_empty(item) if isinstance(item, dict | list) else _scalar(item)}")


def _empty(value: dict | list) -> str:
    return "{}" if isinstance(value, dict) else "[]"


def dump_yaml(data: dict[str, Any]) -> str:
    out: list[str] = []
    _emit(data, "", out)
    return "\n".join(out) + "\n"
