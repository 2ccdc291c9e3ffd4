"""YAML parsing that remembers where every key came from.

The loader takes text and a filename (not a path) so tests can feed inline YAML and messages
still name the file the user edits. Next to the parsed value it keeps a map from key path to
(line, col), used to turn a pydantic `loc` into `file:line:col`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from ._errors import KeyPath, Problem

Position = tuple[int, int]
# libyaml's parser when the wheel has it; it builds the same nodes, with the same marks.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class SourceMap:
    """Where each key path of one YAML document sits (1-based line and column)."""

    file: str
    positions: dict[KeyPath, Position] = field(default_factory=dict)

    def locate(self, path: KeyPath) -> Position:
        """The position of `path`, or of its nearest parent that exists (a missing key)."""
        for end in range(len(path), -1, -1):
            found = self.positions.get(tuple(path[:end]))
            if found:
                return found
        return (1, 1)

    def problem(self, path: KeyPath, message: str, rule: str, hint: str = "", severity: str = "error") -> Problem:
        line, col = self.locate(path)
        return Problem(self.file, line, col, tuple(path), message, rule, severity, hint)  # type: ignore[arg-type]


@dataclass
class Document:
    data: Any
    source: SourceMap
    problems: list[Problem]


def _mark(node: yaml.Node) -> Position:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _index(loader: Any, node: yaml.Node, path: KeyPath, source: SourceMap, problems: list[Problem]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, Position] = {}
        for key_node, value_node in node.value:
            # Plain string keys are the norm; construct only the others (ints, bools, merges).
            if key_node.tag == "tag:yaml.org,2002:str":
                key = key_node.value
            else:
                key = loader.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                problems.append(Problem(source.file, *_mark(key_node), path, "a key must be a plain value", "yaml-key"))
                continue
            child = (*path, key if isinstance(key, int) else str(key))
            if key in seen:
                # PyYAML keeps the last duplicate silently: that is lost data, so it is an error.
                line, _ = seen[key]
                problems.append(
                    Problem(
                        source.file,
                        *_mark(key_node),
                        child,
                        f"duplicate key (first defined on line {line})",
                        "duplicate-key",
                        hint="Keep one of them.",
                    )
                )
                continue
            seen[key] = _mark(key_node)
            source.positions[child] = _mark(key_node)
            _index(loader, value_node, child, source, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            source.positions[(*path, i)] = _mark(item)
            _index(loader, item, (*path, i), source, problems)


def parse_yaml(text: str, filename: str) -> Document:
    """Parse one YAML document; syntax errors come back as problems, never as exceptions."""
    source = SourceMap(filename)
    problems: list[Problem] = []
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Document(None, source, problems)
        source.positions[()] = _mark(node)
        _index(loader, node, (), source, problems)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = exc.problem or exc.context or "invalid YAML"
        problems.append(
            Problem(filename, line, col, (), f"YAML syntax: {what}", "yaml-syntax", hint="Fix the YAML syntax.")
        )
        return Document(None, source, problems)
    except yaml.YAMLError as exc:
        problems.append(Problem(filename, 1, 1, (), f"YAML syntax: {exc}", "yaml-syntax"))
        return Document(None, source, problems)
    finally:
        loader.dispose()
    return Document(data, source, problems)
