"""`python -m llmfleet`: validate, render, list and diff the models of a stack, check for drift, probe.

Exit codes: 0 success (in sync, every name answers); 1 configuration errors, or the check could not
check; 2 drift, or a name fails; 3 an unexpected crash (traceback written to a log file); 130 interrupted.
Heavy modules (pydantic, httpx) are imported inside each command so `--help` stays fast.
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
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from ._errors import Problem
    from ._load import Fleet
    from ._report import Report

DRIFT_FORMATS = ["text", "json", "markdown", "junit"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m llmfleet", description=(__doc__ or "").splitlines()[0])
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
    p.add_argument("--diff-against", type=Path, metavar="PATH",
                   help="another checkout (e.g. the PR base): print `+ name`/`- name` and changed routes")  # fmt: skip
    p.add_argument("--markdown", action="store_true", help="with --diff-against: a PR comment")

    p = sub.add_parser(
        "drift",
        help="compare the live gateway's /v1/models with the declared set",
        description="Exit 0 in sync, 2 drift, 1 could not check. The master key is read from the "
        "environment and never printed.",
    )
    _gateway_options(p)
    p.add_argument("--backends", action="store_true", help="also check each backend reachable from here")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="poll until in sync or this many seconds have passed (after a deploy)")  # fmt: skip
    p.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS", help="per request (default 5)")
    p.add_argument("--deadline", type=float, default=20.0, metavar="SECONDS",
                   help="for one whole check (default 20)")  # fmt: skip
    _report_options(p)

    p = sub.add_parser(
        "probe",
        help="send one tiny chat completion through the gateway for every declared name",
        description="Exit 0 every name answers, 2 a name fails or answers only through a fallback, 1 could not "
        "check. The master key is read from the environment and never printed.",
    )
    _gateway_options(p)
    p.add_argument("--include-external", action="store_true",
                   help="also probe names served only by external (paid) providers")  # fmt: skip
    p.add_argument("--backends", action="store_true", help="also ask each local deployment reachable from here")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="per request (default 30)")
    p.add_argument("--deadline", type=float, default=60.0, metavar="SECONDS",
                   help="for the whole probe (default 60)")  # fmt: skip
    _report_options(p)
    return parser


def _gateway_options(p: argparse.ArgumentParser) -> None:
    """The stack, and which gateway to reach with which key: the same for drift and probe."""
    p.add_argument("--stack", required=True)
    p.add_argument("--url", help="gateway base URL (default: the stack's gateway address)")
    p.add_argument("--key-env", default="LITELLM_MASTER_KEY", help="env var holding the master key")


def _report_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=DRIFT_FORMATS, default="text")
    p.add_argument("--output", type=Path, metavar="FILE", help="write the report here instead of stdout")


def _report(problems: list[Problem], fmt: str, out: TextIO) -> None:
    for problem in problems:
        print(problem.format_github() if fmt == "github" else problem.format(), file=out)


def _load(project: Path, stack: str, fmt: str = "text") -> Fleet | None:
    from ._errors import ConfigError
    from ._load import load_fleet

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
    from ._declared import declared_models
    from ._load import stack_names

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
        print(f"stack '{stack}': ok ({len(fleet.catalog.providers)} providers, {names - aliases} models, "
              f"{aliases} visible aliases: {names} names in /v1/models{warned})")  # fmt: skip
    return 1 if failed else 0


def _render(args: argparse.Namespace) -> int:
    from ._gateway_config import render_gateway_config

    fleet = _load(args.project_dir, args.stack)
    if fleet is None:
        return 1
    sys.stdout.write(render_gateway_config(fleet))
    return 0


def _models(args: argparse.Namespace) -> int:
    from ._declared import declared_models

    fleet = _load(args.project_dir, args.stack)
    if fleet is None:
        return 1
    if args.diff_against is None:
        names = declared_models(fleet.catalog)
        print(json.dumps(names) if args.json else "\n".join(names))
        return 0
    from ._load import stack_names
    from ._model_diff import diff_markdown, model_diff

    base = None
    if args.stack in stack_names(args.diff_against):  # a stack new in this change has no base
        base_fleet = _load(args.diff_against, args.stack)
        if base_fleet is None:
            print(f"the base checkout {args.diff_against} does not load; fix it first", file=sys.stderr)
            return 1
        base = base_fleet.catalog
    lines = model_diff(base, fleet.catalog)
    if args.json:
        print(json.dumps(lines))
    elif args.markdown:
        sys.stdout.write(diff_markdown(args.stack, lines))
    elif lines:
        print("\n".join(lines))
    return 0


def _drift(args: argparse.Namespace) -> int:
    import asyncio

    from ._drift import Limits, check

    fleet = _load(args.project_dir, args.stack)
    if fleet is None:
        return 1
    url = args.url or fleet.stack.gateway_url
    limits = Limits(timeout=args.timeout, deadline=args.deadline)
    report = asyncio.run(check(fleet, url, os.environ.get(args.key_env), backends=args.backends,
                               wait=args.wait, limits=limits,
                               key_source=f"the environment variable {args.key_env}"))  # fmt: skip
    return _emit(report, args)


def _probe(args: argparse.Namespace) -> int:
    import asyncio

    from ._http import Limits
    from ._probe import probe

    fleet = _load(args.project_dir, args.stack)
    if fleet is None:
        return 1
    url = args.url or fleet.stack.gateway_url
    limits = Limits(timeout=args.timeout, retries=1, deadline=args.deadline)
    report = asyncio.run(probe(fleet, url, os.environ.get(args.key_env), include_external=args.include_external,
                               backends=args.backends, limits=limits))  # fmt: skip
    return _emit(report, args)


def _emit(report: Report, args: argparse.Namespace) -> int:
    """Write a drift or probe report where asked, append it to a GitHub job summary, and exit with its code."""
    from ._drift_report import FORMATS, as_markdown

    text = FORMATS[args.format](report)
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(as_markdown(report))
    if args.output or args.format != "text":
        print(f"stack '{args.stack}': {report.summary}", file=sys.stderr)
    return report.exit_code


COMMANDS = {"validate": _validate, "render": _render, "models": _models, "drift": _drift, "probe": _probe}


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
        print(f"llmfleet crashed unexpectedly ({sys.exc_info()[1].__class__.__name__}); "
              f"the traceback is in {log}. Please report it.", file=sys.stderr)  # fmt: skip
        return 3
