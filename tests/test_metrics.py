"""`drift --metrics-file` and `probe --metrics-file`: a Prometheus text-format file for node_exporter's
textfile collector, read back with prometheus_client's own parser; written atomically; a path that
cannot be written changes nothing but a message."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from llmfleet._cli import main
from llmfleet._metrics import escape_label, metrics_text
from llmfleet._report import CheckResult, Report, Verdict

from .fleetdir import write_project
from .litellm_proxy import free_port
from .standins import Route, StandIn, json_route, openai_models, standins

CATALOG = """\
providers:
  ollama:
    kind: ollama
    models: [qwen2.5:0.5b, llama3.1:latest]
routes:
  aliases:
    chat: llama3.1:latest
"""
KEY = "sk-metrics-test-0a1b2c3d4e"


@pytest.fixture(autouse=True)
def master_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITELLM_MASTER_KEY", KEY)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "project", CATALOG)


@pytest.fixture
def gateway() -> StandIn:
    with standins(1) as (server,):
        yield server


def check(command: str, project: Path, url: str, metrics: Path, capsys: pytest.CaptureFixture[str]):
    code = main(["--project-dir", str(project), command, "--stack", "test", "--url", url, "--timeout", "0.5",
                 "--deadline", "3", "--metrics-file", str(metrics)])  # fmt: skip
    out, err = capsys.readouterr()
    return code, out, err


def samples(path: Path) -> dict[tuple[str, frozenset], float]:
    """Every sample of the file, parsed as Prometheus would: (name, labels) -> value."""
    found = {}
    for family in text_string_to_metric_families(path.read_text()):
        assert family.type == "gauge", family.name
        for s in family.samples:
            assert s.timestamp is None  # the textfile collector refuses timestamps
            found[(s.name, frozenset(s.labels.items()))] = s.value
    return found


def value(found: dict, name: str, **labels: str) -> float:
    return found[(name, frozenset({"stack": "test", **labels}.items()))]


def test_drift_in_sync(project: Path, gateway: StandIn, tmp_path: Path, capsys) -> None:
    gateway.routes["/v1/models"] = json_route(openai_models(["qwen2.5:0.5b", "llama3.1:latest", "chat"]))
    metrics = tmp_path / "llmfleet_drift_test.prom"
    before = time.time()
    code, out, _ = check("drift", project, gateway.url, metrics, capsys)
    assert code == 0 and out.startswith("stack 'test': in sync")
    found = samples(metrics)
    assert value(found, "llmfleet_drift_in_sync") == 1
    assert value(found, "llmfleet_drift_exit_code") == 0
    assert before <= value(found, "llmfleet_drift_last_run_timestamp_seconds") <= time.time()
    assert value(found, "llmfleet_drift_declared_names") == 3
    assert value(found, "llmfleet_drift_missing_names", check="gateway", kind="litellm") == 0
    assert value(found, "llmfleet_drift_undeclared_names", check="gateway", kind="litellm") == 0
    assert value(found, "llmfleet_drift_checks", verdict="in sync") == 1
    assert value(found, "llmfleet_drift_checks", verdict="drift") == 0  # every verdict, zeros too
    assert value(found, "llmfleet_drift_check_passing", check="gateway", kind="litellm") == 1
    assert value(found, "llmfleet_drift_check_verdict", check="gateway", kind="litellm", verdict="in sync") == 1
    assert (metrics.stat().st_mode & 0o777) == 0o644  # node_exporter runs as its own user
    assert [p.name for p in tmp_path.iterdir() if p.name != "project"] == [metrics.name]  # no temporary left


def test_drift_counts_missing_and_undeclared(project: Path, gateway: StandIn, tmp_path: Path, capsys) -> None:
    gateway.routes["/v1/models"] = json_route(openai_models(["qwen2.5:0.5b", "surprise", "other"]))
    metrics = tmp_path / "drift.prom"
    code, _, _ = check("drift", project, gateway.url, metrics, capsys)
    assert code == 2
    found = samples(metrics)
    assert value(found, "llmfleet_drift_in_sync") == 0
    assert value(found, "llmfleet_drift_exit_code") == 2
    assert value(found, "llmfleet_drift_missing_names", check="gateway", kind="litellm") == 2  # llama3.1, chat
    assert value(found, "llmfleet_drift_undeclared_names", check="gateway", kind="litellm") == 2
    assert value(found, "llmfleet_drift_check_verdict", check="gateway", kind="litellm", verdict="drift") == 1
    assert value(found, "llmfleet_drift_check_passing", check="gateway", kind="litellm") == 0


def test_drift_that_could_not_check(project: Path, tmp_path: Path, capsys) -> None:
    metrics = tmp_path / "drift.prom"
    code, _, _ = check("drift", project, f"http://127.0.0.1:{free_port()}", metrics, capsys)
    assert code == 1
    found = samples(metrics)
    assert (value(found, "llmfleet_drift_in_sync"), value(found, "llmfleet_drift_exit_code")) == (0, 1)
    assert value(found, "llmfleet_drift_checks", verdict="unreachable") == 1
    assert value(found, "llmfleet_drift_check_verdict", check="gateway", kind="litellm", verdict="unreachable") == 1


def test_a_stack_that_does_not_load_still_writes_its_run(project: Path, tmp_path: Path, capsys) -> None:
    (project / "config" / "catalog.yaml").write_text("providers: {}\n")
    metrics = tmp_path / "drift.prom"
    code, _, err = check("drift", project, "http://127.0.0.1:9", metrics, capsys)
    assert code == 1 and "the gateway was not checked" in err
    found = samples(metrics)
    assert value(found, "llmfleet_drift_exit_code") == 1
    assert value(found, "llmfleet_drift_in_sync") == 0
    assert abs(value(found, "llmfleet_drift_last_run_timestamp_seconds") - time.time()) < 60
    assert {name for name, _ in found} == {"llmfleet_drift_exit_code", "llmfleet_drift_in_sync",
                                           "llmfleet_drift_last_run_timestamp_seconds"}  # fmt: skip


def litellm_answer(deployment: str, group: str) -> Route:
    route = json_route({"choices": [{"message": {"content": "x"}}]})
    route.headers = {"x-litellm-model-id": deployment, "x-litellm-model-group": group,
                     "x-litellm-attempted-fallbacks": "0"}  # fmt: skip
    return route


def test_probe_per_name_status(project: Path, gateway: StandIn, tmp_path: Path, capsys) -> None:
    def answer(body: dict) -> Route:
        if body["model"] == "qwen2.5:0.5b":
            return json_route({"error": {"message": "litellm.APIConnectionError: refused"}}, status=500)
        return litellm_answer("llama3.1:latest@ollama", body["model"])

    gateway.posts["/v1/chat/completions"] = answer
    metrics = tmp_path / "probe.prom"
    code, _, _ = check("probe", project, gateway.url, metrics, capsys)
    assert code == 2
    found = samples(metrics)
    assert value(found, "llmfleet_probe_all_answer") == 0
    assert value(found, "llmfleet_probe_exit_code") == 2
    assert value(found, "llmfleet_probe_failing_names") == 1
    assert value(found, "llmfleet_probe_check_passing", check="qwen2.5:0.5b", kind="model") == 0
    assert value(found, "llmfleet_probe_check_passing", check="llama3.1:latest", kind="model") == 1
    assert value(found, "llmfleet_probe_check_verdict", check="chat", kind="alias", verdict="answers") == 1
    assert value(found, "llmfleet_probe_check_verdict", check="qwen2.5:0.5b", kind="model", verdict="fails") == 1


def test_an_unwritable_metrics_file_is_said_and_the_exit_code_kept(
    project: Path, gateway: StandIn, tmp_path: Path, capsys
) -> None:
    gateway.routes["/v1/models"] = json_route(openai_models(["qwen2.5:0.5b"]))  # drift: 2
    for unwritable in (tmp_path / "missing-dir" / "drift.prom", tmp_path):
        code, out, err = check("drift", project, gateway.url, unwritable, capsys)
        assert code == 2 and out.startswith("stack 'test': drift")
        assert err.startswith(f"cannot write the metrics to {unwritable}: ")
        assert err.endswith("; they were not written\n") and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]  # no temporary file left behind


def test_the_file_is_replaced_never_rewritten_in_place(project: Path, gateway: StandIn, tmp_path: Path, capsys) -> None:
    gateway.routes["/v1/models"] = json_route(openai_models(["qwen2.5:0.5b", "llama3.1:latest", "chat"]))
    metrics = tmp_path / "drift.prom"
    metrics.write_text("old\n")
    held = os.open(metrics, os.O_RDONLY)  # a reader that opened the old file keeps reading the old file
    try:
        assert check("drift", project, gateway.url, metrics, capsys)[0] == 0
        assert os.read(held, 100) == b"old\n"
    finally:
        os.close(held)
    assert value(samples(metrics), "llmfleet_drift_in_sync") == 1


def test_label_values_are_escaped_per_the_exposition_format() -> None:
    odd = 'a"b\\c\nd'
    assert escape_label(odd) == 'a\\"b\\\\c\\nd'
    report = Report('st"ack', "http://gw", [odd], [CheckResult(odd, "model", None, Verdict.FAILS)], command="probe")
    text = metrics_text("probe", 'st"ack', 2, 1700000000.0, report)
    parsed = {
        (s.name, frozenset(s.labels.items())): s.value for f in text_string_to_metric_families(text) for s in f.samples
    }
    assert (
        parsed[("llmfleet_probe_check_passing", frozenset({"stack": 'st"ack', "check": odd, "kind": "model"}.items()))]
        == 0
    )
    assert parsed[("llmfleet_probe_last_run_timestamp_seconds", frozenset({"stack": 'st"ack'}.items()))] == 1700000000


def test_the_readme_alert_rules_use_only_metrics_the_checks_write(
    project: Path, gateway: StandIn, tmp_path: Path, capsys
) -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    [rules] = [b for b in re.findall(r"```yaml\n(.*?)```", readme, re.DOTALL) if "alert: Llmfleet" in b]
    exprs = [r["expr"] for g in yaml.safe_load(rules)["groups"] for r in g["rules"]]
    used = {name for expr in exprs for name in re.findall(r"llmfleet_[a-z_]+", expr)}
    gateway.routes["/v1/models"] = json_route(openai_models(["qwen2.5:0.5b", "llama3.1:latest", "chat"]))
    gateway.posts["/v1/chat/completions"] = lambda body: litellm_answer(f"{body['model']}@ollama", body["model"])
    written = set()
    for command in ("drift", "probe"):
        check(command, project, gateway.url, tmp_path / f"{command}.prom", capsys)
        written |= {name for name, _ in samples(tmp_path / f"{command}.prom")}
    assert used and used <= written, used - written
    # The example's cron lines write where the collector reads: *.prom files.
    paths = re.findall(r"--metrics-file (/\S+)", readme)
    assert len(paths) == 2 and all(path.endswith(".prom") for path in paths), paths
