"""`llmfleet logs`: which Docker CLI command it runs for each name, through which endpoint, and what
it says when it cannot (a stand-in `docker` on PATH records every call, as the workflow tests stub
commands); the containers it looks for are the ones the components create (under the SDK's mocks);
and, against the tests' own Docker engine, a real container's log."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import llmfleet
from components import FleetSecrets, deploy_fleet
from llmfleet._docker_names import container_name
from llmfleet._logs import target

from .fleetdir import BASE_STACK, write_project
from .pulumi_program import run_program

PROJECT = Path(__file__).resolve().parent.parent
CATALOG = """\
providers:
  ollama: {kind: ollama, models: ["qwen2.5:0.5b"]}
  vq: {kind: vllm, model: Qwen/Qwen2.5-0.5B-Instruct, served_name: qwen, gpus: [0]}
  cloud:
    kind: external
    api: openai
    base_url: https://api.openai.com/v1
    api_key_env: OPENAI_API_KEY
    models: [gpt-4o-mini]
"""
STACK = (
    BASE_STACK
    + """\
  llmfleet:hosts:
    edge: {}
    gpu-2: {docker: "ssh://ops@gpu-2", address: 10.0.0.12}
  llmfleet:providers:
    vq: {host: gpu-2}
"""
)
# The stand-in: records its arguments (one JSON list a line) and DOCKER_HOST, answers `container
# inspect` with $INSPECT (or "No such container" when it is "missing"), `ps` with $PS, and `logs`
# with two lines naming the container, exiting $LOGS_EXIT.
DOCKER = """\
#!{python}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps({{"args": args, "DOCKER_HOST": os.environ.get("DOCKER_HOST")}}) + "\\n")
rest = args[2:] if args[:1] == ["--host"] else args
if os.environ.get("UNREACHABLE"):
    sys.exit(print("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
                   file=sys.stderr) or 1)
if rest[:2] == ["container", "inspect"]:
    if os.environ["INSPECT"] == "missing":
        sys.exit(print(f"Error: No such container: {{rest[-1]}}", file=sys.stderr) or 1)
    print(os.environ["INSPECT"])
elif rest[:1] == ["ps"]:
    sys.stdout.write(os.environ["PS"])
elif rest[:1] == ["logs"]:
    print(f"log of {{rest[-1]}}: line 1")
    print(f"log of {{rest[-1]}}: line 2")
    sys.exit(int(os.environ.get("LOGS_EXIT", "0")))
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "project", CATALOG, STACK)


def logs(project: Path, tmp_path: Path, *args: str, docker: bool = True, **env: str):
    """Run `llmfleet logs` as a user would, with the stand-in docker (or none) on PATH."""
    bin_dir = tmp_path / "bin"
    if docker and not (bin_dir / "docker").exists():
        bin_dir.mkdir()
        (bin_dir / "docker").write_text(DOCKER.format(python=sys.executable))
        (bin_dir / "docker").chmod(0o755)
    log = tmp_path / "docker.log"
    log.unlink(missing_ok=True)
    run_env = {"PATH": f"{bin_dir}:/nonexistent", "STUB_LOG": str(log), "INSPECT": "running", "PS": "", **env}
    done = subprocess.run([sys.executable, "-m", "llmfleet", "--project-dir", str(project), "logs", *args],
                          cwd=PROJECT, env=run_env, capture_output=True, text=True, timeout=60)  # fmt: skip
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return done.returncode, done.stdout, done.stderr, calls


def test_a_provider_on_a_remote_host_is_read_over_its_docker_endpoint(project: Path, tmp_path: Path) -> None:
    code, out, err, calls = logs(project, tmp_path, "--stack", "test", "vq", "--tail", "50", "--since", "10m")
    assert (code, err) == (0, "")
    assert out == "log of llmfleet-test-vq: line 1\nlog of llmfleet-test-vq: line 2\n"
    assert [c["args"] for c in calls] == [
        ["--host", "ssh://ops@gpu-2", "container", "inspect", "--format", "{{.State.Status}}", "llmfleet-test-vq"],
        ["--host", "ssh://ops@gpu-2", "logs", "--tail", "50", "--since", "10m", "llmfleet-test-vq"],
    ]


def test_a_provider_on_the_local_engine_honours_docker_host(project: Path, tmp_path: Path) -> None:
    code, _, err, calls = logs(project, tmp_path, "--stack", "test", "ollama", "-f", "-t",
                                 DOCKER_HOST="tcp://10.0.0.5:2376")  # fmt: skip
    assert (code, err) == (0, "")
    assert [c["args"] for c in calls] == [
        ["container", "inspect", "--format", "{{.State.Status}}", "llmfleet-test-ollama"],
        ["logs", "--tail", "200", "--follow", "--timestamps", "llmfleet-test-ollama"],
    ]
    assert {c["DOCKER_HOST"] for c in calls} == {"tcp://10.0.0.5:2376"}  # left to the docker CLI, as pulumi does


def test_the_front_proxy_is_the_fixed_name_on_the_gateways_host(project: Path, tmp_path: Path) -> None:
    code, out, _, calls = logs(project, tmp_path, "--stack", "test", "front-proxy", "--tail", "all")
    assert code == 0 and "log of llmfleet-test-front" in out
    assert calls[-1]["args"] == ["logs", "--tail", "all", "llmfleet-test-front"]


def test_every_gateway_container_is_shown_oldest_first(project: Path, tmp_path: Path) -> None:
    ps = "gateway-container-new\trunning\ngateway-container-old\texited\n"  # docker ps: newest first
    code, out, err, calls = logs(project, tmp_path, "--stack", "test", "gateway", PS=ps)
    assert (code, err) == (0, "")
    assert calls[0]["args"] == ["ps", "--all", "--filter", "label=llmfleet.stack=test", "--filter",
                                "label=llmfleet.provider=gateway", "--format", "{{.Names}}\t{{.State}}"]  # fmt: skip
    assert out == textwrap.dedent("""\
        ==> gateway-container-old (exited) <==
        log of gateway-container-old: line 1
        log of gateway-container-old: line 2
        ==> gateway-container-new (running) <==
        log of gateway-container-new: line 1
        log of gateway-container-new: line 2
    """)


def test_follow_with_two_gateways_follows_the_newest_and_names_the_other(project: Path, tmp_path: Path) -> None:
    ps = "gateway-container-new\trunning\ngateway-container-old\trunning\n"
    code, out, err, calls = logs(project, tmp_path, "--stack", "test", "gateway", "--follow", PS=ps)
    assert code == 0
    assert calls[-1]["args"] == ["logs", "--tail", "200", "--follow", "gateway-container-new"]
    assert err == ("llmfleet logs: following the newest gateway container, gateway-container-new; "
                   "also there: gateway-container-old (running)\n")  # fmt: skip
    assert "==>" not in out


def test_an_unknown_name_is_a_usage_error_with_the_closest_name(project: Path, tmp_path: Path) -> None:
    code, out, err, calls = logs(project, tmp_path, "--stack", "test", "olama")
    assert (code, out, calls) == (64, "", [])
    assert err == "llmfleet logs: error: stack 'test' has no provider 'olama'. Did you mean 'ollama'?\n"
    code, _, err, _ = logs(project, tmp_path, "--stack", "test", "gatway")
    assert code == 64 and err.endswith("Did you mean 'gateway'?\n")


def test_an_external_provider_has_no_log(project: Path, tmp_path: Path) -> None:
    code, _, err, calls = logs(project, tmp_path, "--stack", "test", "cloud")
    assert (code, calls) == (64, [])
    assert err == ("llmfleet logs: error: 'cloud' is an external provider: llmfleet deploys nothing for it, so "
                   "there is no log. Give a local provider, gateway or front-proxy.\n")  # fmt: skip


@pytest.mark.parametrize(("option", "bad"), [("--tail", "-5"), ("--tail", "ten"), ("--since", "yesterday"),
                                             ("--since", "--all")])  # fmt: skip
def test_bad_options_are_usage_errors(project: Path, tmp_path: Path, option: str, bad: str) -> None:
    code, _, err, calls = logs(project, tmp_path, "--stack", "test", "ollama", f"{option}={bad}")
    assert (code, calls) == (64, [])
    assert f"argument {option}: '{bad}' is not a" in err


def test_without_the_docker_cli_it_says_what_to_install(project: Path, tmp_path: Path) -> None:
    code, out, err, _ = logs(project, tmp_path, "--stack", "test", "ollama", docker=False)
    assert (code, out) == (1, "")
    assert err.startswith("llmfleet logs: the docker CLI is not installed here")


def test_a_missing_container_says_the_stack_may_not_be_deployed(project: Path, tmp_path: Path) -> None:
    code, out, err, calls = logs(project, tmp_path, "--stack", "test", "vq", INSPECT="missing")
    assert (code, out, len(calls)) == (1, "", 1)  # no `docker logs` tried
    assert err == (
        "llmfleet logs: provider 'vq': no container llmfleet-test-vq on host 'gpu-2' (ssh://ops@gpu-2). The stack "
        "may not be deployed there (`pulumi up --stack test`), or was destroyed; `docker ps -a --filter "
        "label=llmfleet.stack=test` on that host lists what it has.\n"
    )
    code, _, err, _ = logs(project, tmp_path, "--stack", "test", "gateway", PS="")
    assert code == 1
    assert err.startswith("llmfleet logs: the gateway: no container labelled llmfleet.stack=test and "
                          "llmfleet.provider=gateway on host 'edge' (the local engine: DOCKER_HOST or the default "
                          "socket). The stack may not be deployed there")  # fmt: skip


def test_an_engine_that_cannot_be_reached_is_named_with_dockers_reason(project: Path, tmp_path: Path) -> None:
    code, _, err, _ = logs(project, tmp_path, "--stack", "test", "ollama", UNREACHABLE="1")
    assert code == 1
    assert err == ("llmfleet logs: could not ask the Docker engine on host 'edge' (the local engine: DOCKER_HOST or "
                   "the default socket) about provider 'ollama' (docker exited 1): Cannot connect to the Docker "
                   "daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n")  # fmt: skip


def test_a_failing_docker_logs_exits_1(project: Path, tmp_path: Path) -> None:
    code, _, _, _ = logs(project, tmp_path, "--stack", "test", "ollama", LOGS_EXIT="1")
    assert code == 1


def test_a_stack_with_errors_reads_no_log(project: Path, tmp_path: Path) -> None:
    (project / "config" / "catalog.yaml").write_text(CATALOG + "  oops: {kind: nope}\n")
    code, _, err, calls = logs(project, tmp_path, "--stack", "test", "ollama")
    assert (code, calls) == (1, [])
    assert err.endswith("stack 'test': 1 error; no log was read.\n")


def test_logs_looks_for_exactly_the_containers_the_components_create(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One derivation: the names and labels the program gives its containers are what `target` asks for."""
    fleet = llmfleet.load_fleet(project, "test")
    secrets = FleetSecrets(master_key="sk-x-123456", api_keys={"OPENAI_API_KEY": "sk-openai"})
    run = run_program("test", {}, [], program=lambda: deploy_fleet(fleet, secrets, project), monkeypatch=monkeypatch)
    created = {r.name: r.inputs for r in run.of_type("docker:index/container:Container")}
    for name in ("ollama", "vq", "front-proxy"):
        t = target(fleet, name)
        [inputs] = [i for i in created.values() if i.get("name") == t.container]
        provider = next(label["value"] for label in inputs["labels"] if label["label"] == "llmfleet.provider")
        assert t.container == container_name("test", provider)
        host = run.options[f"{provider}-container"].provider
        assert (host._name if host else None) == ("host-gpu-2-docker" if name == "vq" else None)
    gateway = target(fleet, "gateway")
    assert gateway.container is None and "name" not in created["gateway-container"]  # Pulumi names it
    labels = {f"{label['label']}={label['value']}" for label in created["gateway-container"]["labels"]}
    assert set(gateway.labels) <= labels
    # Nothing else carries the gateway's labels.
    others = [n for n, i in created.items() if n != "gateway-container"
              and set(gateway.labels) <= {f"{x['label']}={x['value']}" for x in i["labels"]}]  # fmt: skip
    assert others == []


def test_on_kubernetes_the_log_is_kubectls_with_the_stacks_context_and_namespace(tmp_path: Path) -> None:
    stack = BASE_STACK + (
        "  llmfleet:target: kubernetes\n"
        "  llmfleet:kubernetes:\n"
        "    {context: gpu-cluster, namespace: llm, kubeconfig: /etc/llmfleet/kubeconfig,\n"
        "     pools: {gpu: {gpus_per_node: 1}}}\n"
        "  llmfleet:providers: {vq: {pool: gpu}}\n"
    )
    project = write_project(tmp_path / "k8s", CATALOG, stack)
    code, _, err, calls = logs(project, tmp_path, "--stack", "test", "vq", "--tail", "50", "--since", "10m")
    assert code == 1 and calls == [], err  # docker is never asked
    assert err.strip() == (
        "llmfleet logs: stack 'test' deploys to Kubernetes: its pods' logs are kubectl's to show. Run: kubectl "
        "--kubeconfig /etc/llmfleet/kubeconfig --context gpu-cluster -n llm logs deployment/vq --tail 50 --since 10m"
    )
    code, _, err, _ = logs(project, tmp_path, "--stack", "test", "front-proxy")
    assert code == 64 and "there is no front proxy" in err, err  # a usage error, as an unknown name is
