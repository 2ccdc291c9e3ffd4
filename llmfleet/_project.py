"""The layout of an llmfleet project directory; no heavy imports, so the CLI's help can use it."""

from __future__ import annotations

from pathlib import Path


def is_directory(path: Path) -> bool:
    """`path.is_dir()`, False also for a path the OS refuses to look up (a name too long, a NUL)."""
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def stack_names(project_dir: Path) -> list[str]:
    """The stacks of a project: one stacks/Pulumi.<stack>.yaml each."""
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in (project_dir / "stacks").glob("Pulumi.*.yaml"))
