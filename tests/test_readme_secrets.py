"""What the README and `validate` tell people to paste, pasted: the first-deployment block of
"Stacks, their encrypted config and CI" and the missing-secret hints, run by bash with the real
Pulumi CLI (tests/engine_build.py) on a file backend, up to where a deploy would start."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests import engine_build

PROJECT = Path(__file__).resolve().parent.parent
# What needs a Docker host or a gateway, or installs: not run here (tests/test_real_deploy.py deploys).
NOT_HERE = ("python3 -m venv", "pulumi preview", "pulumi up", "curl ")

pytestmark = pytest.mark.timeout(180)


def readme_block(after: str) -> str:
    text = (PROJECT / "README.md").read_text()
    return text[text.index(after) :].split("```sh\n", 1)[1].split("```", 1)[0]


@functools.cache
def engine_bin() -> Path:
    return engine_build.ensure_built()  # hashes the engine's sources: once, not per command


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(PROJECT / "stacks", root / "stacks")
    shutil.copytree(PROJECT / "config", root / "config")
    shutil.copy(PROJECT / "Pulumi.yaml", root / "Pulumi.yaml")
    venv = root / ".venv" / "bin"  # the block runs .venv/bin/llmfleet: the tests' own
    venv.mkdir(parents=True)
    (venv / "llmfleet").symlink_to(Path(sys.executable).parent / "llmfleet")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)  # a checkout, as the block assumes
    return root


def shell(script: str, cwd: Path, stdin: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{engine_bin()}:{os.environ['PATH']}",
        "HOME": str(cwd.parent),
        "PULUMI_HOME": str(cwd.parent / ".pulumi-home"),
        "PULUMI_SKIP_UPDATE_CHECK": "1",
        # The llmfleet of this checkout, whichever one the venv was installed from (a worktree's).
        "PYTHONPATH": str(PROJECT),
    }
    return subprocess.run(["bash", "-e", "-c", script], cwd=cwd, env=env, input=stdin, capture_output=True,
                          text=True, timeout=150)  # fmt: skip


def test_the_first_deployment_block_pastes_as_is(project: Path) -> None:
    block = readme_block("A first deployment of `dev`")
    assert not re.search(r"<[a-z][\w-]*>", block), "a <placeholder> in a block meant to be pasted"
    script = "\n".join(line for line in block.splitlines() if not line.startswith(NOT_HERE))
    done = shell(script, project, stdin="a passphrase for the test\n")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "stack 'dev': ok" in done.stdout and "missing-secret" not in done.stderr
    # What is committed (the block stages it): the salt and the encrypted key, nothing in plain text.
    staged = subprocess.run(["git", "diff", "--cached", "--name-only"], cwd=project, capture_output=True, text=True)
    assert staged.stdout.splitlines() == ["stacks/Pulumi.dev.yaml"]
    stack = yaml.safe_load((project / "stacks" / "Pulumi.dev.yaml").read_text())
    assert stack["encryptionsalt"].startswith("v1:")
    assert set(stack["config"]["llmfleet:masterKey"]) == {"secure"}
    key = shell(
        'PULUMI_BACKEND_URL="file://$PWD/.pulumi-state" PULUMI_CONFIG_PASSPHRASE="a passphrase for the test" '
        "pulumi config get llmfleet:masterKey --stack dev",
        project,
        stdin="",
    )
    assert re.fullmatch(r"sk-[0-9a-f]{48}\n", key.stdout), key.stdout + key.stderr


def test_the_secret_hints_validate_prints_paste_as_is(project: Path) -> None:
    env = 'export PULUMI_BACKEND_URL="file://$PWD/.pulumi-state" PULUMI_CONFIG_PASSPHRASE=p; mkdir -p .pulumi-state\n'
    assert shell(env + "pulumi stack init prod", project, stdin="").returncode == 0
    validate = shell(".venv/bin/llmfleet validate --stack prod", project, stdin="")
    hints = re.findall(r"Run: (.*) \(missing-secret\)$", validate.stderr, re.MULTILINE)
    assert len(hints) == 2, validate.stderr  # the master key and OLLAMA_API_KEY
    assert not any(re.search(r"<[a-z][\w-]*>", hint) for hint in hints), hints
    done = shell(env + "\n".join(hints), project, stdin="ollama-key-for-the-test\n")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ollama-key-for-the-test" not in done.stdout + done.stderr  # read, never echoed
    after = shell(".venv/bin/llmfleet validate --stack prod", project, stdin="")
    assert after.returncode == 0 and "missing-secret" not in after.stderr, after.stderr
    api_key = shell(env + "pulumi config get --path 'llmfleet:apiKeys.OLLAMA_API_KEY' --stack prod", project, "")
    assert api_key.stdout == "ollama-key-for-the-test\n"


def test_pulumi_s_own_hint_for_a_missing_key_is_caught_and_undone(project: Path) -> None:
    # `pulumi config set --secret llmfleet:apiKeys <value>` (what Pulumi suggests for a missing
    # required key) encrypts the whole map as one value; validate's fix must paste as is and lead
    # to one secret per key, set by its path.
    env = 'export PULUMI_BACKEND_URL="file://$PWD/.pulumi-state" PULUMI_CONFIG_PASSPHRASE=p; mkdir -p .pulumi-state\n'
    pulumi_s_hint = "pulumi config set --secret llmfleet:apiKeys whole-map-value --stack prod"
    assert shell(env + "pulumi stack init prod\n" + pulumi_s_hint, project, stdin="").returncode == 0
    stack = yaml.safe_load((project / "stacks" / "Pulumi.prod.yaml").read_text())
    assert set(stack["config"]["llmfleet:apiKeys"]) == {"secure"}  # one encrypted value
    validate = shell(".venv/bin/llmfleet validate --stack prod", project, stdin="")
    assert validate.returncode == 1 and "apiKeys.secure" not in validate.stderr, validate.stderr
    [fix] = re.findall(r"Run: (.*) \(whole-map-secret\)$", validate.stderr, re.MULTILINE)
    assert fix.startswith("pulumi config rm 'llmfleet:apiKeys' --stack prod && ")
    done = shell(env + fix, project, stdin="ollama-key-for-the-test\n")
    assert done.returncode == 0, done.stdout + done.stderr
    stack = yaml.safe_load((project / "stacks" / "Pulumi.prod.yaml").read_text())
    assert set(stack["config"]["llmfleet:apiKeys"]) == {"OLLAMA_API_KEY"}
    assert set(stack["config"]["llmfleet:apiKeys"]["OLLAMA_API_KEY"]) == {"secure"}
    after = shell(".venv/bin/llmfleet validate --stack prod", project, stdin="")
    assert after.returncode == 0 and "OLLAMA_API_KEY" not in after.stderr, after.stderr
    api_key = shell(env + "pulumi config get --path 'llmfleet:apiKeys.OLLAMA_API_KEY' --stack prod", project, "")
    assert api_key.stdout == "ollama-key-for-the-test\n"


def test_a_key_set_without_path_is_caught_and_undone(project: Path) -> None:
    env = 'export PULUMI_BACKEND_URL="file://$PWD/.pulumi-state" PULUMI_CONFIG_PASSPHRASE=p; mkdir -p .pulumi-state\n'
    without_path = "pulumi config set llmfleet:gateway.port 4010 --stack prod"
    assert shell(env + "pulumi stack init prod\n" + without_path, project, stdin="").returncode == 0
    validate = shell(".venv/bin/llmfleet validate --stack prod", project, stdin="")
    [fix] = re.findall(r"Run: (.*) \(set-without-path\)$", validate.stderr, re.MULTILINE)
    assert shell(env + fix, project, stdin="").returncode == 0
    stack = yaml.safe_load((project / "stacks" / "Pulumi.prod.yaml").read_text())
    assert stack["config"]["llmfleet:gateway"]["port"] == 4010 and "llmfleet:gateway.port" not in stack["config"]
    after = shell(".venv/bin/llmfleet validate --stack prod", project, stdin="")
    assert " error" not in after.stderr, after.stderr
