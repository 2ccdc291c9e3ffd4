"""Load a stack file and its catalog into one validated Fleet, or every problem found."""

from __future__ import annotations

import contextlib
import gc
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import get_origin

from pydantic import BaseModel, ValidationError

from ._catalog import Catalog
from ._checks import check
from ._checks_context import closest_name
from ._errors import ConfigError, Problem
from ._project import is_directory, stack_names
from ._schema_errors import SchemaErrors, annotation_leaves, places
from ._stack import BuildSpec, Secure, StackFile, StackSettings, remove_command, set_secret_command
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


# The largest catalog we benchmark (10,000 models) is about 1 MB; anything far larger is a mistake.
MAX_FILE_BYTES = 16 * 1024 * 1024
# Pulumi's stack names: letters, digits, '-', '_', '.'; never a path.
_STACK_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")


def _read(path: Path, shown: str) -> tuple[str | None, Problem | None]:
    """The file's text, or one located problem saying why it cannot be used."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None, Problem(shown, 1, 1, (), f"the file is larger than {MAX_FILE_BYTES // 2**20} MB",
                                 "file-too-large", hint="Check that this is the file you meant.")  # fmt: skip
        data = path.read_bytes()
    except FileNotFoundError:
        return None, Problem(shown, 1, 1, (), "file not found", "missing-file", hint="Check the path.")
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        reason = getattr(exc, "strerror", None) or exc
        return None, Problem(shown, 1, 1, (), f"cannot read the file: {reason}", "unreadable-file",
                             hint="Check that it is a readable file.")  # fmt: skip
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, Problem(shown, line, col, (), f"the file is not UTF-8 text: byte 0x{data[exc.start]:02X} here "
                             "is not valid UTF-8", "not-utf8", hint="Save the file as UTF-8.")  # fmt: skip


def inside_project(project: Path, relative: str) -> tuple[Path | None, str]:
    """`relative` resolved inside the project directory (symlinks followed), or None and why not:
    it leaves the project, or the OS cannot look it up at all."""
    if "\0" in relative:
        return None, "contains a NUL character"
    try:
        root = project.resolve()
        target = (root / relative).resolve()
    except RuntimeError:  # what Python 3.11's resolve() raises on a symlink loop
        return None, "is a symlink loop"
    except OSError as exc:
        return None, f"cannot be looked up: {exc.strerror or exc}"
    return (target, "") if target.is_relative_to(root) else (None, "is outside the project directory")


def load_stack_settings(
    text: str, filename: str, stack: str = "<stack>"
) -> tuple[StackSettings | None, SourceMap, list[Problem]]:
    doc = parse_yaml(text, filename)
    problems = list(doc.problems)
    if doc.data is None and not problems:
        problems.append(doc.source.problem((), "the stack file is empty", "empty-file", "Add a `config:` map."))
    if doc.fatal or doc.data is None:
        return None, doc.source, problems
    try:
        stack_file = StackFile.model_validate(doc.data)
    except ValidationError as exc:
        return None, doc.source, SchemaErrors(StackFile, doc.data, doc.source).problems(exc)
    ours = {k: v for k, v in stack_file.config.items() if k.startswith(NAMESPACE)}
    for key in [k for k in ours if "." in k and k.split(".", 1)[0] in _MAP_KEYS]:
        problems.append(_set_without_path(doc.source, key, ours.pop(key), stack))
    sealed = [k for k, v in ours.items() if k not in _SECRET_KEYS and k in _SETTINGS_KEYS and _one_secure_value(v)]
    for key in sealed:
        del ours[key]
        if key != NAMESPACE + "apiKeys":  # its per-key commands need the catalog: the secrets check
            problems.append(_not_a_secret(doc.source, key, stack))
    for key in _SECRET_KEYS:
        if key in ours and not isinstance(ours[key], dict):
            problems.append(
                doc.source.problem(
                    ("config", key),
                    "a secret is stored in plain text",
                    "plaintext-secret",
                    f"Remove it and run: {set_secret_command(key, stack)}",
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
                    f"Remove it and run: {set_secret_command(f'{NAMESPACE}apiKeys.{name}', stack)}",
                )
            )
            del keys[name]
    try:
        settings = StackSettings.model_validate(ours)
    except ValidationError as exc:
        catalog_keys = (places(Catalog, "the top level"), "the catalog file")
        explain = SchemaErrors(StackSettings, doc.data["config"], doc.source, ("config",), [catalog_keys])
        return None, doc.source, _without_repeats(problems, explain.problems(exc))
    settings._sealed = frozenset(sealed)
    return settings, doc.source, problems


_SETTINGS_KEYS = {info.alias for info in StackSettings.model_fields.values()}
# Keys whose value is a map (hosts, providers, gateway, images, apiKeys): set inside with --path.
_MAP_KEYS = {info.alias for info in StackSettings.model_fields.values()
             if any(get_origin(t) is dict or (isinstance(t, type) and issubclass(t, BaseModel) and t is not Secure)
                    for t in annotation_leaves(info.annotation))}  # fmt: skip


def _one_secure_value(value: object) -> bool:
    """What Pulumi writes for `pulumi config set --secret KEY <value>`: `{secure: <ciphertext>}`."""
    return isinstance(value, dict) and list(value) == ["secure"] and isinstance(value["secure"], str)


def _not_a_secret(src: SourceMap, key: str, stack: str) -> Problem:
    shape = "text (a path)" if key == NAMESPACE + "catalog" else "a map of `key: value` lines"
    return src.problem(
        ("config", key),
        f"set as one encrypted value (`secure:`), but it is not a secret: llmfleet reads it as {shape}",
        "not-a-secret",
        f"Print what it holds, remove it, and write that in the stack file. Run: pulumi config get '{key}' --stack "
        f"{stack} && {remove_command(key, stack)}",
    )


def _set_without_path(src: SourceMap, key: str, value: object, stack: str) -> Problem:
    """`pulumi config set llmfleet:apiKeys.NAME` without --path: one key with a '.' in its name."""
    base, inner = key.split(".", 1)
    if _one_secure_value(value) or base == NAMESPACE + "apiKeys":
        set_it = set_secret_command(key, stack)  # read from the terminal, with --path
    else:
        shown = value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else value
        set_it = f"pulumi config set --path '{key}' {shlex.quote(str(shown))} --stack {stack}"
    return src.problem(
        ("config", key),
        f"one key named '{key}', not `{inner}` inside {base}: it was set without --path",
        "set-without-path",
        f"Remove it and set it by its path. Run: {remove_command(key, stack)} && {set_it}",
    )


def _without_repeats(found: list[Problem], more: list[Problem]) -> list[Problem]:
    """`found` and those of `more` not about a key already reported (a key YAML misread)."""
    paths = {p.path for p in found}
    return found + [p for p in more if p.path not in paths]


def load_catalog(text: str, filename: str) -> tuple[Catalog | None, SourceMap, list[Problem]]:
    doc = parse_yaml(text, filename)
    if doc.fatal:
        return None, doc.source, doc.problems
    if doc.data is None:
        return None, doc.source, [doc.source.problem((), "the catalog is empty", "empty-file", "Add `providers:`.")]
    if isinstance(doc.data, dict):
        # `x-` keys hold values for anchors (`x-defaults: &gpu {...}`), as in Compose files.
        doc.data = {k: v for k, v in doc.data.items() if not (isinstance(k, str) and k.startswith("x-"))}
    try:
        catalog = Catalog.model_validate(doc.data)
    except ValidationError as exc:
        stack_keys = (places(StackSettings, "config"), "the stack file")
        explain = SchemaErrors(Catalog, doc.data, doc.source, (), [stack_keys])
        return None, doc.source, _without_repeats(doc.problems, explain.problems(exc))
    # With YAML-level errors (a duplicate key, a misread key) the data is not what was meant.
    return (catalog if not doc.problems else None), doc.source, doc.problems


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
    text, unreadable = _read(project / stack_shown, stack_shown) if _STACK_NAME.match(stack) else (None, None)
    if text is None and (unreadable is None or unreadable.rule == "missing-file"):
        known = stack_names(project)
        if known:
            hint = f"Known stacks: {', '.join(known)}."
        elif is_directory(project / "stacks"):
            hint = (f"Create {stack_shown}, with at least `llmfleet:catalog: <catalog file>` under `config:` "
                    '(see the README, "The stack").')  # fmt: skip
        else:
            where = "the current directory" if project == Path(".") else str(project)
            hint = (f"There is no stacks/ directory in {where}: run llmfleet from the project directory, or pass "
                    "--project-dir <dir>.")  # fmt: skip
        raise ConfigError([Problem(stack_shown, 1, 1, (), f"no stack '{stack}'", "unknown-stack", hint=hint)])
    if text is None:
        raise ConfigError([unreadable])  # type: ignore[list-item]
    settings, stack_src, problems = load_stack_settings(text, stack_shown, stack)
    if settings is None:
        raise ConfigError(problems)
    problems += _paths_outside(project, settings, stack_src)
    catalog_shown = settings.catalog
    catalog_path, _ = inside_project(project, catalog_shown)
    if catalog_path is None:
        raise ConfigError(problems)  # nothing outside the project is read
    text, unreadable = _read(catalog_path, catalog_shown) if not is_directory(catalog_path) else (None, None)
    if text is None and (unreadable is None or unreadable.rule == "missing-file"):
        unreadable = _no_catalog_file(project, catalog_shown, catalog_path, stack_src)
    if text is None:
        raise ConfigError([*problems, unreadable])  # type: ignore[list-item]
    catalog, cat_src, cat_problems = load_catalog(text, catalog_shown)
    problems += cat_problems
    if catalog is None:
        raise ConfigError(problems)
    problems += check(stack, catalog, settings, cat_src, stack_src)
    if any(p.severity == "error" for p in problems):
        raise ConfigError(problems)
    return Fleet(stack, catalog, settings, catalog_shown, sorted(problems))


def _no_catalog_file(project: Path, shown: str, path: Path, stack_src: SourceMap) -> Problem:
    """A catalog path that names no file, reported at the stack's `llmfleet:catalog` line (the
    line to fix), with the YAML file the user most likely meant."""
    where = ("config", NAMESPACE + "catalog")
    root = project.resolve()
    if is_directory(path):
        inside = sorted(str(f.relative_to(root)) for f in _yaml_files(path))
        hint = (f"Give a catalog file inside it: {' or '.join(inside[:3])}." if inside else
                "Give the path of a catalog file (.yaml), relative to the project directory.")  # fmt: skip
        return stack_src.problem(where, f"catalog '{shown}' is a directory, not a file", "catalog-not-a-file", hint)
    hint = "Give a path relative to the project directory."
    if is_directory(path.parent):
        siblings = {f.name: f for f in _yaml_files(path.parent)}
        same_stem = [n for n in siblings if Path(n).stem == path.stem]
        meant = same_stem[0] if same_stem else closest_name(path.name, siblings)
        if meant:
            hint = f"Did you mean {siblings[meant].relative_to(root)}?"
    return stack_src.problem(where, f"catalog '{shown}' not found", "missing-file", hint)


def _yaml_files(directory: Path) -> list[Path]:
    try:
        return sorted(f for f in directory.iterdir() if f.suffix in (".yaml", ".yml") and f.is_file())
    except OSError:
        return []


def _paths_outside(project: Path, settings: StackSettings, src: SourceMap) -> list[Problem]:
    """Project paths a stack names (the catalog, a build context) must stay inside the project:
    `validate` runs on pull requests, and must not read, or send to Docker, anything else."""
    named = [(("config", NAMESPACE + "catalog"), settings.catalog)]
    build = settings.images.llama_cpp_python
    if isinstance(build, BuildSpec):
        named.append((("config", NAMESPACE + "images", "llama_cpp_python", "build"), build.build))
    problems = []
    for path, value in named:
        resolved, why = inside_project(project, value)
        if resolved is None:
            outside = why == "is outside the project directory"
            shown = repr(value if len(value) <= 80 else value[:77] + "...")  # repr: a NUL is seen
            rule = "path-outside-project" if outside else "unusable-path"
            hint = "Give a path inside the project, relative to it (e.g. config/catalog.yaml)."
            problems.append(src.problem(path, f"{shown} {why}", rule, hint))
    return problems
