"""What every catalog check reads and writes: the stack, its catalog, their source maps and the
list of problems found so far; and the "did you mean" hints the checks and the schema share."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field

from ._catalog import Alias, Catalog
from ._errors import KeyPath, Problem
from ._stack import StackSettings
from ._yaml import SourceMap


def closest_name(name: str, candidates: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The declared name `name` was most likely meant to be, if any is close enough (difflib's ratio)."""
    match = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=cutoff)
    return match[0] if match else None


def closest(name: str, candidates: Iterable[str]) -> str:
    """A hint naming the closest declared name, or listing what is declared."""
    candidates = sorted(set(candidates))
    match = closest_name(name, candidates)
    if match:
        return f"Did you mean '{match}'?"
    shown = ", ".join(candidates[:8]) + (", ..." if len(candidates) > 8 else "")
    return f"Declared: {shown}." if candidates else ""


def gateway_names(catalog: Catalog) -> set[str]:
    """Model groups the gateway serves: every served name plus every load-balanced group."""
    names = {n for p in catalog.providers.values() for n in p.served_names}
    return names | set(catalog.routes.groups)


@dataclass
class CheckContext:
    """One stack `name` and its catalog, with the source maps (`cat`, `stk`) that locate their keys."""

    name: str
    catalog: Catalog
    stack: StackSettings
    cat: SourceMap
    stk: SourceMap
    problems: list[Problem] = field(default_factory=list)
    models: set[str] = field(init=False)
    aliases: dict[str, Alias] = field(init=False)

    def __post_init__(self) -> None:
        self.models = gateway_names(self.catalog)
        self.aliases = self.catalog.routes.alias_entries()

    def error(self, src: SourceMap, path: KeyPath, message: str, rule: str, hint: str = "") -> None:
        self.problems.append(src.problem(path, message, rule, hint))

    def warn(self, src: SourceMap, path: KeyPath, message: str, rule: str, hint: str = "") -> None:
        self.problems.append(src.problem(path, message, rule, hint, severity="warning"))
