"""Load a stack file and its catalog into one validated Fleet, or every problem found."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ._catalog import Catalog
from ._checks import check, closest_name
from ._errors import ConfigError, KeyPath, Problem
from ._stack import StackFile, StackSettings
from ._yaml import SourceMap, parse_yaml

NAMESPACE = "llmfleet:"
_SECRET_KEYS = ("llmfleet:masterKey", "llmfleet:hfToken")


@dataclass(frozen=True)
class Fleet:
    """A catalog and the stack that places it, both valid together."""

    name: str
    catalog: Catalog
    stack: StackSettings
    catalog_file: str
    warnings: list[Problem] = field(default_factory=list)


def _vocabulary(*models: type[BaseModel]) -> set[str]:
    words: set[str] = set()
    todo = list(models)
    while todo:
        model = todo.pop()
        for name, info in model.model_fields.items():
            words.add(info.alias or name)
            for arg in _types_in(info.annotation):
                if isinstance(arg, type) and issubclass(arg, BaseModel) and arg not in models:
                    todo.append(arg)
    return words


def _types_in(annotation: Any) -> list[Any]:
    out, todo = [], [annotation]
    while todo:
        t = todo.pop()
        out.append(t)
        todo.extend(getattr(t, "__args__", ()) or ())
        todo.extend(getattr(t, "__metadata__", ()) or ())
        origin = getattr(t, "__origin__", None)
        if origin is not None:
            todo.append(origin)
    return out


_PATTERNS = {
    r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$": "use lowercase letters, digits and '-' (it becomes a Docker DNS name)",
    r"^\S+$": "it must not be empty or contain spaces",
    r"^[A-Za-z_][A-Za-z0-9_]*$": "it must be an environment variable name",
    r"^[\w.-]+/[\w.-]+(:[\w.-]+)?$": "give a Hugging Face repo, optionally with a quant: org/repo:Q4_K_M",
    r"^https?://[^\s/]+(/\S*)?$": "give an http:// or https:// URL",
    r"^https?://\S+$": "give an http:// or https:// URL",
    r"^(unix|ssh|tcp)://\S+$": "give a Docker endpoint: ssh://user@host, tcp://host:2376 or unix:///path",
}


def _real_path(loc: tuple[Any, ...], data: Any) -> KeyPath:
    """Map a pydantic loc onto keys that exist in the data, dropping union tags and `[key]`."""
    path: list[str | int] = []
    node = data
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if in_dict or in_list:
            node = node[part]
            path.append(part)
    return tuple(path)


def _pydantic_problems(
    exc: ValidationError, data: Any, src: SourceMap, prefix: KeyPath, vocab: set[str]
) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        path = (*prefix, *_real_path(loc, data))
        kind, ctx, hint = err["type"], err.get("ctx") or {}, ""
        if kind == "extra_forbidden":
            message = f"unknown key '{loc[-1]}'"
            meant = closest_name(str(loc[-1]), vocab)
            hint = f"Did you mean '{meant}'?" if meant else "Remove it."
        elif kind == "missing":
            message = f"missing required key '{loc[-1]}'"
            hint = "Add it."
        elif kind == "union_tag_invalid":
            message = f"unknown kind '{ctx.get('tag')}'"
            hint = f"Use one of: {ctx.get('expected_tags')}."
        elif kind == "union_tag_not_found":
            message = "missing required key 'kind'"
            hint = "Add `kind:` (ollama, vllm, llama_cpp, llama_cpp_python or external)."
        elif kind == "string_pattern_mismatch":
            shown = err["input"] if loc[-1] != "[key]" else loc[-2]
            pattern = ctx.get("pattern")
            message = f"'{shown}' is not valid: {_PATTERNS.get(pattern, f'it does not match {pattern}')}"
        elif kind == "value_error":
            message = str(ctx.get("error", err["msg"]))
        else:
            message = err["msg"][0].lower() + err["msg"][1:]
        problems.append(src.problem(path, message, f"schema-{kind.replace('_', '-')}", hint))
    return problems


def _read(path: Path, shown: str) -> tuple[str | None, Problem | None]:
    try:
        return path.read_text(encoding="utf-8"), None
    except FileNotFoundError:
        return None, Problem(shown, 1, 1, (), "file not found", "missing-file", hint="Check the path.")
    except (OSError, UnicodeDecodeError) as exc:
        return None, Problem(shown, 1, 1, (), f"cannot read the file: {exc}", "unreadable-file")


def stack_names(project_dir: Path) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in (project_dir / "stacks").glob("Pulumi.*.yaml"))


def load_stack_settings(
    text: str, filename: str, stack: str = "<stack>"
) -> tuple[StackSettings | None, SourceMap, list[Problem]]:
    doc = parse_yaml(text, filename)
    problems = list(doc.problems)
    if doc.data is None and not problems:
        problems.append(doc.source.problem((), "the stack file is empty", "empty-file", "Add a `config:` map."))
    if problems:
        return None, doc.source, problems
    try:
        stack_file = StackFile.model_validate(doc.data)
    except ValidationError as exc:
        return None, doc.source, _pydantic_problems(exc, doc.data, doc.source, (), {"config"})
    ours = {k: v for k, v in stack_file.config.items() if k.startswith(NAMESPACE)}
    for key in _SECRET_KEYS:
        if key in ours and not isinstance(ours[key], dict):
            problems.append(
                doc.source.problem(
                    ("config", key),
                    "a secret is stored in plain text",
                    "plaintext-secret",
                    f"Remove it and run: pulumi config set --secret {key} <value> --stack {stack}.",
                )
            )
            del ours[key]
    keys = ours.get(NAMESPACE + "apiKeys")
    if isinstance(keys, dict):
        for name in [n for n, v in keys.items() if not isinstance(v, dict)]:
            problems.append(
                doc.source.problem(
                    ("config", NAMESPACE + "apiKeys", name),
                    "a secret is stored in plain text",
                    "plaintext-secret",
                    f"Remove it and run: pulumi config set --secret --path '{NAMESPACE}apiKeys.{name}' <key>"
                    f" --stack {stack}.",
                )
            )
            del keys[name]
    try:
        settings = StackSettings.model_validate(ours)
    except ValidationError as exc:
        vocab = {NAMESPACE + w for w in _vocabulary(StackSettings)} | _vocabulary(StackSettings)
        return None, doc.source, problems + _pydantic_problems(exc, doc.data["config"], doc.source, ("config",), vocab)
    return settings, doc.source, problems


def load_catalog(text: str, filename: str) -> tuple[Catalog | None, SourceMap, list[Problem]]:
    doc = parse_yaml(text, filename)
    if doc.problems:
        return None, doc.source, doc.problems
    if doc.data is None:
        return None, doc.source, [doc.source.problem((), "the catalog is empty", "empty-file", "Add `providers:`.")]
    try:
        return Catalog.model_validate(doc.data), doc.source, []
    except ValidationError as exc:
        return None, doc.source, _pydantic_problems(exc, doc.data, doc.source, (), _vocabulary(Catalog))


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic GC while building large acyclic trees (YAML nodes, models, the config).

    Each collection rescans the growing heap: on a 10,000-model catalog it made the load grow
    x14.5 for 10x the models instead of x9.3 (bench/render.py). Restored however we leave.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_fleet(project_dir: str | Path, stack: str) -> Fleet:
    """Read stacks/Pulumi.<stack>.yaml and the catalog it names; raise ConfigError with every problem."""
    with paused_gc():
        return _load_fleet(Path(project_dir), stack)


def _load_fleet(project: Path, stack: str) -> Fleet:
    stack_shown = f"stacks/Pulumi.{stack}.yaml"
    text, missing = _read(project / stack_shown, stack_shown)
    if missing:
        known = stack_names(project)
        hint = f"Known stacks: {', '.join(known)}." if known else "Create it (see README: adding a stack)."
        raise ConfigError([Problem(stack_shown, 1, 1, (), f"no stack '{stack}'", "unknown-stack", hint=hint)])
    settings, stack_src, problems = load_stack_settings(text, stack_shown, stack)
    if settings is None:
        raise ConfigError(problems)
    catalog_shown = settings.catalog
    text, missing = _read(project / catalog_shown, catalog_shown)
    if missing:
        line, col = stack_src.locate(("config", NAMESPACE + "catalog"))
        raise ConfigError(
            [
                *problems,
                Problem(
                    stack_shown,
                    line,
                    col,
                    ("config", NAMESPACE + "catalog"),
                    f"catalog '{catalog_shown}' not found",
                    "missing-file",
                    hint="Give a path relative to the project directory.",
                ),
            ]
        )
    catalog, cat_src, cat_problems = load_catalog(text, catalog_shown)
    problems += cat_problems
    if catalog is None:
        raise ConfigError(problems)
    problems += check(stack, catalog, settings, cat_src, stack_src)
    if any(p.severity == "error" for p in problems):
        raise ConfigError(problems)
    return Fleet(stack, catalog, settings, catalog_shown, sorted(problems))
