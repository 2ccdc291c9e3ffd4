"""The GitHub workflows: linted with actionlint and ShellCheck, their `run:` scripts run as a runner
would run them, and doing what the README says they do.

GitHub itself cannot be run here. `run_job` plays the part of the runner for one job: each `run:`
step is a file run by `bash --noprofile --norc -eo pipefail` (GitHub's default shell on Linux), with
the job's and the step's `env`, `${{ }}` expressions filled in from what the test gives, GITHUB_ENV
carried between steps, and the step's `if:` deciding (success(), always(), !cancelled()) as GitHub
does. `uses:` steps are recorded, not run. The commands the steps call (pulumi, sudo, apt-get, ...)
are stubs on PATH that record what they were asked; the scripts themselves are real.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

import llmfleet

from .actionlint_build import ensure_built as ensure_actionlint
from .kubernetes_build import CONTROL_PLANE_MODULES

PROJECT = Path(__file__).resolve().parent.parent
WORKFLOWS = PROJECT / ".github" / "workflows"


def actionlint(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    path = ensure_actionlint()  # seconds when cold; .ci/run builds it before pytest
    if not shutil.which("shellcheck"):
        pytest.fail("shellcheck is not installed: run `bash .ci/system-packages` (Debian's shellcheck package)")
    return subprocess.run([str(path), *args], cwd=repo, capture_output=True, text=True, timeout=120)


def workflow(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / f"{name}.yml").read_text())


def test_workflows_pass_actionlint_with_shellcheck() -> None:
    result = actionlint(PROJECT, "-verbose")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Linting 4 files" in result.stderr
    assert 'Rule "shellcheck" was disabled' not in result.stderr  # it ran over every `run:` script


def test_actionlint_does_catch_mistakes(tmp_path: Path) -> None:
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    broken = (WORKFLOWS / "drift.yml").read_text().replace("matrix.stack }}.xml", "matrix.stak }}.xml")
    # An unquoted variable in a script: ShellCheck's SC2086, reported through actionlint.
    broken = broken.replace('--stack "$STACK" --preview-only', "--stack $STACK --preview-only")
    (tmp_path / ".github" / "workflows" / "drift.yml").write_text(broken)
    result = actionlint(tmp_path, ".github/workflows/drift.yml")
    assert result.returncode == 1
    assert 'property "stak" is not defined' in result.stdout
    assert "SC2086" in result.stdout


def test_the_ci_scripts_pass_shellcheck() -> None:
    scripts = [
        PROJECT / ".ci" / name for name in ("run", "setup", "system-packages", "model-diff", "master-key", "install")
    ]
    result = subprocess.run(["shellcheck", *map(str, scripts)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout


def steps(job: dict) -> list[dict]:
    return job["steps"]


# --- A runner for one job -------------------------------------------------------------------------

EXPRESSION = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")


@dataclass
class StepRun:
    name: str
    ran: bool
    code: int | None = None
    output: str = ""


@dataclass
class JobRun:
    steps: list[StepRun] = field(default_factory=list)

    def step(self, name: str) -> StepRun:
        return next(s for s in self.steps if s.name == name)

    @property
    def failed(self) -> bool:
        return any(s.code not in (None, 0) for s in self.steps)


def _fill(text: str, context: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        expression = match.group(1)
        # `vars.X || 'default'`: the repository variable, else the default, as GitHub evaluates it.
        name, _, default = expression.partition(" || ")
        if name in context:
            return context[name] or default.strip("'")
        if default:
            return default.strip("'")
        raise AssertionError(f"the test gives no value for ${{{{ {expression} }}}}")

    return EXPRESSION.sub(value, text)


def _runs(condition: str | None, failed: bool) -> bool:
    condition = (condition or "success()").strip()
    condition = EXPRESSION.sub(lambda m: m.group(1), condition)
    if condition in ("always()", "!cancelled()"):
        return True
    if condition == "success()":
        return not failed
    raise AssertionError(f"the test runner does not evaluate `if: {condition}`")


def run_job(
    job: dict,
    workspace: Path,
    context: dict[str, str],
    path: list[Path],
    user: int | None = None,
) -> JobRun:
    """Run a job's `run:` steps in `workspace` as a runner would (see the module's docstring), as
    the user `user` when given (a runner's non-root user)."""
    runner_temp = workspace.parent / f"runner-temp-{workspace.name}"
    shutil.rmtree(runner_temp, ignore_errors=True)
    runner_temp.mkdir(mode=0o777)
    github_env = runner_temp / "github_env"
    github_env.touch(mode=0o666)
    summary = runner_temp / "step_summary"
    summary.touch(mode=0o666)
    env = {
        "PATH": ":".join([*map(str, path), "/usr/bin", "/bin"]),
        "HOME": str(runner_temp),
        "RUNNER_TEMP": str(runner_temp),
        "GITHUB_ENV": str(github_env),
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_WORKSPACE": str(workspace),
        "CI": "true",
        "GITHUB_ACTIONS": "true",
    }
    context = {"runner.temp": str(runner_temp), **context}
    env.update({k: _fill(str(v), context) for k, v in job.get("env", {}).items()})
    result = JobRun()
    for i, step in enumerate(job["steps"]):
        name = step.get("name") or step.get("uses") or step["run"].splitlines()[0]
        if not _runs(step.get("if"), result.failed):
            result.steps.append(StepRun(name, ran=False))
            continue
        if "uses" in step:
            result.steps.append(StepRun(name, ran=True))
            continue
        for line in github_env.read_text().splitlines():  # what earlier steps exported
            key, _, value = line.partition("=")
            env[key] = value
        step_env = {**env, **{k: _fill(str(v), context) for k, v in step.get("env", {}).items()}}
        script = runner_temp / f"step-{i}.sh"
        script.write_text(_fill(step["run"], context))
        script.chmod(0o755)
        argv = ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)]
        if user is not None:
            argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
        done = subprocess.run(argv, cwd=workspace, env=step_env, capture_output=True, text=True, timeout=120)
        result.steps.append(StepRun(name, ran=True, code=done.returncode, output=done.stdout + done.stderr))
    return result


def stub(directory: Path, name: str, script: str) -> None:
    """A command on PATH that records its arguments in $STUB_LOG (one line each) and then runs `script`."""
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    (directory / name).write_text(f'#!/bin/bash\necho "{name} $*" >> "$STUB_LOG"\n{script}\n')
    (directory / name).chmod(0o755)


def shared_dir(path: Path) -> Path:
    """A directory every user can write, for a job run as a runner's non-root user."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)
    return path


def recorded(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


# --- preview.yml ----------------------------------------------------------------------------------


def test_preview_validates_comments_the_model_diff_and_previews_each_stack() -> None:
    jobs = workflow("preview")["jobs"]
    assert list(jobs) == ["preview"]  # the project's own tests are tests.yml's, never waited for
    preview = jobs["preview"]
    assert "needs" not in preview
    assert [entry["stack"] for entry in preview["strategy"]["matrix"]["include"]] == ["dev", "prod"]
    runs = "\n".join(s.get("run", "") for s in steps(preview))
    assert "llmfleet validate" in runs and '.ci/model-diff "$STACK"' in runs
    pulumi = next(s for s in steps(preview) if s.get("uses", "").startswith("pulumi/actions@"))
    assert pulumi["with"]["command"] == "preview" and pulumi["with"]["comment-on-pr"] is True


def test_the_projects_own_tests_run_ci_run_in_a_workflow_of_their_own() -> None:
    jobs = workflow("tests")["jobs"]
    assert list(jobs) == ["test"]
    runs = [s.get("run", "") for s in steps(jobs["test"])]
    assert "bash .ci/system-packages" in runs
    assert any(r.startswith("sudo ") and r.endswith("bash .ci/run") for r in runs)
    assert jobs["test"]["runs-on"] == "ubuntu-latest"  # GitHub's image: setup-python has builds for it


def test_the_test_job_caches_each_build_keyed_like_its_own_cache() -> None:
    job = workflow("tests")["jobs"]["test"]
    caches = {s["name"]: s["with"] for s in steps(job) if s.get("uses", "").startswith("actions/cache@")}
    engine = caches["Cache the Pulumi engine and actionlint"]
    # tests/engine_build.py keys its directory by every file under tools/engine and the Go version.
    assert "tools/engine/**" in engine["key"] and "go1.26" in engine["key"]
    assert "pulumi-engine-*" in engine["path"]
    llama = caches["Cache the llama.cpp servers"]
    assert "tests/llama_build.py" in llama["key"] and "llama-cpp-python-*" in llama["path"]
    ollama = caches["Cache Ollama"]  # tests/ollama_build.py: every file under tools/ollama, the Go version
    assert "tools/ollama/**" in ollama["key"] and "go1.26" in ollama["key"] and "ollama-*" in ollama["path"]
    compose = caches["Cache Compose"]  # tests/compose_build.py: likewise
    assert "tools/compose/**" in compose["key"] and "go1.26" in compose["key"] and "compose-*" in compose["path"]
    # tests/kubernetes_build.py: the control plane by its three wrapper modules, the provider by its own.
    kubernetes = caches["Cache the Kubernetes control plane and kwok"]
    for module in ("etcd", "kube", "kwok"):
        assert f"tools/kubernetes/{module}/**" in kubernetes["key"]
    assert "go1.26" in kubernetes["key"] and "kubernetes-*" in kubernetes["path"]
    provider = caches["Cache the pulumi-kubernetes provider"]
    assert "tools/kubernetes/provider/**" in provider["key"] and "go1.26" in provider["key"]
    assert "pulumi-kubernetes-*" in provider["path"]
    assert {p.name for p in (PROJECT / "tools" / "kubernetes").iterdir()} == {*CONTROL_PLANE_MODULES, "provider"}
    setup_go = next(s for s in steps(job) if s.get("uses", "").startswith("actions/setup-go@"))
    assert setup_go["with"]["go-version"] == "1.26"
    # The caches are saved after the job: whatever root wrote there is handed back to the user first.
    assert steps(job)[-1]["if"] == "always()" and "chown" in steps(job)[-1]["run"]


SYSTEM_PACKAGES = {"name": "System packages (through sudo)", "run": "bash .ci/system-packages"}
# What the tests build and run besides the servers: compilers for llama.cpp, git, openssl, venv, sshd.
BUILD_TOOLS = {"python3-venv", "cmake", "g++", "make", "git", "openssl", "openssh-server"}
# The headers Ollama's Go module lacks (tests/ollama_build.py).
OLLAMA_HEADERS = {"nlohmann-json3-dev", "libstb-dev", "libminiaudio-dev"}


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A temporary directory a runner's non-root user can reach (pytest's own is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="llmfleet-runner-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path)


def packages_world(tmp_path: Path, installed: set[str], sudo: bool) -> tuple[Path, list[Path]]:
    """A runner's machine as the install script sees it: which packages dpkg knows, a Docker
    Engine 27 (as GitHub's images have), sudo or not. apt-get and sudo only record."""
    root = shared_dir(tmp_path / "machine")
    bin_dir, log = root / "bin", root / "log"
    log.touch(mode=0o666)
    log.chmod(0o666)
    listed = " ".join(sorted(installed))
    stub(
        bin_dir,
        "dpkg-query",
        f'for p in {listed}; do [ "${{@: -1}}" = "$p" ] && {{ echo installed; exit 0; }}; done; exit 1',
    )
    stub(bin_dir, "apt-get", "exit 0")
    stub(bin_dir, "dockerd", 'echo "Docker version 27.5.1, build 4c9b3b0"')
    if sudo:
        stub(bin_dir, "sudo", '[ "$1" = -n ] && shift; exec "$@"')
    return log, [bin_dir]


def apt_calls(log: Path) -> list[str]:
    return [line for line in recorded(log) if not line.startswith(("dpkg-query", "dockerd"))]


def test_system_packages_on_a_github_hosted_runner_use_sudo(open_tmp: Path) -> None:
    # GitHub-hosted: the runner's user is not root, has sudo, and there is no HAProxy.
    workspace = shared_dir(open_tmp / "checkout")
    shutil.copytree(PROJECT / ".ci", workspace / ".ci")
    # Ubuntu's runner image: compilers, git and openssl, but no Debian keyring.
    log, path = packages_world(open_tmp, installed={"debootstrap", *BUILD_TOOLS, *OLLAMA_HEADERS}, sudo=True)
    run = run_job({"env": {"STUB_LOG": str(log)}, "steps": [SYSTEM_PACKAGES]}, workspace, {}, path, user=65534)
    assert run.step(SYSTEM_PACKAGES["name"]).code == 0, run.steps
    # Every apt-get through sudo (which then runs it), none directly.
    assert apt_calls(log) == [
        "sudo -n apt-get update -qq",
        "apt-get update -qq",
        "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy debian-archive-keyring shellcheck",
        "apt-get install -y -qq haproxy debian-archive-keyring shellcheck",
    ]


def test_system_packages_as_root_on_a_self_hosted_runner_without_sudo(open_tmp: Path) -> None:
    workspace = shared_dir(open_tmp / "checkout")
    shutil.copytree(PROJECT / ".ci", workspace / ".ci")
    log, path = packages_world(
        open_tmp,
        installed={"debootstrap", "debian-archive-keyring", "shellcheck", "cmake", "g++", "make", *OLLAMA_HEADERS},
        sudo=False,
    )
    run = run_job({"env": {"STUB_LOG": str(log)}, "steps": [SYSTEM_PACKAGES]}, workspace, {}, path)
    assert run.step(SYSTEM_PACKAGES["name"]).code == 0, run.steps
    # A minimal Debian: no venv module, git, openssl or sshd either.
    assert apt_calls(log) == [
        "apt-get update -qq",
        "apt-get install -y -qq haproxy python3-venv git openssl openssh-server",
    ]


def test_system_packages_without_root_or_sudo(open_tmp: Path) -> None:
    workspace = shared_dir(open_tmp / "checkout")
    shutil.copytree(PROJECT / ".ci", workspace / ".ci")
    # Everything there already: nothing to install, nothing asks for root.
    log, path = packages_world(
        open_tmp,
        installed={"haproxy", "debootstrap", "debian-archive-keyring", "shellcheck", *BUILD_TOOLS, *OLLAMA_HEADERS},
        sudo=False,
    )
    run = run_job({"env": {"STUB_LOG": str(log)}, "steps": [SYSTEM_PACKAGES]}, workspace, {}, path, user=65534)
    assert run.step(SYSTEM_PACKAGES["name"]).code == 0, run.steps
    assert apt_calls(log) == []
    # HAProxy missing: a clear error naming it and what to do, not apt-get's permission denied.
    log, path = packages_world(
        open_tmp / "again",
        installed={"debootstrap", "debian-archive-keyring", "shellcheck", *BUILD_TOOLS, *OLLAMA_HEADERS},
        sudo=False,
    )
    run = run_job({"env": {"STUB_LOG": str(log)}, "steps": [SYSTEM_PACKAGES]}, workspace, {}, path, user=65534)
    step = run.step(SYSTEM_PACKAGES["name"])
    assert step.code == 1
    assert "installing haproxy needs root: run as root, through sudo, or install it first" in step.output
    assert apt_calls(log) == []


def test_system_packages_install_the_headers_ollamas_build_lacks(open_tmp: Path) -> None:
    # Everything else there: only the headers are installed, miniaudio from Debian 13 (pinned low, by
    # name only) on Debian 12, from the system's own archive elsewhere.
    workspace = shared_dir(open_tmp / "checkout")
    shutil.copytree(PROJECT / ".ci", workspace / ".ci")
    everything = {"haproxy", "debootstrap", "debian-archive-keyring", "shellcheck", *BUILD_TOOLS}
    log, path = packages_world(open_tmp, installed=everything, sudo=False)
    run = run_job({"env": {"STUB_LOG": str(log)}, "steps": [SYSTEM_PACKAGES]}, workspace, {}, path)
    assert run.step(SYSTEM_PACKAGES["name"]).code == 0, run.steps
    bookworm = "VERSION_CODENAME=bookworm" in Path("/etc/os-release").read_text()
    miniaudio = "libminiaudio-dev/trixie" if bookworm else "libminiaudio-dev"
    assert apt_calls(log)[-1] == f"apt-get install -y -qq nlohmann-json3-dev libstb-dev {miniaudio}"


def test_the_setup_runs_as_root_or_through_sudo(open_tmp: Path) -> None:
    # The README's set-up: a non-root user with sudo is taken through it whole (the tests' dockerd
    # and debootstrap need root); without sudo, a message that says so, and nothing run.
    workspace = shared_dir(open_tmp / "checkout")
    shutil.copytree(PROJECT / ".ci", workspace / ".ci")
    log, path = packages_world(open_tmp, installed=set(), sudo=False)
    stub(path[0], "sudo", "exit 0")  # records the call; the set-up itself is not run again here
    setup = {"name": "Set-up", "run": "bash .ci/setup"}
    run = run_job({"env": {"STUB_LOG": str(log)}, "steps": [setup]}, workspace, {}, path, user=65534)
    assert run.step("Set-up").code == 0, run.steps
    [call] = [line for line in recorded(log) if line.startswith("sudo ")]
    assert call.startswith("sudo env PATH=") and call.endswith(f"bash {workspace}/.ci/setup")
    (path[0] / "sudo").unlink()
    run = run_job({"env": {"STUB_LOG": str(log)}, "steps": [setup]}, workspace, {}, path, user=65534)
    step = run.step("Set-up")
    assert step.code == 1 and "need root: run as root, or through sudo" in step.output
    assert recorded(log) == [call]  # nothing else was run, as root or not


def model_diff_step() -> dict:
    return next(
        s
        for s in steps(workflow("preview")["jobs"]["preview"])
        if s.get("name") == "Model diff against the base branch"
    )


def test_the_model_diff_runs_twice_on_a_reused_checkout(tmp_path: Path) -> None:
    # A self-hosted runner: the same checkout for every job, RUNNER_TEMP emptied in between.
    checkout = tmp_path / "work" / "llmfleet"
    checkout.mkdir(parents=True)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=checkout, check=True)
    shutil.copytree(PROJECT / "config", checkout / "config")
    shutil.copytree(PROJECT / "stacks", checkout / "stacks")
    shutil.copytree(PROJECT / ".ci", checkout / ".ci")
    subprocess.run([*git, "add", "."], cwd=checkout, check=True)
    subprocess.run([*git, "commit", "-qm", "base"], cwd=checkout, check=True)
    base = subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True).stdout.strip()
    dev = checkout / "config" / "dev.yaml"
    dev.write_text(dev.read_text().replace("aliases:\n", "aliases:\n    added-in-the-pr: qwen2.5:0.5b\n", 1))
    subprocess.run([*git, "commit", "-qam", "change"], cwd=checkout, check=True)
    llmfleet = Path(sys.executable).parent / "llmfleet"
    job = {"env": {"STACK": "${{ matrix.stack }}", "LLMFLEET": str(llmfleet)}, "steps": [model_diff_step()]}
    context = {"matrix.stack": "dev", "github.event.pull_request.base.sha": base}
    for attempt in (1, 2):  # run_job gives each job a fresh, empty RUNNER_TEMP
        run = run_job(job, checkout, context, [])
        step = run.step("Model diff against the base branch")
        assert step.code == 0, (attempt, step.output)
        diff = (checkout.parent / f"runner-temp-{checkout.name}" / "model-diff.md").read_text()
        assert "added-in-the-pr" in diff, diff
    # Nothing registered in the repository, nothing left in the job's temporary directory.
    worktrees = subprocess.run(["git", "worktree", "list"], cwd=checkout, capture_output=True, text=True).stdout
    assert len(worktrees.splitlines()) == 1
    assert sorted(p.name for p in (checkout.parent / f"runner-temp-{checkout.name}").iterdir() if p.is_dir()) == []


# --- deploy.yml -----------------------------------------------------------------------------------


def test_deploy_runs_up_with_the_policy_pack_in_a_protected_environment() -> None:
    job = workflow("deploy")["jobs"]["up"]
    assert job["environment"] == "${{ matrix.stack }}"
    pulumi = next(s for s in steps(job) if s.get("uses", "").startswith("pulumi/actions@"))
    assert (pulumi["with"]["command"], pulumi["with"]["policyPacks"]) == ("up", "policy")


@pytest.mark.parametrize("name,job", [("preview", "preview"), ("deploy", "up"), ("drift", "drift")])
def test_every_pulumi_job_takes_its_backend_and_secrets_from_configuration(name: str, job: str) -> None:
    spec = workflow(name)["jobs"][job]
    assert spec["env"]["PULUMI_BACKEND_URL"] == "${{ vars.PULUMI_BACKEND_URL }}"  # unset: Pulumi Cloud
    assert spec["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"
    assert spec["env"]["PULUMI_CONFIG_PASSPHRASE"] == "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}"
    for step in steps(spec):
        if step.get("uses", "").startswith("pulumi/actions@"):
            assert step["with"]["cloud-url"] == "${{ vars.PULUMI_BACKEND_URL }}"


# --- drift.yml ------------------------------------------------------------------------------------


def test_drift_refreshes_checks_and_keeps_the_junit_report() -> None:
    wf = workflow("drift")
    assert wf[True]["schedule"]  # `on:` parses as True in YAML 1.1
    runs = "\n".join(s.get("run", "") for s in steps(wf["jobs"]["drift"]))
    assert 'pulumi refresh --stack "$STACK" --preview-only --expect-no-changes' in runs
    assert 'llmfleet drift --stack "$STACK" --backends' in runs and "--format junit" in runs


def drift_world(tmp_path: Path, stack_output: str, refresh_code: int) -> tuple[Path, Path, list[Path]]:
    """A fleet's runner for the drift job: pulumi answers the key (or fails) and a refresh's exit
    code; llmfleet records whether it had the key."""
    workspace = tmp_path / "checkout"
    shutil.copytree(PROJECT / ".ci", workspace / ".ci")
    log = tmp_path / "log"
    bin_dir = tmp_path / "bin"
    stub(
        bin_dir,
        "pulumi",
        f'[ "$1" = stack ] && {{ {stack_output}; }}; [ "$1" = refresh ] && exit {refresh_code}; exit 0',
    )
    llmfleet = 'echo "$1 key=${LITELLM_MASTER_KEY:+set}" >> "$STUB_LOG"; exit 0'
    stub(workspace / ".venv" / "bin", "llmfleet", llmfleet)
    # The install step (.ci/install, real): the runner's python3 makes the virtualenv, the
    # virtualenv's pip fills it (both recorded).
    stub(bin_dir, "python3", "exit 0")
    stub(workspace / ".venv" / "bin", "python", "exit 0")
    return workspace, log, [bin_dir]


def checks_run(log: Path) -> list[str]:
    return [line for line in recorded(log) if " key=" in line]


DRIFT_CONTEXT = {"matrix.stack": "prod", "vars.PULUMI_BACKEND_URL": "", "secrets.PULUMI_ACCESS_TOKEN": "",
                 "secrets.PULUMI_CONFIG_PASSPHRASE": ""}  # fmt: skip


def test_drift_reports_model_drift_and_routing_when_the_container_check_fails(tmp_path: Path) -> None:
    workspace, log, path = drift_world(tmp_path, "echo sk-hourly-1234", refresh_code=255)
    job = {**workflow("drift")["jobs"]["drift"]}
    job["env"] = {**job["env"], "STUB_LOG": str(log)}
    run = run_job(job, workspace, DRIFT_CONTEXT, path)
    assert run.step("Container drift").code == 255
    assert run.failed
    # Each later check still runs, with the key the first step read.
    assert checks_run(log) == ["drift key=set", "probe key=set"]
    assert run.step("Keep the reports").ran
    assert "sk-hourly-1234" not in run.step("Master key").output.replace("::add-mask::sk-hourly-1234", "")


def test_drift_without_a_readable_key_still_checks_what_it_can(tmp_path: Path) -> None:
    workspace, log, path = drift_world(tmp_path, "echo 'error: no stack named prod' >&2; exit 255", refresh_code=0)
    job = {**workflow("drift")["jobs"]["drift"]}
    job["env"] = {**job["env"], "STUB_LOG": str(log)}
    run = run_job(job, workspace, DRIFT_CONTEXT, path)
    key = run.step("Master key")
    assert key.code == 1 and "could not read the master key of stack 'prod'" in key.output
    assert run.step("Container drift").code == 0
    # drift and probe run and say, themselves, that they had no key (exit 1, "could not check").
    assert checks_run(log) == ["drift key=", "probe key="]


def test_drift_installs_with_the_runners_python3(tmp_path: Path) -> None:
    workspace, log, path = drift_world(tmp_path, "echo sk-hourly-1234", refresh_code=0)
    job = {**workflow("drift")["jobs"]["drift"]}
    job["env"] = {**job["env"], "STUB_LOG": str(log)}
    run = run_job(job, workspace, DRIFT_CONTEXT, path)
    assert run.step("Install").code == 0, run.step("Install").output
    pip = "-m pip install --quiet --disable-pip-version-check"
    assert [line for line in recorded(log) if line.startswith("python")] == [
        "python3 -c import sys; sys.exit(sys.version_info < (3, 11))",
        "python3 -c import ensurepip, venv",
        "python3 -m venv .venv",
        f"python {pip} -r requirements.txt -c constraints.txt",  # the virtualenv's python
        f"python {pip} --no-deps -e .",
    ]
    assert not run.failed


# --- The fleet's workflows: a team's CI ------------------------------------------------------------

FLEET_WORKFLOWS = [("preview", "preview"), ("deploy", "up"), ("drift", "drift")]
RUNS_ON = (
    "${{ fromJSON(matrix.runner || vars.LLMFLEET_RUNNER || "
    'format(\'["self-hosted", "llmfleet-{0}"]\', matrix.stack)) }}'
)


# Shipped as an example, outside the fleet's workflows (README, "Deploying to Kubernetes"): its runner
# would need the cluster's kubeconfig, which a team adds with the stack to the matrices.
EXAMPLE_STACKS = {"cluster"}


@pytest.mark.parametrize("name,job", FLEET_WORKFLOWS)
def test_each_stack_runs_on_its_own_runner(name: str, job: str) -> None:
    spec = workflow(name)["jobs"][job]
    # LLMFLEET_RUNNER_<STACK>, else LLMFLEET_RUNNER (one runner for all), else llmfleet-<stack>.
    assert spec["runs-on"] == RUNS_ON
    assert spec["strategy"]["matrix"] == {
        "include": [
            {"stack": stack, "runner": f"${{{{ vars.LLMFLEET_RUNNER_{stack.upper()} }}}}"}
            for stack in llmfleet.stack_names(PROJECT)
            if stack not in EXAMPLE_STACKS
        ]
    }


@pytest.mark.parametrize("name,job", FLEET_WORKFLOWS)
def test_the_fleets_workflows_need_no_setup_action_and_no_test_suite(name: str, job: str) -> None:
    spec = workflow(name)["jobs"][job]
    used = [s["uses"].split("@")[0] for s in steps(spec) if "uses" in s]
    # Debian self-hosted runners: actions/setup-python has no builds for them (README, "CI in 15 minutes").
    assert not {"actions/setup-python", "actions/setup-go"} & set(used)
    runs = "\n".join(s.get("run", "") for s in steps(spec))
    assert ".ci/install" in runs and ".ci/run" not in runs and "pytest" not in runs
    assert "needs" not in spec
    assert spec["timeout-minutes"] <= (120 if name == "deploy" else 20)  # deploy: image pulls and builds


def install_world(root: Path, python3: str | None) -> tuple[Path, Path, list[Path]]:
    """A checkout and a runner whose python3 answers as `python3` says (None: no python3 at all)."""
    workspace = root / "checkout"
    shutil.copytree(PROJECT / ".ci", workspace / ".ci")
    log, bin_dir = root / "log", root / "bin"
    bin_dir.mkdir(parents=True)
    if python3 is not None:
        stub(bin_dir, "python3", python3)
    # `python3 -m venv DIR` makes DIR/bin/python, whose pip only records.
    venv = 'if [ "$1 $2" = "-m venv" ]; then mkdir -p "$3/bin"; cp "$0.pip" "$3/bin/python"; fi'
    if python3 is not None:
        (bin_dir / "python3").write_text((bin_dir / "python3").read_text() + venv + "\n")
        (bin_dir / "python3.pip").write_text('#!/bin/bash\necho "$0 $*" >> "$STUB_LOG"\n')
        (bin_dir / "python3.pip").chmod(0o755)
    return workspace, log, [bin_dir]


INSTALL = {"name": "Install", "run": ".ci/install --policy"}


def test_install_makes_both_virtualenvs_with_the_runners_python3(tmp_path: Path) -> None:
    workspace, log, path = install_world(tmp_path, "")
    run = run_job({"env": {"STUB_LOG": str(log)}, "steps": [INSTALL]}, workspace, {}, path)
    assert run.step("Install").code == 0, run.step("Install").output
    pip = "-m pip install --quiet --disable-pip-version-check"
    assert [line.replace(str(workspace) + "/", "") for line in recorded(log)] == [
        "python3 -c import sys; sys.exit(sys.version_info < (3, 11))",
        "python3 -c import ensurepip, venv",
        "python3 -m venv .venv",
        f".venv/bin/python {pip} -r requirements.txt -c constraints.txt",
        f".venv/bin/python {pip} --no-deps -e .",
        "python3 -m venv policy/venv",
        f"policy/venv/bin/python {pip} -r policy/requirements.txt -c constraints.txt",
    ]


@pytest.mark.parametrize(
    "python3,message",
    [
        # None: not on PATH (the real /usr/bin/python3 is, so the runner's is named by PYTHON instead).
        (None, "::error::no python3.99 on this runner: install Python 3.11 or later (Debian/Ubuntu: apt-get install "
               "python3 python3-venv)"),
        ('[ "$1" = --version ] && { echo "Python 3.9.2"; exit 0; }; [ "$1" = -c ] && exit 1',
         "::error::Python 3.9.2 is older than llmfleet needs (3.11): install a newer python3 on the runner, or set "
         "PYTHON to one"),
        # Debian's python3 without python3-venv: no ensurepip.
        ('[ "$1" = -c ] && [[ "$2" == *ensurepip* ]] && exit 1; [ "$1" = -c ] && exit 0',
         "::error::python3 cannot make virtualenvs (no venv/ensurepip): on Debian/Ubuntu, apt-get install "
         "python3-venv"),
    ],
)  # fmt: skip
def test_install_says_what_the_runner_is_missing(tmp_path: Path, python3: str | None, message: str) -> None:
    workspace, log, path = install_world(tmp_path, python3)
    env = {"STUB_LOG": str(log), **({"PYTHON": "python3.99"} if python3 is None else {})}
    run = run_job({"env": env, "steps": [INSTALL]}, workspace, {}, path)
    step = run.step("Install")
    assert step.code == 1
    assert step.output.strip().splitlines()[-1] == message
    assert not (workspace / ".venv").exists()


def test_a_catalog_change_previews_with_the_runners_python3_and_validates_against_the_other_stacks(
    tmp_path: Path,
) -> None:
    # The preview job as a self-hosted runner runs it: `.ci/install` with the runner's python3 (a
    # stub whose virtualenv's llmfleet is this checkout's), then validate and the model diff for real.
    checkout = tmp_path / "work" / "llmfleet"
    checkout.mkdir(parents=True)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=checkout, check=True)
    for part in ("config", "stacks", ".ci"):
        shutil.copytree(PROJECT / part, checkout / part)
    subprocess.run([*git, "add", "."], cwd=checkout, check=True)
    subprocess.run([*git, "commit", "-qm", "base"], cwd=checkout, check=True)
    base = subprocess.run(["git", "rev-parse", "HEAD"], cwd=checkout, capture_output=True, text=True).stdout.strip()
    bin_dir, log = tmp_path / "bin", tmp_path / "log"
    llmfleet_cmd = f'#!/bin/bash\nPYTHONPATH={PROJECT} exec {sys.executable} -m llmfleet "$@"\n'
    stub(bin_dir, "python3",
         '[ "$1 $2" = "-m venv" ] && mkdir -p "$3/bin" && printf \'#!/bin/bash\\nexit 0\\n\' > "$3/bin/python" '
         f'&& chmod +x "$3/bin/python" && printf %s {shlex.quote(llmfleet_cmd)} > "$3/bin/llmfleet" '
         '&& chmod +x "$3/bin/llmfleet"; exit 0')  # fmt: skip
    job = {**workflow("preview")["jobs"]["preview"]}
    job["env"] = {**job["env"], "STUB_LOG": str(log)}
    context = {"matrix.stack": "dev", "github.event.pull_request.base.sha": base, "vars.PULUMI_BACKEND_URL": "",
               "secrets.PULUMI_ACCESS_TOKEN": "", "secrets.PULUMI_CONFIG_PASSPHRASE": ""}  # fmt: skip

    # A PR that adds an alias: installed, valid, and the diff names it.
    dev = checkout / "config" / "dev.yaml"
    dev.write_text(dev.read_text().replace("aliases:\n", "aliases:\n    added-in-the-pr: qwen2.5:0.5b\n", 1))
    subprocess.run([*git, "commit", "-qam", "alias"], cwd=checkout, check=True)
    started = time.monotonic()
    run = run_job(job, checkout, context, [bin_dir])
    assert [(s.name, s.code) for s in run.steps if s.code is not None] == [
        ("Install", 0), ("Validate", 0), ("Model diff against the base branch", 0)
    ], [s.output for s in run.steps]  # fmt: skip
    assert time.monotonic() - started < 60
    diff = (checkout.parent / f"runner-temp-{checkout.name}" / "model-diff.md").read_text()
    assert "added-in-the-pr" in diff
    assert run.step("Pulumi preview").ran  # a `uses:` step: recorded, not run

    # A PR that moves dev's gateway onto prod's address: validate --stack dev fails, annotated in dev's file.
    stack = checkout / "stacks" / "Pulumi.dev.yaml"
    stack.write_text(stack.read_text().replace("port: 4001\n", "port: 4000\n"))
    run = run_job(job, checkout, context, [bin_dir])
    validate = run.step("Validate")
    assert validate.code == 1
    assert "::error file=stacks/Pulumi.dev.yaml,line=14,col=5::config['llmfleet:gateway'].port: the gateway " \
           "publishes 127.0.0.1:4000 on the local Docker engine" in validate.output  # fmt: skip
    assert "stack 'prod' (stacks/Pulumi.prod.yaml:18:5)" in validate.output
    assert not run.step("Pulumi preview").ran
