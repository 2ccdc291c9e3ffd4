"""YAML parsing that remembers where every key came from, and that hostile input cannot exhaust.

The loader takes text and a filename (not a path) so tests can feed inline YAML and messages
still name the file the user edits. Next to the parsed value it keeps a map from key path to
(line, col), used to turn a pydantic `loc` into `file:line:col`.

`validate` runs on every pull request, so the input may be written to hurt. Bounds, each a
located error instead of a hang, a crash or a gigabyte:
- nesting: at most MAX_DEPTH levels, in the text and after aliases are expanded, so no
  recursion limit (PyYAML's composer, its constructor, ours) is reachable from input;
- aliases: an alias is indexed where it is used, and at most MAX_ALIAS_NODES nodes may be
  reached through aliases in one document (a "billion laughs" is refused before it expands);
- characters: control characters are refused at their own line before libyaml sees them.
"""

from __future__ import annotations

import copy
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import Composer, ComposerError

# libyaml's parser (C): the same events and marks as PyYAML's own, much faster. The pinned
# PyYAML wheels all ship it; the composer and constructor stay in Python, where we bound them.
from yaml.cyaml import CParser as _Parser
from yaml.events import AliasEvent

from ._errors import KeyPath, Problem

Position = tuple[int, int]

# No llmfleet file needs more than 6 levels; 32 leaves room and keeps every recursion shallow.
MAX_DEPTH = 32
# A real catalog reaches a few nodes per alias (`<<: *defaults`); 100,000 allows 10,000 providers
# sharing a 10-key default and stops an alias bomb after well under a second.
MAX_ALIAS_NODES = 100_000

# YAML's printable set (YAML 1.1, 5.1) less TAB, LF, CR: anything else is refused by the reader.
_NOT_PRINTABLE = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_DEPTH_HINT = "Flatten the structure: no llmfleet file needs this depth."
_STR_TAG = "tag:yaml.org,2002:str"
_UNREADABLE = object()  # a scalar YAML resolves to a type that cannot hold it
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Refused(ComposerError):
    """Well-formed YAML that llmfleet will not build: its own rule and hint."""

    def __init__(self, message: str, mark: yaml.Mark, rule: str, hint: str) -> None:
        super().__init__(None, None, message, mark)
        self.rule, self.hint = rule, hint


class _Composer(Composer):
    """PyYAML's composer, with a depth bound and aliases kept apart from their anchors.

    PyYAML hands back the anchored node itself for an alias, so every position inside it would
    point at the anchor, and a duplicate made through an alias could not be told apart. Here an
    alias is a shallow copy (same children) carrying the alias's own mark.
    """

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.open_anchors: set[str] = set()

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(AliasEvent):
            event = self.get_event()
            if event.anchor not in self.anchors:
                raise ComposerError(None, None, f"found undefined alias {event.anchor!r}", event.start_mark)
            if event.anchor in self.open_anchors:
                raise _Refused(f"the alias *{event.anchor} is used inside its own anchor: the value would never end",
                               event.start_mark, "yaml-alias", "Move the alias out of the anchored value.")  # fmt: skip
            anchored = self.anchors[event.anchor]
            alias = copy.copy(anchored)
            if isinstance(alias, yaml.CollectionNode):
                alias.value = list(alias.value)  # PyYAML's merge handling edits this list in place
            alias.start_mark, alias.end_mark = event.start_mark, event.end_mark
            alias.is_alias = True  # type: ignore[attr-defined]
            return alias
        if self.depth >= MAX_DEPTH:
            raise _Refused(f"nested more than {MAX_DEPTH} levels deep", self.peek_event().start_mark, "yaml-depth",
                           _DEPTH_HINT)  # fmt: skip
        anchor = getattr(self.peek_event(), "anchor", None)
        self.depth += 1
        if anchor:
            self.open_anchors.add(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1
            self.open_anchors.discard(anchor)


class _Constructor(yaml.constructor.SafeConstructor):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        # Keys as written: a key YAML would read as a number or a boolean is reported already
        # (yaml-not-a-name), and its text avoids a second, vaguer error from the schema.
        self.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):  # other keys are reported (yaml-key)
                out[key_node.value] = self.construct_object(value_node, deep=deep)
        return out


class _Loader(_Parser, _Composer, _Constructor, yaml.resolver.Resolver):
    """For text with anchors: our composer, which bounds depth and keeps aliases apart."""

    def __init__(self, stream: str) -> None:
        _Parser.__init__(self, stream)
        _Composer.__init__(self)
        _Constructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)

    # The C parser's own composer would bypass ours.
    get_single_node = Composer.get_single_node
    compose_document = Composer.compose_document


class _PlainLoader(_Parser, _Constructor, yaml.resolver.Resolver):
    """For text without an anchor (most files): libyaml composes, about 20% faster on a large
    catalog. Without anchors there are no aliases to bound; depth is bounded by the index walk
    (iterative) before anything recursive runs on the nodes, and by libyaml's own limit (1,000)."""

    def __init__(self, stream: str) -> None:
        _Parser.__init__(self, stream)
        _Constructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)


@dataclass
class SourceMap:
    """Where each key path of one YAML document sits (1-based line and column)."""

    file: str
    positions: dict[KeyPath, Position] = field(default_factory=dict)
    # Plain scalars YAML resolved to something other than a string (`on`, `017`, `12:30`):
    # path -> (the text as written, what YAML made of it), to explain a "not a string" error.
    not_strings: dict[KeyPath, tuple[str, Any]] = field(default_factory=dict)
    # Scalars written in quotes: text whatever they look like (`port: "8080"`).
    quoted: set[KeyPath] = field(default_factory=set)

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
    # True when the data could not be built (syntax, bounds): nothing further can be checked.
    fatal: bool = False


def _mark(node: yaml.Node) -> Position:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def what_yaml_read(value: Any) -> str:
    """How to tell a user what YAML made of a plain scalar."""
    if value is None:
        return "null (no value)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    return f"a {type(value).__name__} ({value})"


class _Indexer:
    """Walks the node graph once, iteratively, recording positions; enforces the alias bounds."""

    def __init__(self, loader: _Loader | _PlainLoader, source: SourceMap) -> None:
        self.loader, self.source = loader, source
        self.problems: list[Problem] = []
        self.through_aliases = 0

    def fail(self, at: Position, message: str, rule: str, hint: str, path: KeyPath = ()) -> None:
        self.problems.append(Problem(self.source.file, *at, path, message, rule, hint=hint))

    def run(self, root: yaml.Node) -> bool:
        """Index the document; False when a bound was hit (the data must not be built)."""
        self.source.positions[()] = _mark(root)
        # (node, path, depth, position override inside an alias). No cycle can reach here: the
        # composer refuses an alias inside its own anchor, so the depth bound ends every walk.
        todo: list[tuple[yaml.Node, KeyPath, int, Position | None]] = [(root, (), 0, None)]
        while todo:
            node, path, depth, at = todo.pop()
            if getattr(node, "is_alias", False):
                at = at or _mark(node)
            if at is not None:
                self.through_aliases += 1
                if self.through_aliases > MAX_ALIAS_NODES:
                    self.fail(at, f"aliases here expand to more than {MAX_ALIAS_NODES:,} values",
                              "yaml-alias", "Write the values out, or use fewer nested aliases.", path)  # fmt: skip
                    return False
            if depth > MAX_DEPTH:
                self.fail(at or _mark(node), f"nested more than {MAX_DEPTH} levels deep (counting aliases)",
                          "yaml-depth", _DEPTH_HINT, path)  # fmt: skip
                return False
            if isinstance(node, yaml.MappingNode):
                children = self.mapping(node, path, at)
                if children is None:
                    return False
                for child_path, child, where, inside in reversed(children):
                    self.source.positions[child_path] = where
                    todo.append((child, child_path, depth + 1, inside))
            elif isinstance(node, yaml.SequenceNode):
                for i in reversed(range(len(node.value))):
                    item = node.value[i]
                    self.source.positions[(*path, i)] = at or _mark(item)
                    todo.append((item, (*path, i), depth + 1, at))
            elif isinstance(node, yaml.ScalarNode) and node.tag != _STR_TAG and not node.style:
                value = self._construct(node)
                if value is _UNREADABLE:
                    self.fail(at or _mark(node), f"a number of {len(node.value):,} characters is more than can be "
                              "read", "yaml-number", "Shorten it, or quote it if it is a name.", path)  # fmt: skip
                    return False
                self.source.not_strings[path] = (node.value, value)
            elif isinstance(node, yaml.ScalarNode) and node.style in ("'", '"'):
                self.source.quoted.add(path)
        return True

    def _construct(self, node: yaml.ScalarNode) -> Any:
        try:
            return self.loader.construct_object(node)
        except yaml.YAMLError:
            return node.value
        except ValueError:  # Python reads at most 4,300 digits into an int (CVE-2020-10735)
            return _UNREADABLE

    def mapping(
        self, node: yaml.MappingNode, path: KeyPath, at: Position | None, merged: int = 0
    ) -> list[tuple[KeyPath, yaml.Node, Position, Position | None]] | None:
        """The children of a mapping, with merge keys applied as YAML defines them: explicit
        keys win over merged ones, and an earlier merged map over a later one. None: a bound hit."""
        # (path, value, where the key is, where everything below it is when it came from an alias)
        out: list[tuple[KeyPath, yaml.Node, Position, Position | None]] = []
        seen: dict[str | int, Position] = {}
        merges: list[tuple[yaml.Node, Position]] = []
        for key_node, value_node in node.value:
            where = at or _mark(key_node)
            if key_node.tag == _MERGE_TAG:
                merges.append((value_node, where))
                continue
            key = self.key_of(key_node, path, where)
            if key is None:
                continue
            child = (*path, key)
            if key in seen:
                # PyYAML keeps the last duplicate silently: that is lost data, so it is an error.
                self.fail(where, f"duplicate key (first defined on line {seen[key][0]})", "duplicate-key",
                          "Keep one of them.", child)  # fmt: skip
                continue
            seen[key] = where
            out.append((child, value_node, where, at))
        if merges and merged >= MAX_DEPTH:
            self.fail(merges[0][1], f"merge keys (<<) chained more than {MAX_DEPTH} deep", "yaml-depth",
                      "Merge fewer levels of defaults.", path)  # fmt: skip
            return None
        for value_node, where in merges:
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    self.fail(where, "a merge key (<<) takes a map or a list of maps", "yaml-merge",
                              "Merge an anchored map: `<<: *defaults`.", path)  # fmt: skip
                    continue
                inner = at or where
                children = self.mapping(source, path, inner, merged + 1)
                if children is None:
                    return None
                self.through_aliases += len(children)
                if self.through_aliases > MAX_ALIAS_NODES:
                    self.fail(where, f"merge keys here expand to more than {MAX_ALIAS_NODES:,} values",
                              "yaml-alias", "Write the values out, or use fewer nested merges.", path)  # fmt: skip
                    return None
                for child, value, _, _ in children:
                    if child[-1] not in seen:
                        seen[child[-1]] = inner
                        out.append((child, value, inner, inner))
        return out

    def key_of(self, key_node: yaml.Node, path: KeyPath, where: Position) -> str | None:
        if not isinstance(key_node, yaml.ScalarNode):
            self.fail(where, "a key must be a plain value", "yaml-key", "Use a name as the key.", path)
            return None
        if key_node.tag == _STR_TAG or key_node.style:  # libyaml: "" for plain
            return key_node.value
        # Every key in llmfleet's files is a name; YAML 1.1 reads some bare words otherwise.
        read = what_yaml_read(self._construct(key_node))
        self.fail(where, f"YAML reads the key `{key_node.value}` as {read}, not as a name", "yaml-not-a-name",
                  f"Quote it: '{key_node.value}'.", (*path, key_node.value))  # fmt: skip
        return key_node.value


def _control_characters(text: str, filename: str) -> list[Problem]:
    problems = []
    for match in _NOT_PRINTABLE.finditer(text):
        offset = match.start()
        line = text.count("\n", 0, offset) + 1
        col = offset - (text.rfind("\n", 0, offset) + 1) + 1
        char = match.group()
        name = unicodedata.name(char, "") or ("NUL" if char == "\0" else "a control character")
        message = f"the character U+{ord(char):04X} ({name}) is not allowed in YAML"
        problems.append(Problem(filename, line, col, (), message, "yaml-character",
                                hint="Remove it: save the file as plain UTF-8 text."))  # fmt: skip
        if len(problems) == 10:
            break
    return problems


def _indenting_tab(text: str, line: int) -> int | None:
    """The column of a tab in the indentation of `line` (1-based), where libyaml stopped: it
    says "cannot start any token", which does not name the tab a user cannot see."""
    lines = text.splitlines()
    if not 1 <= line <= len(lines):
        return None
    row = lines[line - 1]
    indent = row[: len(row) - len(row.lstrip(" \t"))]
    return indent.index("\t") + 1 if "\t" in indent else None


def parse_yaml(text: str, filename: str) -> Document:
    """Parse one YAML document; every failure comes back as a located problem, never an exception."""
    source = SourceMap(filename)
    bad_chars = _control_characters(text, filename)
    if bad_chars:
        return Document(None, source, bad_chars, fatal=True)
    loader = _Loader(text) if "&" in text else _PlainLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Document(None, source, [])
        indexer = _Indexer(loader, source)
        if not indexer.run(node):
            return Document(None, source, indexer.problems, fatal=True)
        data = loader.construct_document(node)
        return Document(data, source, indexer.problems)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = exc.problem or exc.context or "invalid YAML"
        if "maximum nesting depth" in what:  # libyaml's own bound (1,000), met while reading ahead
            exc = _Refused(f"nested more than {MAX_DEPTH} levels deep", mark, "yaml-depth",
                           _DEPTH_HINT)  # fmt: skip
            what = exc.problem
        tab = _indenting_tab(text, line)
        if isinstance(exc, _Refused):
            problem = Problem(filename, line, col, (), what, exc.rule, hint=exc.hint)
        elif tab:
            problem = Problem(filename, line, tab, (), "a tab character in the indentation: YAML indents with spaces",
                              "yaml-tab", hint="Replace the tab with spaces.")  # fmt: skip
        else:
            hint = "Fix the YAML syntax."
            problem = Problem(filename, line, col, (), f"YAML syntax: {what}", "yaml-syntax", hint=hint)
        return Document(None, source, [problem], fatal=True)
    except yaml.YAMLError as exc:
        message = " ".join(str(exc).split())
        return Document(None, source, [Problem(filename, 1, 1, (), f"YAML: {message}", "yaml-syntax")], fatal=True)
    finally:
        loader.dispose()
