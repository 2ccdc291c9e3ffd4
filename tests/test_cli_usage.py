"""The CLI under mistaken use: usage errors exit 64 (2 is drift), unwritable outputs keep the real
exit code, numeric options are checked, and the installed `llmfleet` command works anywhere."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from llmfleet import __version__
from llmfleet._cli import COMMANDS, EXIT_USAGE, _parser, main

from .fleetdir import BASE_STACK, write_project
from .standins import StandIn, json_route, openai_models, standins

CATALOG = "providers:\n  ollama:\n    kind: ollama\n    models: [qwen2.5:0.5b]\n"
KEY = "sk-usage-test-0a1b2c3d"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "project", CATALOG)


@pytest.fixture
def drifted_gateway(monkeypatch: pytest.MonkeyPatch) -> StandIn:
    """A gateway listing a name nobody declared: drift, exit 2."""
    monkeypatch.setenv("LITELLM_MASTER_KEY", KEY)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    with standins(1) as (server,):
        server.routes["/v1/models"] = json_route(openai_models(["qwen2.5:0.5b", "stray"]))
        yield server


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["drift"], "the following arguments are required: --stack"),
        (["drift", "--stack", "test", "--bogus"], "unrecognized arguments: --bogus"),
        (["drift", "--stack", "test", "--format", "xml"], "invalid choice: 'xml'"),
        (["drift", "--stack", "test", "--timeout", "0"], "'0' is not a usable number of seconds: give more than 0"),
        (["drift", "--stack", "test", "--timeout", "nan"], "'nan' is not a usable number of seconds"),
        (["drift", "--stack", "test", "--deadline", "-5"], "'-5' is not a usable number of seconds"),
        (["drift", "--stack", "test", "--wait", "-1"], "'-1' is not a usable number of seconds: give at least 0"),
        (["drift", "--stack", "test", "--wait", "inf"], "'inf' is not a usable number of seconds"),
        (["probe", "--stack", "test", "--timeout", "soon"], "'soon' is not a number of seconds"),
        (["drift", "--stack", "test", "--url", "http://gw:4000/v1"],
         "ends in /v1: give the gateway's base URL (http://gw:4000); llmfleet adds /v1/models"),
        (["probe", "--stack", "test", "--url", "http://gw:4000/v1/"], "ends in /v1"),
        (["drift", "--stack", "test", "--url", "gw:4000"], "'gw:4000' is not an http:// or https:// URL"),
        # Once crashes (ExceptionGroup, exit 3) or a misleading message from the HTTP client:
        (["drift", "--stack", "test", "--url", "http://127.0.0.1:99999"],
         "'http://127.0.0.1:99999' has no usable port: give one from 1 to 65535"),
        (["probe", "--stack", "test", "--url", "http://127.0.0.1:abc"], "has no usable port"),
        (["drift", "--stack", "test", "--url", "http://127.0.0.1:0"], "has no usable port"),
        (["drift", "--stack", "test", "--url", "http://"], "'http://' names no host"),
        (["drift", "--stack", "test", "--url", "http://gw:4000/?x=1"], "has a query or fragment"),
        (["models", "--stack", "test", "--markdown"], "--markdown needs --diff-against"),
        (["models", "--stack", "test", "--json", "--markdown"], "not allowed with argument"),
        ([], "the following arguments are required: COMMAND"),
        (["validate", "--project-dir"], "unrecognized arguments: --project-dir"),
        (["--project-dir"], "argument --project-dir: expected one argument"),
    ],
)  # fmt: skip
def test_usage_errors_exit_64_never_2(
    project: Path, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    code, out, err = run(capsys, "--project-dir", str(project), *argv)
    assert (code, out) == (EXIT_USAGE, "")
    assert says in err
    assert "Traceback" not in err


def test_diff_against_a_path_that_is_not_a_checkout_is_an_error(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for base in (tmp_path / "nowhere", tmp_path):
        code, out, err = run(capsys, "--project-dir", str(project), "models", "--stack", "test",
                             "--diff-against", str(base))  # fmt: skip
        assert (code, out) == (EXIT_USAGE, "")
        assert f"--diff-against {base} is not an llmfleet checkout" in err


def test_problems_in_the_base_checkout_name_the_base_files(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = write_project(tmp_path / "base", CATALOG.replace("qwen2.5:0.5b]", "qwen2.5:0.5b]\n    gpus: []"))
    code, out, err = run(capsys, "--project-dir", str(project), "models", "--stack", "test",
                         "--diff-against", str(base))  # fmt: skip
    assert (code, out) == (1, "")
    assert err.startswith(f"{base}/config/catalog.yaml:5:5: error: providers.ollama.gpus: `gpus: []`")
    assert err.endswith(f"the base checkout {base} does not load; fix it first\n")


@pytest.mark.parametrize("where", ["missing-dir/report.json", "."])
def test_an_unwritable_output_keeps_the_exit_code_and_the_report(
    project: Path, drifted_gateway: StandIn, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    output = project / where
    code, out, err = run(capsys, "--project-dir", str(project), "drift", "--stack", "test", "--url",
                         drifted_gateway.url, "--format", "json", "--output", str(output))  # fmt: skip
    assert code == 2  # the drift, not a crash (3) and not a usage error
    assert f"cannot write the report to {output}: " in err
    assert '"stray"' in out  # the report is on stdout instead: nothing is lost
    assert "Traceback" not in err


def test_an_unwritable_github_step_summary_keeps_the_exit_code(
    project: Path, drifted_gateway: StandIn, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(project / "no-such-dir" / "summary.md"))
    code, out, err = run(capsys, "--project-dir", str(project), "drift", "--stack", "test", "--url",
                         drifted_gateway.url)  # fmt: skip
    assert code == 2
    assert "stray" in out
    assert "cannot append to GITHUB_STEP_SUMMARY" in err and "No such file or directory" in err


def test_warnings_are_shown_by_validate_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    no_key = BASE_STACK.split("  llmfleet:masterKey:")[0]
    project = write_project(tmp_path, CATALOG, no_key)
    code, _, err = run(capsys, "--project-dir", str(project), "validate")
    assert code == 0 and "warning: config: no gateway master key is set" in err
    for argv in (["render", "--stack", "test"], ["models", "--stack", "test"]):
        code, out, err = run(capsys, "--project-dir", str(project), *argv)
        assert (code, err) == (0, "") and out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--version") == (0, f"llmfleet {__version__}\n", "")


def test_stack_help_lists_the_projects_stacks(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "stacks" / "Pulumi.prod.yaml").write_text(BASE_STACK)
    code, out, _ = run(capsys, "--project-dir", str(project), "drift", "--help")
    assert code == 0
    assert "known stacks: prod, test" in " ".join(out.split())


def llmfleet_command() -> Path:
    """The console script pip installed next to this Python (`pip install -e .`, see .ci/run)."""
    return Path(sys.executable).parent / "llmfleet"


def test_installed_command_works_from_any_directory(project: Path, tmp_path: Path) -> None:
    command = llmfleet_command()
    assert command.exists(), "run `pip install -e .` (the README's setup) to install the llmfleet command"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run([str(command), "--project-dir", str(project), "models", "--stack", "test"],
                            cwd=elsewhere, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (result.returncode, result.stdout, result.stderr) == (0, "qwen2.5:0.5b\n", "")
    result = subprocess.run([str(command), "--version"], cwd=elsewhere, capture_output=True, text=True, timeout=60)
    assert result.stdout == f"llmfleet {__version__}\n"


def test_a_missing_dependency_names_the_install_command(project: Path) -> None:
    hide_yaml = "import sys; sys.modules['yaml'] = None; from llmfleet._cli import main; sys.exit(main())"
    result = subprocess.run([sys.executable, "-c", hide_yaml, "--project-dir", str(project), "validate"],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 1
    assert "llmfleet needs the Python package 'pyyaml'" in result.stderr
    assert "pip install -r requirements.txt" in result.stderr
    assert "Traceback" not in result.stderr and "report" not in result.stderr


def test_every_command_and_option_is_described(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = _parser(project)
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert sorted(commands.choices) == sorted(COMMANDS)
    for name, sub in commands.choices.items():
        assert sub.description, f"`llmfleet {name} --help` has no description"
        undescribed = [a.option_strings for a in sub._actions if not a.help]
        assert undescribed == [], f"llmfleet {name}: options without help"
    for command in ("drift", "probe"):
        code, out, _ = run(capsys, "--project-dir", str(project), command, "--help")
        text = " ".join(out.split())
        assert code == 0
        assert "--key-env NAME environment variable holding the master key (default: LITELLM_MASTER_KEY)" in text
        assert "report format: text, json, markdown (a job summary) or junit (CI test reports) (default: text)" in text
    code, out, _ = run(capsys, "--project-dir", str(project), "validate", "--help")
    assert "github: workflow annotations (default: text)" in " ".join(out.split())
