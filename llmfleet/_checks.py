"""Checks across the whole catalog and stack, run after both parse cleanly.

Each check appends every problem it finds (never stops at the first) with the key path of the
offending value, so one run of `validate` shows the user everything to fix.
Rules that are warnings (reported, exit 0): missing-secret, gguf-without-dir, gpu-with-cpu-image,
gpu-budget-not-applied, fallback-repeat, context-window-not-larger.

The checks live in one module per area (`_checks_<area>.py`); each is a plain function of a
`CheckContext`. To add one, write it in its area's module and list it in `CHECKS` below: problems
at the same line keep the order of this list.
"""

from __future__ import annotations

from collections.abc import Callable

from ._catalog import Catalog
from ._checks_context import CheckContext, closest, closest_name, gateway_names
from ._checks_gateway import gateway_settings
from ._checks_gpus import budgets_applied, gpu_budget
from ._checks_images import gpu_images, images
from ._checks_kubernetes import target
from ._checks_names import groups, served_names
from ._checks_placement import placement, ports, reserved_names
from ._checks_routes import aliases, context_window_fallbacks, fallbacks
from ._checks_secrets import secrets
from ._checks_server_args import server_args
from ._checks_sources import gguf_files, gguf_paths, ollama_cloud_names, ollama_sources
from ._checks_stacks import shared_engine
from ._errors import Problem
from ._stack import StackSettings
from ._yaml import SourceMap

__all__ = ["CHECKS", "CheckContext", "check", "closest", "closest_name", "gateway_names"]

CHECKS: tuple[Callable[[CheckContext], None], ...] = (
    served_names,
    groups,
    aliases,
    fallbacks,
    context_window_fallbacks,
    target,
    placement,
    reserved_names,
    ports,
    shared_engine,
    gpu_budget,
    budgets_applied,
    images,
    gpu_images,
    secrets,
    ollama_cloud_names,
    ollama_sources,
    gguf_paths,
    gguf_files,
    server_args,
    gateway_settings,
)


def check(name: str, catalog: Catalog, stack: StackSettings, cat: SourceMap, stk: SourceMap) -> list[Problem]:
    """Every cross-reference problem of a stack `name` and its catalog."""
    ctx = CheckContext(name, catalog, stack, cat, stk)
    for run in CHECKS:
        run(ctx)
    return ctx.problems
