"""`python -m llmfleet`: validate, render and list the models of a stack.

Exit codes: 0 success; 1 the configuration has errors (or, for drift, could not check);
2 drift; 3 an unexpected crash (traceback written to a log file); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from ._declared import declared_models
from ._errors import ConfigError, Problem
from ._load import Fleet, load_fleet, stack_names


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m llmfleet", description=__doc__.splitlines()[0])
    parser.add_argument("--project-dir", default=".", type=Path, help="the llmfleet project (default: .)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check stacks and their catalogs; report every problem")
    p.add_argument("--stack", action="append", help="stack to check (repeatable; default: every stack)")
    p.add_argument("--format", choices=["text", "github"], default="text", help="problem format")

    p = sub.add_parser("render", help="print the LiteLLM proxy config of a stack")
    p.add_argument("--stack", required=True)

    p = sub.add_parser("models", help="print the declared set: the names /v1/models must list")
    p.add_argument("--stack", required=True)
    p.add_argument("--json", action="store_true", help="a JSON list instead of one name a line")
    return parser


def _report(problems: list[Problem], fmt: str, out: TextIO) -> None:
    for problem in problems:
        print(problem.format_github() if fmt == "github" else problem.format(), file=out)


def _load(project: Path, stack: str, fmt: str = "text") -> Fleet | None:
    try:
        fleet = load_fleet(project, stack)
    except ConfigError as exc:
        _report(exc.problems, fmt, sys.stderr)
        errors = sum(p.severity == "error" for p in exc.problems)
        print(f"stack '{stack}': {errors} error(s); nothing was changed.", file=sys.stderr)
        return None
    _report(fleet.warnings, fmt, sys.stderr)
    return fleet


def _validate(args: argparse.Namespace) -> int:
    stacks = args.stack or stack_names(args.project_dir)
    if not stacks:
        print(f"{args.project_dir / 'stacks'}: no Pulumi.<stack>.yaml files found", file=sys.stderr)
        return 1
    failed = False
    for stack in stacks:
        fleet = _load(args.project_dir, stack, args.format)
        if fleet is None:
            failed = True
            continue
        names = len(declared_models(fleet.catalog))
        aliases = sum(not a.hidden for a in fleet.catalog.routes.alias_entries().values())
        warned = f", {len(fleet.warnings)} warning(s)" if fleet.warnings else ""
        print(
            f"stack '{stack}': ok ({len(fleet.catalog.providers)} providers, {names - aliases} models, "
            f"{aliases} visible aliases: {names} names in /v1/models{warned})"
        )
    return 1 if failed else 0


def _render(args: argparse.Namespace) -> int:
    from ._gateway_config import render_gateway_config

    fleet = _load(args.project_dir, args.stack)
    if fleet is None:
        return 1
    sys.stdout.write(render_gateway_config(fleet))
    return 0


def _models(args: argparse.Namespace) -> int:
    fleet = _load(args.project_dir, args.stack)
    if fleet is None:
        return 1
    names = declared_models(fleet.catalog)
    print(json.dumps(names) if args.json else "\n".join(names))
    return 0


COMMANDS = {"validate": _validate, "render": _render, "models": _models}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception:  # noqa: BLE001 - last resort: keep the traceback, show a short message
        fd, log = tempfile.mkstemp(prefix="llmfleet-crash-", suffix=".log")
        with os.fdopen(fd, "w") as fh:
            traceback.print_exc(file=fh)
        print(
            f"llmfleet crashed unexpectedly ({sys.exc_info()[1].__class__.__name__}); "
            f"the traceback is in {log}. Please report it.",
            file=sys.stderr,
        )
        return 3
