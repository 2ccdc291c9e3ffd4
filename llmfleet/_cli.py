"""`llmfleet` (or `python -m llmfleet`): validate, render, list and diff a stack's models, check drift, probe, logs.

Exit codes, the same for every command:
  0    success: valid; in sync; every name answers
  1    the configuration has errors, the check could not check, or an output could not be written
  2    drift, or a declared name fails (never a usage error: cron and CI alert on 2)
  3    an unexpected crash (the traceback is written to a log file)
  64   usage: an unknown option, a missing or invalid argument (EX_USAGE)
  130  interrupted
Heavy modules (pydantic, httpx) are imported inside each command so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TextIO

from . import __version__
from ._project import is_directory, stack_names
from ._urls import gateway_url_problem
from ._wording import count, duration

if TYPE_CHECKING:
    from ._errors import Problem
    from ._load import Fleet
    from ._report import CheckResult, Report

DRIFT_FORMATS = ["text", "json", "markdown", "junit"]
EXIT_USAGE = 64
# Import name -> what to install, for the message when a dependency is missing.
_DEPENDENCIES = {"pydantic": "pydantic", "pydantic_core": "pydantic", "yaml": "pyyaml", "httpx": "httpx"}


class _ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error exits 64: 2 means drift to every caller of `drift` and `probe`."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


class _Lenient(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ValueError(message)


def _seconds(minimum: float, inclusive: bool) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
        if not math.isfinite(value) or value < minimum or (value == minimum and not inclusive):
            bound = f"at least {minimum:g}" if inclusive else f"more than {minimum:g}"
            raise argparse.ArgumentTypeError(f"'{text}' is not a usable number of seconds: give {bound}")
        return value

    return parse


_positive_seconds = _seconds(0, inclusive=False)
_seconds_or_zero = _seconds(0, inclusive=True)


def _path(text: str) -> Path:
    """A path option: Path('') would be the current directory, silently; a NUL cannot be looked up."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path: give a file or directory")
    if "\0" in text:
        raise argparse.ArgumentTypeError(f"{text!r} contains a NUL character")
    return Path(text)


def _env_name(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an environment variable name (letters, digits and _)")
    return text


def _gateway_url(text: str) -> str:
    problem = gateway_url_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def _parser(project_dir: Path = Path(".")) -> argparse.ArgumentParser:
    known = stack_names(project_dir) if is_directory(project_dir / "stacks") else []
    stack_help = f"known stacks: {', '.join(known)}" if known else f"no stacks in {project_dir / 'stacks'} yet"
    parser = _ArgumentParser(prog="llmfleet", description=(__doc__ or "").splitlines()[0].replace("`", ""),
                             epilog="Exit codes: 0 ok, 1 errors or could not check, 2 drift or a name fails, "
                             "3 crash, 64 usage, 130 interrupted.")  # fmt: skip
    parser.add_argument("--version", action="version", version=f"llmfleet {__version__}")
    parser.add_argument("--project-dir", default=Path("."), type=_path, help="the llmfleet project (default: .)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "validate",
        help="check stacks and their catalogs; report every problem",
        description="Check each stack file and the catalog it names, without Pulumi or Docker, and report every "
        "problem at its file:line:col. Exit 0 valid (warnings allowed), 1 errors.",
    )
    p.add_argument("--stack", action="append", help=f"stack to check (repeatable; default: every stack); {stack_help}")
    p.add_argument("--format", choices=["text", "github"], default="text",
                   help="text: file:line:col: severity: message; github: workflow annotations "
                   "(default: %(default)s)")  # fmt: skip

    p = sub.add_parser(
        "render",
        help="print the LiteLLM proxy config of a stack",
        description="Print the LiteLLM proxy config (config.yaml) that deploying the stack gives its gateway. "
        "Nothing is deployed.",
    )
    p.add_argument("--stack", required=True, help=stack_help)

    p = sub.add_parser(
        "models",
        help="print the declared set: the names /v1/models must list",
        description="Print the declared set, one name a line: the served names, load-balanced groups and visible "
        "aliases the gateway's /v1/models must list. With --diff-against, what this checkout adds and removes.",
    )
    p.add_argument("--stack", required=True, help=stack_help)
    form = p.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="a JSON list instead of one name a line")
    form.add_argument("--markdown", action="store_true", help="with --diff-against: a PR comment")
    p.add_argument("--diff-against", type=_path, metavar="PATH",
                   help="another checkout (e.g. the PR base): print `+ name`/`- name` and changed routes")  # fmt: skip

    p = sub.add_parser(
        "drift",
        help="compare the live gateway's /v1/models with the declared set",
        description="Compare the live gateway's /v1/models (and, with --backends, each backend's list) with the "
        "declared set. Exit 0 in sync, 2 drift, 1 could not check. The master key is read from the environment "
        "and never printed.",
    )
    _gateway_options(p, stack_help)
    p.add_argument("--backends", action="store_true", help="also check each backend reachable from here")
    p.add_argument("--wait", type=_seconds_or_zero, default=0.0, metavar="SECONDS",
                   help="poll until in sync or this many seconds have passed, after a deploy "
                   "(default 0: check once)")  # fmt: skip
    p.add_argument("--timeout", type=_positive_seconds, default=5.0, metavar="SECONDS",
                   help="per request (default 5)")  # fmt: skip
    p.add_argument("--deadline", type=_positive_seconds, default=20.0, metavar="SECONDS",
                   help="for one whole check (default 20)")  # fmt: skip
    _report_options(p)

    p = sub.add_parser(
        "probe",
        help="send one tiny chat completion through the gateway for every declared name",
        description="Send one tiny chat completion (max_tokens 1) through the gateway for every declared name. "
        "Exit 0 every name answers, 2 a name fails or answers only through a fallback, 1 could not "
        "check. The master key is read from the environment and never printed.",
    )
    _gateway_options(p, stack_help)
    p.add_argument("--include-external", action="store_true",
                   help="also probe names served only by external (paid) providers")  # fmt: skip
    p.add_argument("--backends", action="store_true", help="also ask each local deployment reachable from here")
    p.add_argument("--timeout", type=_positive_seconds, default=30.0, metavar="SECONDS",
                   help="per request (default 30)")  # fmt: skip
    p.add_argument("--deadline", type=_positive_seconds, default=60.0, metavar="SECONDS",
                   help="for the whole probe (default 60)")  # fmt: skip
    _report_options(p)

    p = sub.add_parser(
        "logs",
        help="show a deployed server's recent log (a provider, gateway or front-proxy)",
        description="Show the recent log of a provider's container, the gateway's or the front proxy's, read with "
        "the Docker CLI from the host the stack placed it on, through the host's `docker` endpoint in the stack "
        "file (none: the local engine, DOCKER_HOST). Every gateway container of the stack is shown, oldest "
        "first (two during a catalog change's roll). Exit 0 shown, 1 could not, 64 an unknown name.",
    )
    p.add_argument("--stack", required=True, help=stack_help)
    p.add_argument("name", metavar="NAME", help="a local provider of the stack's catalog, gateway or front-proxy")
    p.add_argument("--tail", type=_tail, default="200", metavar="N",
                   help="lines from the end of each log, or all (default: %(default)s)")  # fmt: skip
    p.add_argument("--since", type=_since, metavar="WHEN",
                   help="only lines since: a duration (10m, 1h30m) or a date/time (2026-12-03T13:00:00Z)")  # fmt: skip
    p.add_argument("--follow", "-f", action="store_true",
                   help="keep printing new lines (with several gateway containers: the newest one's)")  # fmt: skip
    p.add_argument("--timestamps", "-t", action="store_true", help="prefix each line with its time")
    return parser


def _tail(text: str) -> str:
    if text == "all" or (text.isdigit() and text.isascii()):
        return text
    raise argparse.ArgumentTypeError(f"'{text}' is not a number of lines: give a whole number, or all")


def _since(text: str) -> str:
    from ._logs import SINCE

    if SINCE.fullmatch(text):
        return text
    raise argparse.ArgumentTypeError(f"'{text}' is not a time: give a duration (10m, 1h30m, 45s), a Unix time "
                                     "or a date and time (2026-12-03T13:00:00Z)")  # fmt: skip


def _gateway_options(p: argparse.ArgumentParser, stack_help: str) -> None:
    """The stack, and which gateway to reach with which key: the same for drift and probe."""
    p.add_argument("--stack", required=True, help=stack_help)
    p.add_argument("--url", type=_gateway_url,
                   help="gateway base URL, without /v1 (default: the stack's gateway address)")  # fmt: skip
    p.add_argument("--key-env", default="LITELLM_MASTER_KEY", metavar="NAME", type=_env_name,
                   help="environment variable holding the master key (default: %(default)s)")  # fmt: skip


def _report_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=DRIFT_FORMATS, default="text",
                   help="report format: text, json, markdown (a job summary) or junit (CI test reports) "
                   "(default: %(default)s)")  # fmt: skip
    p.add_argument("--output", type=_path, metavar="FILE", help="write the report here instead of stdout")
    p.add_argument("--metrics-file", type=_path, metavar="FILE",
                   help="also write the result as Prometheus metrics here (atomically), for node_exporter's "
                   "textfile collector: name it *.prom in its --collector.textfile.directory")  # fmt: skip


def _report(problems: list[Problem], fmt: str, out: TextIO) -> None:
    for problem in problems:
        print(problem.format_github() if fmt == "github" else problem.format(), file=out)


def _load(
    project: Path,
    stack: str,
    fmt: str = "text",
    *,
    warnings: bool = False,
    shown_as: Path | None = None,
    not_done: str = "",
) -> Fleet | None:
    """Load a stack, printing its errors. Warnings are `validate`'s to show: repeated on every
    render, models and drift run they would only be noise. `shown_as`: a prefix for the files
    named in problems (another checkout's). `not_done`: what the command did not do because of
    the errors, when that is not plain (no llmfleet command changes anything)."""
    from ._errors import ConfigError
    from ._load import load_fleet

    try:
        fleet = load_fleet(project, stack)
    except ConfigError as exc:
        problems = exc.problems if shown_as is None else [
            dataclasses.replace(p, file=str(shown_as / p.file)) for p in exc.problems
        ]  # fmt: skip
        shown = [p for p in problems if warnings or p.severity == "error"]
        _report(shown, fmt, sys.stderr)
        found = count(sum(p.severity == "error" for p in shown), "error")
        if warnings and any(p.severity == "warning" for p in shown):
            found += ", " + count(sum(p.severity == "warning" for p in shown), "warning")
        print(f"stack '{stack}': {found}" + (f"; {not_done}." if not_done else "."), file=sys.stderr)
        return None
    if warnings:
        _report(fleet.warnings, fmt, sys.stderr)
    return fleet


def _validate(args: argparse.Namespace) -> int:
    from ._declared import declared_models

    stacks = args.stack or stack_names(args.project_dir)
    if not stacks:
        where = args.project_dir / "stacks"
        if is_directory(where):
            hint = ("Add one, with at least `llmfleet:catalog: <catalog file>` under `config:` "
                    '(see the README, "The stack").')  # fmt: skip
        else:
            hint = (f"llmfleet looks for them in <project-dir>/stacks/, and there is no {where.absolute()} "
                    "directory: run it from the project directory, or pass --project-dir <dir>.")  # fmt: skip
        print(f"{where}: no Pulumi.<stack>.yaml files found. {hint}", file=sys.stderr)
        return 1
    from ._checks_stacks import AcrossStacks

    across = AcrossStacks(args.project_dir, stacks)
    failed = False
    for stack in stacks:
        fleet = _load(args.project_dir, stack, args.format, warnings=True)
        if fleet is None:
            failed = True
            continue
        clashes = across.problems(fleet)
        if clashes:
            _report(clashes, args.format, sys.stderr)
            print(f"stack '{stack}': {count(len(clashes), 'error')} with another stack on one Docker engine.",
                  file=sys.stderr)  # fmt: skip
            failed = True
            continue
        names = len(declared_models(fleet.catalog))
        aliases = sum(not a.hidden for a in fleet.catalog.routes.alias_entries().values())
        warned = f", {count(len(fleet.warnings), 'warning')}" if fleet.warnings else ""
        print(f"stack '{stack}': ok ({count(len(fleet.catalog.providers), 'provider')}, "
              f"{count(names - aliases, 'model')}, {count(aliases, 'visible alias', 'visible aliases')}: "
              f"{count(names, 'name')} in /v1/models{warned})")  # fmt: skip
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

    if args.markdown and args.diff_against is None:
        return _usage("models", "--markdown needs --diff-against: it writes the diff as a PR comment")
    if args.diff_against is not None and not is_directory(args.diff_against / "stacks"):
        return _usage("models", f"--diff-against {args.diff_against} is not an llmfleet checkout "
                      f"(no {args.diff_against / 'stacks'} directory); give the base checkout's root")  # fmt: skip
    fleet = _load(args.project_dir, args.stack)
    if fleet is None:
        return 1
    if args.diff_against is None:
        names = declared_models(fleet.catalog)
        print(json.dumps(names) if args.json else "\n".join(names))
        return 0
    from ._model_diff import diff_markdown, model_diff

    base_dir: Path = args.diff_against
    base = None
    if args.stack in stack_names(base_dir):  # a stack new in this change has no base
        base_fleet = _load(base_dir, args.stack, shown_as=base_dir)
        if base_fleet is None:
            print(f"the base checkout {base_dir} does not load; fix it first", file=sys.stderr)
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
    from ._http import CertificatesError
    from ._kube import KubeError
    from ._reach import reached

    fleet = _load(args.project_dir, args.stack, not_done="the gateway was not checked")
    if fleet is None:
        return _metrics(args, None, 1)
    limits = Limits(timeout=args.timeout, deadline=args.deadline)
    progress = _attempt_progress(args.wait) if args.wait and _on_terminal() else None
    try:
        with reached(fleet, args.project_dir, args.url, args.backends) as where:
            report = asyncio.run(check(fleet, where.url, os.environ.get(args.key_env), backends=args.backends,
                                       wait=args.wait, limits=limits, progress=progress,
                                       key_source=f"the environment variable {args.key_env}",
                                       backend_addresses=where.backends))  # fmt: skip
    except (CertificatesError, KubeError) as exc:
        print(f"stack '{args.stack}': could not check: {exc}", file=sys.stderr)
        return _metrics(args, None, 1)
    return _emit(report, args)


def _probe(args: argparse.Namespace) -> int:
    import asyncio

    from ._http import CertificatesError, Limits
    from ._kube import KubeError
    from ._probe import probe
    from ._reach import reached

    fleet = _load(args.project_dir, args.stack, not_done="the gateway was not checked")
    if fleet is None:
        return _metrics(args, None, 1)
    limits = Limits(timeout=args.timeout, retries=1, deadline=args.deadline)
    try:
        with reached(fleet, args.project_dir, args.url, args.backends) as where:
            report = asyncio.run(probe(fleet, where.url, os.environ.get(args.key_env),
                                       include_external=args.include_external, backends=args.backends, limits=limits,
                                       key_source=f"the environment variable {args.key_env}",
                                       progress=_check_progress if _on_terminal() else None,
                                       backend_addresses=where.backends))  # fmt: skip
    except (CertificatesError, KubeError) as exc:
        print(f"stack '{args.stack}': could not check: {exc}", file=sys.stderr)
        return _metrics(args, None, 1)
    return _emit(report, args)


def _on_terminal() -> bool:
    """Progress lines go to a person watching a terminal; in CI and cron stderr is a log, and
    the report says it all at the end."""
    return sys.stderr.isatty()


def _check_progress(check: CheckResult) -> None:
    """probe: one line as each name (or backend) finishes, within its deadline of up to a minute."""
    print(f"probe: {check.target} [{check.kind}]: {check.verdict.value} ({duration(check.seconds)})",
          file=sys.stderr, flush=True)  # fmt: skip


def _attempt_progress(wait: float) -> Callable[[Report], None]:
    """drift --wait: one line per attempt, while the gateway comes in sync after a deploy."""
    started = time.monotonic()

    def show(report: Report) -> None:
        detail = report.gateway.detail.splitlines()[0][:200] if report.gateway.detail else ""
        why = f" ({detail})" if detail else ""
        took = f"{duration(time.monotonic() - started)} of {duration(wait)}"
        print(f"drift: attempt {report.attempts}: {report.summary}{why}, {took}", file=sys.stderr, flush=True)

    return show


def _emit(report: Report, args: argparse.Namespace) -> int:
    """Write a drift or probe report where asked, append it to a GitHub job summary, and exit with its
    code. A destination that cannot be written is said, and the report goes to stdout instead: the
    exit code stays the check's (cron alerts on 2), never a crash."""
    from ._drift_report import FORMATS, as_markdown

    text = FORMATS[args.format](report)
    written = False
    if args.output:
        try:
            args.output.write_text(text, encoding="utf-8")
            written = True
        except OSError as exc:
            print(f"cannot write the report to {args.output}: {exc.strerror or exc}; writing it to stdout instead",
                  file=sys.stderr)  # fmt: skip
    if not written:
        sys.stdout.write(text)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        try:
            with open(summary, "a", encoding="utf-8") as fh:
                fh.write(as_markdown(report))
        except OSError as exc:
            print(f"cannot append to GITHUB_STEP_SUMMARY ({summary}): {exc.strerror or exc}; "
                  "the job summary is missing this report", file=sys.stderr)  # fmt: skip
    if args.output or args.format != "text":
        print(f"stack '{args.stack}': {report.summary}", file=sys.stderr)
    return _metrics(args, report, report.exit_code)


def _metrics(args: argparse.Namespace, report: Report | None, code: int) -> int:
    """With --metrics-file, write the run's metrics (also when the stack did not load: a check that
    cannot run must show in them). A file that cannot be written is said; the exit code stays the check's."""
    if args.metrics_file is None:
        return code
    from ._metrics import metrics_text, write_atomically

    text = metrics_text(args.command, args.stack, code, time.time(), report)
    try:
        write_atomically(args.metrics_file, text)
    except OSError as exc:
        print(f"cannot write the metrics to {args.metrics_file}: {exc.strerror or exc}; they were not written",
              file=sys.stderr)  # fmt: skip
    return code


def _logs(args: argparse.Namespace) -> int:
    from ._logs import LogsError, logs_options, show_logs

    fleet = _load(args.project_dir, args.stack, not_done="no log was read")
    if fleet is None:
        return 1
    options = logs_options(args.tail, args.since, args.follow, args.timestamps)
    try:
        return show_logs(fleet, args.name, options, follow=args.follow,
                         out=lambda line: print(line, flush=True),
                         err=lambda line: print(f"llmfleet logs: {line}", file=sys.stderr, flush=True))  # fmt: skip
    except LogsError as exc:
        if exc.usage:
            return _usage("logs", str(exc))
        print(f"llmfleet logs: {exc}", file=sys.stderr)
        return 1


def _not_a_directory(path: Path) -> str:
    """Why `path` cannot be used as a directory ("does not exist", ...), or ""."""
    try:
        is_dir = path.is_dir()
        path.stat()
    except FileNotFoundError:
        return "does not exist"
    except OSError as exc:  # a name too long, a symlink loop
        return f"cannot be used: {exc.strerror or exc}"
    return "" if is_dir else "is not a directory"


def _usage(command: str, message: str) -> int:
    print(f"llmfleet {command}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


COMMANDS = {"validate": _validate, "render": _render, "models": _models, "drift": _drift, "probe": _probe,
            "logs": _logs}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # The project directory first, so that `--stack` help can list that project's stacks. This
    # pass never exits (argparse would, with 2): a bad --project-dir is the full parser's to report.
    early = _Lenient(add_help=False)
    early.add_argument("--project-dir", default=Path("."), type=_path)
    try:
        project_dir = early.parse_known_args(argv)[0].project_dir
    except ValueError:
        project_dir = Path(".")
    try:
        args = _parser(project_dir).parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (64)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    unusable = _not_a_directory(args.project_dir)
    if unusable:
        return _usage(args.command, f"--project-dir {args.project_dir} {unusable}: give the directory that holds "
                      "stacks/ and config/")  # fmt: skip
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as exc:
        package = _DEPENDENCIES.get((exc.name or "").partition(".")[0])
        if package is None:
            raise
        print(f"llmfleet needs the Python package '{package}', which this Python ({sys.executable}) does not have. "
              "Install llmfleet with its dependencies: pip install -r requirements.txt -c constraints.txt "
              "(from the project directory), or pip install <path to the project>.", file=sys.stderr)  # fmt: skip
        return 1
    except Exception:  # noqa: BLE001 - last resort: keep the traceback, show a short message
        fd, log = tempfile.mkstemp(prefix="llmfleet-crash-", suffix=".log")
        with os.fdopen(fd, "w") as fh:
            traceback.print_exc(file=fh)
        print(f"llmfleet crashed unexpectedly ({sys.exc_info()[1].__class__.__name__}); "
              f"the traceback is in {log}. Please report it.", file=sys.stderr)  # fmt: skip
        return 3
