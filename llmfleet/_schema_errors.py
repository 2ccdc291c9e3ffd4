"""Turn pydantic's validation errors into problems a user can act on.

pydantic speaks about Python types ("valid dictionary or instance of Catalog"); a user edits
YAML. Each error becomes one located problem in YAML's terms, and an unknown key is answered
from the schema at that spot: the keys allowed there, where a real key belongs instead, or that
LiteLLM's own keys are what llmfleet derives.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Iterable
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from ._checks_context import closest_name
from ._errors import KeyPath, Problem
from ._yaml import SourceMap, what_yaml_read

# How alike a key must be to an allowed one to be called a typo of it, above a hint of where the
# key belongs (difflib's ratio: `model`/`models` 0.91, `aliases`/`alias` 0.83, `bind`/`kind` 0.75).
NEAR_MISS = 0.8
DNS_LABEL = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
_PATTERNS = {
    DNS_LABEL: "use lowercase letters, digits and '-' (it becomes a Docker DNS name)",
    r"^\S+$": "it must not be empty or contain spaces",
    r"^[A-Za-z_][A-Za-z0-9_]*$": "it must be an environment variable name",
    r"^[\w.-]+/[\w.-]+(:[\w.-]+)?$": "give a Hugging Face repo, optionally with a quant: org/repo:Q4_K_M",
    r"^https?://[^\s/]+(/\S*)?$": "give an http:// or https:// URL",
    r"^https?://\S+$": "give an http:// or https:// URL",
    r"^(unix|ssh|tcp)://\S+$": "give a Docker endpoint: ssh://user@host, tcp://host:2376 or unix:///path",
}

# Keys of LiteLLM's proxy config that people carry over from hand-written YAML.
_LITELLM_KEYS = {
    "model_list": "Declare the models under `providers`; `llmfleet render --stack <stack>` shows the model_list.",
    "litellm_params": "Declare the provider (`kind`, what it serves); llmfleet writes its litellm_params.",
    "model_name": "The names a provider serves are its `models`, `served_name` or `alias`.",
    "api_base": "A provider's address follows from its kind and placement; an external API takes `base_url`.",
    "api_key": "Give `api_key_env` (the variable's name); the key is a stack secret: llmfleet:apiKeys.",
    "model_info": "llmfleet writes model_info from the catalog (`context_length`).",
}


def annotation_leaves(annotation: Any) -> list[Any]:
    origin = get_origin(annotation)
    if origin is Annotated:
        return annotation_leaves(get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [leaf for arg in get_args(annotation) for leaf in annotation_leaves(arg)]
    return [annotation]


def _is_model(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, BaseModel)


def _fields(model: type[BaseModel]) -> dict[str, Any]:
    return {info.alias or name: info.annotation for name, info in model.model_fields.items()}


def _narrow(leaves: list[Any], node: Any) -> list[Any]:
    """Of a union of models, those whose `kind` matches the data's, when it names one."""
    if not (isinstance(node, dict) and isinstance(node.get("kind"), str)):
        return leaves
    kinds = [t for t in leaves if _is_model(t) and "kind" in t.model_fields]
    match = [t for t in kinds if node["kind"] in get_args(t.model_fields["kind"].annotation)]
    return [t for t in leaves if t not in kinds or t in match] if match else leaves


def models_at(root: type[BaseModel], data: Any, path: KeyPath) -> tuple[list[type[BaseModel]], str]:
    """The schema models that apply to the value at `path` of `data` (validated as `root`), and
    that spot written as `places` writes it (`providers.<name>`)."""
    annotations: list[Any] = [root]
    node, spot = data, ""
    for key in path:
        following: list[Any] = []
        step = str(key)
        for leaf in _narrow([leaf for a in annotations for leaf in annotation_leaves(a)], node):
            origin = get_origin(leaf)
            if _is_model(leaf) and isinstance(key, str) and key in _fields(leaf):
                following.append(_fields(leaf)[key])
            elif origin is dict:
                following.append(get_args(leaf)[1])
                step = "<name>"
            elif origin is list and isinstance(key, int):
                following.append(get_args(leaf)[0])
                step = "[]"
        annotations = following
        spot = spot + step if step == "[]" else f"{spot}.{step}" if spot else step
        node = node[key] if isinstance(node, dict | list) and _has(node, key) else None
    leaves = _narrow([x for a in annotations for x in annotation_leaves(a)], node)
    return list(dict.fromkeys(t for t in leaves if _is_model(t))), spot


def _has(node: dict[Any, Any] | list[Any], key: Any) -> bool:
    return key in node if isinstance(node, dict) else isinstance(key, int) and 0 <= key < len(node)


def places(root: type[BaseModel], top: str) -> dict[str, list[str]]:
    """Every key of the schema, with where it may be written (`routes`, `providers.<name>`)."""
    out: dict[str, list[str]] = {}
    todo: list[tuple[Any, str]] = [(root, "")]
    seen: set[tuple[Any, str]] = set()
    while todo:
        annotation, where = todo.pop()
        for leaf in annotation_leaves(annotation):
            if (leaf, where) in seen:
                continue
            seen.add((leaf, where))
            if _is_model(leaf):
                for key, child in _fields(leaf).items():
                    spots = out.setdefault(key, [])
                    if (where or top) not in spots:
                        spots.append(where or top)
                    todo.append((child, f"{where}.{key}" if where else key))
            elif get_origin(leaf) is dict:
                todo.append((get_args(leaf)[1], f"{where}.<name>"))
            elif get_origin(leaf) is list:
                todo.append((get_args(leaf)[0], f"{where}[]"))
    return out


# What a strict number or boolean field wanted, by pydantic's error type.
_WANTED = {"int_type": "a whole number", "float_type": "a number", "bool_type": "true or false"}


def _meant(text: str, wanted: str) -> str | None:
    """The value `text` would be without quotes, written as YAML reads it as `wanted`; None when
    it is no such value."""
    if wanted == "true or false":
        return text.lower() if text.lower() in ("true", "false") else None
    try:
        number = float(text.replace("_", ""))
    except ValueError:
        return None
    if not math.isfinite(number) or (wanted == "a whole number" and not number.is_integer()):
        return None
    return str(int(number)) if number.is_integer() else repr(number)


def _examples(annotation: Any) -> list[Any]:
    """The examples a field's type gives (`Port | None`: those of Port's Field)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        own = [e for m in get_args(annotation)[1:] for e in (getattr(m, "examples", None) or [])]
        return own or _examples(get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [e for arg in get_args(annotation) for e in _examples(arg)]
    return []


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f"'{value}'"
    return str(value)


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "a map"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text '{value}'" if len(value) <= 40 else "a text"
    return what_yaml_read(value)


class SchemaErrors:
    """Translates the errors of validating one file's data (at `prefix` in the file) as `root`."""

    def __init__(self, root: type[BaseModel], data: Any, src: SourceMap, prefix: KeyPath = (),
                 elsewhere: Iterable[tuple[dict[str, list[str]], str]] = ()) -> None:  # fmt: skip
        self.root, self.data, self.src, self.prefix = root, data, src, prefix
        self.here = places(root, "the top level")
        self.elsewhere = list(elsewhere)  # (places in another file, how to name that file)

    def problems(self, exc: ValidationError) -> list[Problem]:
        out: list[Problem] = []
        seen: set[tuple[int, int, str]] = set()
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            path = self.real_path(loc)
            message, hint = self.explain(err, loc, path)
            rule = f"schema-{err['type'].replace('_', '-')}"
            problem = self.src.problem((*self.prefix, *path), message, rule, hint)
            if (problem.line, problem.col, problem.message) not in seen:  # one union member each
                seen.add((problem.line, problem.col, problem.message))
                out.append(problem)
        return out

    def real_path(self, loc: tuple[Any, ...]) -> KeyPath:
        """Map a pydantic loc onto keys that exist in the data, dropping union tags and `[key]`."""
        path: list[str | int] = []
        node = self.data
        for part in loc:
            if isinstance(node, dict | list) and _has(node, part):
                node = node[part]
                path.append(part)
        return tuple(path)

    def explain(self, err: Any, loc: tuple[Any, ...], path: KeyPath) -> tuple[str, str]:
        kind, ctx, value = err["type"], err.get("ctx") or {}, err["input"]
        if kind == "extra_forbidden":
            return self.unknown_key(str(loc[-1]), path[:-1] if path and path[-1] == loc[-1] else path)
        if kind == "missing":
            return f"missing required key '{loc[-1]}'", "Add it."
        if kind == "union_tag_invalid":
            return f"unknown kind '{ctx.get('tag')}'", f"Use one of: {ctx.get('expected_tags')}."
        if kind == "union_tag_not_found":
            return "missing required key 'kind'", "Add `kind:` (ollama, vllm, llama_cpp, llama_cpp_python or external)."
        if kind == "string_pattern_mismatch":
            shown = value if loc[-1] != "[key]" else loc[-2]
            pattern = ctx.get("pattern")
            if pattern == DNS_LABEL and isinstance(shown, str) and len(shown) > 63:
                return (f"'{shown[:20]}...' is {len(shown)} characters long: a name here becomes a DNS label, "
                        "which is at most 63", "Shorten it.")  # fmt: skip
            return f"'{shown}' is not valid: {_PATTERNS.get(pattern, f'it does not match {pattern}')}", ""
        if kind == "value_error":
            return str(ctx.get("error", err["msg"])), ""
        if kind == "string_type":
            written = self.src.not_strings.get((*self.prefix, *path))
            if written is not None and written[0]:
                # A field with an example is text of a form (`cuda_architectures: '90'`), not a name.
                # So is a value passed through to a server or LiteLLM (`args`, `env`, `gateway`).
                what = "text" if self.field_at(path)[1] is not None or _passed_through(path) else "a name"
                # `pulumi config set --path` writes an integer, `true` and `false` unquoted unless told otherwise.
                typed = written[0] in ("true", "false") or type(written[1]) is int
                cli = " (`pulumi config set --path` writes it so with `--type string`)" if self.prefix and typed else ""
                return (f"YAML reads `{written[0]}` as {what_yaml_read(written[1])}, not as {what}",
                        f"Quote it: '{written[0]}'{cli}.")  # fmt: skip
            if value is None:
                return "is empty", "Give a value."
            return f"expected a name (text), got {_shown(value)}", ""
        if kind in ("model_type", "model_attributes_type", "dict_type"):
            return f"expected a map (`key: value` lines), got {_shown(value)}", self.map_hint(path, value)
        if kind == "list_type" and _passed_through((*path, 0)) and isinstance(value, str):
            items = ", ".join(value.split())
            return f"expected a list, got {_shown(value)}", f"Write each argument as an item: [{items}]."
        if kind == "list_type":
            example = f"[{value}]" if isinstance(value, str | int) and not isinstance(value, bool) else "[a, b]"
            return f"expected a list, got {_shown(value)}", f"Write a list: {example}."
        if kind in _WANTED:
            return self.wrong_type(_WANTED[kind], value, path)
        if kind == "finite_number":
            return f"expected a finite number, got {_shown(value)}", self.write_hint("a number", path)
        if kind == "literal_error":
            shown = f"'{value}'" if isinstance(value, str) else _shown(value)
            return f"{shown} is not allowed here", f"Use one of: {ctx.get('expected')}."
        bounds = {"greater_than": "greater than", "greater_than_equal": "at least", "less_than": "less than",
                  "less_than_equal": "at most"}  # fmt: skip
        if kind in bounds:
            limit = next(iter(ctx.values()), "?")
            return f"must be {bounds[kind]} {limit}, got {_shown(value)}", ""
        if kind == "too_short":
            if ctx.get("min_length") == 1:
                return "must not be empty", "List at least one."
            return f"needs at least {ctx.get('min_length')} entries, got {ctx.get('actual_length')}", ""
        if kind in ("too_long", "string_too_long"):
            return f"is too long (at most {ctx.get('max_length')})", "Shorten it."
        if kind == "string_too_short":
            return "must not be empty", "Give a value."
        return f"not valid here ({err['msg'][0].lower()}{err['msg'][1:]})", ""

    def field_at(self, path: KeyPath) -> tuple[str, Any]:
        """The schema key a value at `path` belongs to (a list's key for its items) and the example
        that key's schema gives (None when it gives none)."""
        at = [i for i, part in enumerate(path) if isinstance(part, str)]
        if not at:
            return "", None
        key = str(path[at[-1]])
        models, _ = models_at(self.root, self.data, path[: at[-1]])
        for model in models:
            for name, info in model.model_fields.items():
                if (info.alias or name) == key:
                    examples = info.examples or _examples(info.annotation)
                    if examples:
                        return key, examples[0]
        return key, None

    def write_hint(self, wanted: str, path: KeyPath) -> str:
        key, example = self.field_at(path)
        return f"Write {wanted}, e.g. {key}: {_yaml_scalar(example)}." if example is not None else f"Write {wanted}."

    def wrong_type(self, wanted: str, value: Any, path: KeyPath) -> tuple[str, str]:
        """A number or a boolean refused: what YAML read (never coerced: `on` is not 1, "8080" is
        text, 8080.0 not a port) and what to write instead."""
        key = self.field_at(path)[0]
        key = f"{key}: " if path and isinstance(path[-1], str) else ""  # a list's item: the value alone
        full = (*self.prefix, *path)
        written = self.src.not_strings.get(full)
        if value is None:
            return "is empty", self.write_hint(wanted, path)
        if isinstance(value, str):
            meant = _meant(value, wanted)
            if full in self.src.quoted and meant is not None:
                return (f"'{value}' is in quotes, so YAML reads it as text, not as {wanted}",
                        f"Remove the quotes: {key}{meant}.")  # fmt: skip
            if meant is not None:  # plain, yet text to YAML 1.1: `1e3` (an exponent needs a '.')
                return f"YAML reads `{value}` as text, not as {wanted}", f"Write {key}{meant}."
            return f"expected {wanted}, got {_shown(value)}", self.write_hint(wanted, path)
        if isinstance(value, dict | list) or written is None:
            return f"expected {wanted}, got {_shown(value)}", self.write_hint(wanted, path)
        message = f"YAML reads `{written[0]}` as {what_yaml_read(value)}, not as {wanted}"
        if wanted == "true or false":
            return message, f"Write {key}true or {key}false."
        if isinstance(value, float) and value.is_integer():
            return message, f"Write {key}{int(value)}."
        return message, self.write_hint(wanted, path)

    def map_hint(self, path: KeyPath, value: Any) -> str:
        if not path and self.prefix == ():
            keys = ", ".join(f"`{k}:`" for k in _fields(self.root))
            return f"The file is a map with the keys {keys}."
        if len(path) == 2 and path[0] == "providers" and isinstance(value, str):
            return f"A provider is a map: `kind: {value}` and what it serves (see README: the catalog)."
        return "Write it as `key: value` lines indented under this key."

    def unknown_key(self, key: str, parent: KeyPath) -> tuple[str, str]:
        if not parent and not self.prefix:
            allowed_top = ", ".join(_fields(self.root))
            meant = closest_name(key, _fields(self.root))
            if key not in self.here and not meant and key not in _LITELLM_KEYS:
                return f"unknown key '{key}'", f"Allowed here: {allowed_top}, and `x-` keys to hold anchors."
        if key in _LITELLM_KEYS and not self.prefix:
            return f"'{key}' is LiteLLM's own config, which llmfleet derives from the catalog", _LITELLM_KEYS[key]
        models, spot = models_at(self.root, self.data, parent)
        allowed = sorted({k for m in models for k in _fields(m)} - {key})
        message = f"unknown key '{key}'"
        spot = spot or "the top level"
        here = [s for s in self.here.get(key, []) if s != spot]
        # A near miss of a key allowed here (`model` for an Ollama provider's `models`) is a typo
        # more likely than a key of another kind or place: say so before where `key` belongs.
        near = _near_key(key, allowed)
        if key in self.here and not here:
            kinds = sorted({get_args(m.model_fields["kind"].annotation)[0] for m in models if "kind" in m.model_fields})
            what = f"a `kind: {kinds[0]}` provider" if len(kinds) == 1 else "this entry"
            hint = f"Did you mean '{near}'?" if near else f"Allowed here: {', '.join(allowed)}."
            return f"'{key}' is not a key of {what}", hint
        if near:
            return message, f"Did you mean '{near}'?"
        if here:
            return message, f"`{key}` belongs under {_listed(here)}."
        bare = key.removeprefix("llmfleet:")
        for spots, file in self.elsewhere:
            found = spots.get(bare) or spots.get(key)
            if found:
                return message, f"`{bare}` belongs in {file}, under {_listed(found)}."
        meant = closest_name(key, allowed)
        if meant:
            return message, f"Did you mean '{meant}'?"
        return message, f"Allowed here: {', '.join(allowed)}." if 0 < len(allowed) <= 12 else "Remove it."


def _passed_through(path: KeyPath) -> bool:
    """A value handed to a server as written (an extra argument or variable): text, not a name."""
    return len(path) == 4 and path[0] == "providers" and path[2] in ("args", "env")


def _near_key(key: str, allowed: Iterable[str]) -> str | None:
    """The allowed key `key` is a near miss of (a letter more, less or swapped), compared without
    the `llmfleet:` prefix every stack key shares, which would make any two look alike."""
    bare = {k.removeprefix("llmfleet:"): k for k in allowed}
    meant = closest_name(key.removeprefix("llmfleet:"), bare, cutoff=NEAR_MISS)
    return bare[meant] if meant else None


def _listed(spots: list[str]) -> str:
    shown = [s if s == "the top level" else f"`{s}`" for s in spots[:3]]
    return " or ".join(shown) + (" (and more)" if len(spots) > 3 else "")
