"""`validate` checks a project's stacks against each other where they share a Docker engine: no
address published twice, no container, network or Ollama models volume created twice."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import llmfleet
from llmfleet._checks_stacks import engine_of
from llmfleet._cli import main

from .fleetdir import BASE_STACK, problems_of, short, write_project
from .pulumi_program import PROJECT

CATALOG = """\
providers:
  ollama:
    kind: ollama
    models: [qwen2.5:0.5b]
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def add_stack(root: Path, name: str, extra: str = "", catalog: str = CATALOG) -> None:
    (root / "config").mkdir(parents=True, exist_ok=True)
    (root / "stacks").mkdir(exist_ok=True)
    (root / "config" / f"{name}.yaml").write_text(catalog)
    stack = BASE_STACK.replace("config/catalog.yaml", f"config/{name}.yaml") + extra
    (root / "stacks" / f"Pulumi.{name}.yaml").write_text(stack)


def errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if ": error: " in line]


def test_the_shipped_dev_and_prod_can_share_an_engine(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--project-dir", str(PROJECT), "validate")
    assert code == 0, err
    assert out.splitlines() == [
        # The prod catalog on Kubernetes: a cluster's stack claims nothing on a Docker engine.
        "stack 'cluster': ok (5 providers, 12 models, 6 visible aliases: 18 names in /v1/models, 2 warnings)",
        "stack 'dev': ok (2 providers, 2 models, 1 visible alias: 3 names in /v1/models, 1 warning)",
        "stack 'prod': ok (5 providers, 12 models, 6 visible aliases: 18 names in /v1/models, 3 warnings)",
    ]
    # Both on the local engine (no `docker:`), and so each publishes what the drift job asks for.
    for stack in ("dev", "prod"):
        fleet = llmfleet.load_fleet(PROJECT, stack)
        assert {h.docker for h in fleet.stack.hosts.values()} == {None}
        assert all(llmfleet.backend_urls(fleet).values()), stack


GATEWAY_AT_4000 = "  llmfleet:gateway: {bind: 127.0.0.1, port: 4000}\n"


def test_one_gateway_address_in_two_stacks_is_an_error_naming_both_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_stack(tmp_path, "dev", GATEWAY_AT_4000)
    add_stack(tmp_path, "prod", GATEWAY_AT_4000)
    code, out, err = run(capsys, "--project-dir", str(tmp_path), "validate")
    assert (code, out) == (1, "stack 'dev': ok (1 provider, 1 model, 0 visible aliases: 1 name in /v1/models)\n")
    # Reported once, in the later stack's file, naming the other's line.
    assert err == (
        "stacks/Pulumi.prod.yaml:13:39: error: config['llmfleet:gateway'].port: the gateway publishes "
        "127.0.0.1:4000 on the local Docker engine (hosts without `docker:`), and so does the gateway of stack "
        "'dev' (stacks/Pulumi.dev.yaml:13:39): two stacks sharing an engine cannot both hold it. Give one of them "
        "another port (llmfleet:gateway.port, or the provider's `port:` in its catalog), or deploy it to another "
        "Docker host (llmfleet:hosts.<host>.docker). (stack-port-conflict)\n"
        "stack 'prod': 1 error with another stack on one Docker engine.\n"
    )
    # What CI runs per stack: each stack is checked against the others, reported in its own file.
    code, out, err = run(capsys, "--project-dir", str(tmp_path), "validate", "--stack", "dev")
    assert (code, out) == (1, "")
    assert errors(err) == [
        "stacks/Pulumi.dev.yaml:13:39: error: config['llmfleet:gateway'].port: the gateway publishes "
        "127.0.0.1:4000 on the local Docker engine (hosts without `docker:`), and so does the gateway of stack "
        "'prod' (stacks/Pulumi.prod.yaml:13:39): two stacks sharing an engine cannot both hold it. Give one of "
        "them another port (llmfleet:gateway.port, or the provider's `port:` in its catalog), or deploy it to "
        "another Docker host (llmfleet:hosts.<host>.docker). (stack-port-conflict)"
    ]
    # The default address (no llmfleet:gateway at all) is the same address.
    add_stack(tmp_path, "prod")
    code, _, err = run(capsys, "--project-dir", str(tmp_path), "validate", "--stack", "prod")
    assert code == 1
    assert errors(err)[0].startswith("stacks/Pulumi.prod.yaml:1:1: error: config['llmfleet:gateway'].port: the "
                                     "gateway publishes 127.0.0.1:4000")  # fmt: skip


@pytest.mark.parametrize(
    "dev,prod,clash",
    [
        ("{bind: 127.0.0.1, port: 4000}", "{bind: 127.0.0.1, port: 4001}", False),
        ("{bind: 127.0.0.1, port: 4000}", "{bind: 127.0.0.2, port: 4000}", False),
        ("{bind: 0.0.0.0, port: 4000}", "{bind: 127.0.0.1, port: 4000}", True),  # every interface holds it
        ("{bind: '::', port: 4000}", "{bind: 10.0.0.5, port: 4000}", True),
    ],
)
def test_addresses_clash_on_one_port_when_their_ips_overlap(tmp_path: Path, dev: str, prod: str, clash: bool) -> None:
    add_stack(tmp_path, "dev", f"  llmfleet:gateway: {dev}\n")
    add_stack(tmp_path, "prod", f"  llmfleet:gateway: {prod}\n")
    assert (main(["--project-dir", str(tmp_path), "validate"]) == 1) is clash


@pytest.mark.parametrize(
    "dev,prod,clash",
    [
        ("", "  llmfleet:hosts: {gpu-1: {docker: 'ssh://ops@gpu-1'}}\n", False),
        # Endpoints as written: the default socket spelled out is not known to be the local engine.
        ("  llmfleet:hosts: {box: {docker: 'unix:///var/run/docker.sock'}}\n", "", False),
        ("  llmfleet:hosts: {a: {docker: 'unix:///var/run/docker.sock'}}\n",
         "  llmfleet:hosts: {b: {docker: 'unix:///var/run/docker.sock'}}\n", True),
        ("  llmfleet:hosts: {a: {docker: 'ssh://ops@gpu-1'}}\n", "  llmfleet:hosts: {b: {docker: 'ssh://gpu-1:22'}}\n",
         True),  # the same machine, whoever logs in
        ("  llmfleet:hosts: {a: {docker: 'ssh://gpu-1'}}\n", "  llmfleet:hosts: {b: {docker: 'ssh://gpu-2'}}\n", False),
    ],
)  # fmt: skip
def test_only_stacks_on_one_engine_are_compared(tmp_path: Path, dev: str, prod: str, clash: bool) -> None:
    add_stack(tmp_path, "dev", dev)
    add_stack(tmp_path, "prod", prod)
    assert (main(["--project-dir", str(tmp_path), "validate"]) == 1) is clash


def test_engines_are_compared_by_endpoint() -> None:
    assert engine_of(None) == "local"
    assert engine_of("unix:///var/run/docker.sock") == "unix:///var/run/docker.sock"
    assert engine_of("ssh://ops@GPU-1") == engine_of("ssh://gpu-1:22") == "ssh://gpu-1:22"
    assert engine_of("tcp://10.0.0.5") == "tcp://10.0.0.5:2375"
    assert engine_of("unix:///run/user/1000/docker.sock") == "unix:///run/user/1000/docker.sock"


def test_a_backend_published_by_two_stacks_is_located_at_its_publish_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    published = "  llmfleet:providers:\n    ollama: {publish: true}\n"
    add_stack(tmp_path, "dev", "  llmfleet:gateway: {port: 4001}\n" + published)
    add_stack(tmp_path, "prod", published)
    code, _, err = run(capsys, "--project-dir", str(tmp_path), "validate")
    assert code == 1
    assert errors(err) == [
        "stacks/Pulumi.prod.yaml:14:14: error: config['llmfleet:providers'].ollama.publish: provider 'ollama' "
        "publishes 127.0.0.1:11434 on the local Docker engine (hosts without `docker:`), and so does provider "
        "'ollama' of stack 'dev' (stacks/Pulumi.dev.yaml:15:14): two stacks sharing an engine cannot both hold "
        "it. Give one of them another port (llmfleet:gateway.port, or the provider's `port:` in its catalog), or "
        "deploy it to another Docker host (llmfleet:hosts.<host>.docker). (stack-port-conflict)"
    ]
    # Another port in one catalog: no clash.
    (tmp_path / "config" / "dev.yaml").write_text(CATALOG + "    port: 11435\n")
    assert run(capsys, "--project-dir", str(tmp_path), "validate")[0] == 0


def test_container_and_volume_names_that_coincide_across_stacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # llmfleet-<stack>-<provider>: stack `dev` with provider `eu-ollama` and stack `dev-eu` with
    # provider `ollama` both name a container llmfleet-dev-eu-ollama (and its models volume).
    add_stack(tmp_path, "dev", catalog=CATALOG.replace("  ollama:", "  eu-ollama:"))
    add_stack(tmp_path, "dev-eu", "  llmfleet:gateway: {port: 4001}\n  llmfleet:providers: {ollama: {}}\n")
    code, out, err = run(capsys, "--project-dir", str(tmp_path), "validate")
    assert (code, out) == (1, "stack 'dev': ok (1 provider, 1 model, 0 visible aliases: 1 name in /v1/models)\n")
    engine = "on the local Docker engine (hosts without `docker:`)"
    assert errors(err) == [
        f"stacks/Pulumi.dev-eu.yaml:14:24: error: config['llmfleet:providers'].ollama: provider 'ollama' creates "
        f"the container llmfleet-dev-eu-ollama {engine}, and so does provider 'eu-ollama' of stack 'dev' "
        "(stacks/Pulumi.dev.yaml:2:3): two stacks sharing an engine cannot both hold it. Rename the stack or the "
        "provider (containers are named llmfleet-<stack>-<provider>), or deploy it to another Docker host. "
        "(stack-name-conflict)",
        f"stacks/Pulumi.dev-eu.yaml:14:24: error: config['llmfleet:providers'].ollama: provider 'ollama' creates "
        f"the Ollama models volume llmfleet-dev-eu-ollama-models {engine}, and so does provider 'eu-ollama' of "
        "stack 'dev' (stacks/Pulumi.dev.yaml:2:3): two stacks sharing an engine cannot both hold it. Rename the "
        "stack or the provider (the volume is llmfleet-<stack>-<provider>-models): two Ollama servers on one "
        "volume remove each other's models. (stack-name-conflict)",
    ]
    # A provider the stack file does not place is there through its catalog: located at that line.
    code, _, err = run(capsys, "--project-dir", str(tmp_path), "validate", "--stack", "dev")
    assert code == 1
    assert [e.split(": provider")[0] for e in errors(err)] == ["stacks/Pulumi.dev.yaml:2:3: error: "
                                                               "config['llmfleet:catalog']"] * 2  # fmt: skip


def test_cache_volumes_are_not_claimed() -> None:
    fleet = llmfleet.load_fleet(PROJECT, "prod")
    from llmfleet._checks_stacks import docker_claims

    claims = docker_claims("prod", fleet.catalog, fleet.stack)
    assert sorted((c.kind, c.name) for c in claims if c.kind != "address") == [
        ("container", "llmfleet-prod-front"),
        ("container", "llmfleet-prod-llama-cpp-native"),
        ("container", "llmfleet-prod-llama-cpp-python"),
        ("container", "llmfleet-prod-ollama"),
        ("container", "llmfleet-prod-vllm-qwen"),
        ("network", "llmfleet-prod"),
        ("volume", "llmfleet-prod-ollama-models"),
    ]
    assert sorted(c.name for c in claims if c.kind == "address") == [
        "127.0.0.1:11434", "127.0.0.1:4000", "127.0.0.1:8000", "127.0.0.1:8001", "127.0.0.1:8080"
    ]  # fmt: skip


def test_a_stack_with_errors_is_not_compared_and_the_others_still_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_stack(tmp_path, "a", GATEWAY_AT_4000)
    add_stack(tmp_path, "b", GATEWAY_AT_4000, catalog=CATALOG.replace("qwen2.5:0.5b", "'*'"))
    add_stack(tmp_path, "c", GATEWAY_AT_4000)
    code, _, err = run(capsys, "--project-dir", str(tmp_path), "validate")
    assert code == 1
    assert [e.split(" ")[0] for e in errors(err)] == ["config/b.yaml:4:14:", "stacks/Pulumi.c.yaml:13:39:"]
    assert "of stack 'a' (stacks/Pulumi.a.yaml:13:39)" in errors(err)[1]


def test_within_one_stack_two_hosts_on_one_engine_and_a_provider_named_front(tmp_path: Path) -> None:
    stack = (
        BASE_STACK
        + """\
  llmfleet:hosts:
    gpu-1: {}
    gpu-2: {address: 10.0.0.2}
  llmfleet:providers:
    ollama: {host: gpu-2}
"""
    )
    write_project(tmp_path, CATALOG, stack)
    assert [short(p) for p in problems_of(tmp_path) if p.severity == "error"] == [
        "15:5 error same-engine | config['llmfleet:hosts'].gpu-2: hosts 'gpu-1' and 'gpu-2' are both the local "
        "Docker engine (hosts without `docker:`): each would create the network llmfleet-test there. Give each "
        "host its own `docker:` endpoint, or make them one host.",
    ]
    write_project(tmp_path, CATALOG.replace("  ollama:", "  front:"))
    assert [short(p) for p in problems_of(tmp_path)] == [
        "2:3 error reserved-name | providers.front: 'front' is reserved: the front proxy's container is "
        "llmfleet-<stack>-front. Rename the provider."
    ]


def test_the_readmes_example_is_what_validate_prints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # README, "Stacks sharing a Docker engine": the shipped dev moved back onto prod's port.
    shown = next(line for line in (PROJECT / "README.md").read_text().splitlines()
                 if line.startswith("stacks/Pulumi.dev.yaml:") and "(stack-port-conflict)" in line)  # fmt: skip
    shutil.copytree(PROJECT / "config", tmp_path / "config")
    shutil.copytree(PROJECT / "stacks", tmp_path / "stacks")
    dev = tmp_path / "stacks" / "Pulumi.dev.yaml"
    assert dev.read_text().count("port: 4001\n") == 1
    dev.write_text(dev.read_text().replace("port: 4001\n", "port: 4000\n"))
    code, _, err = run(capsys, "--project-dir", str(tmp_path), "validate", "--stack", "dev")
    assert (code, errors(err)) == (1, [shown])


KUBE = """\
  llmfleet:target: kubernetes
  llmfleet:kubernetes: {context: gpu-cluster, namespace: llm}
"""


def test_two_stacks_in_one_namespace_of_one_cluster_clash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Their Deployments and Services are named for their providers: each would take the other's.
    add_stack(tmp_path, "blue", KUBE)
    add_stack(tmp_path, "green", KUBE)
    code, _, err = run(capsys, "--project-dir", str(tmp_path), "validate")
    assert code == 1
    assert errors(err) == [
        "stacks/Pulumi.green.yaml:14:47: error: config['llmfleet:kubernetes'].namespace: the fleet deploys into the "
        "namespace llm on the cluster of context 'gpu-cluster', and so does the fleet of stack 'blue' "
        "(stacks/Pulumi.blue.yaml:14:47): two stacks sharing a cluster cannot both hold it. Give one of them another "
        "namespace (llmfleet:kubernetes.namespace): its Deployments and Services are named for its providers, and "
        "the gateway's Service is `gateway`. (stack-name-conflict)"
    ]
    # Another namespace, or another cluster's context: no clash; nor with a Docker stack.
    add_stack(tmp_path, "green", KUBE.replace("namespace: llm", "namespace: llm-green"))
    add_stack(tmp_path, "red", KUBE.replace("context: gpu-cluster", "context: other-cluster"))
    add_stack(tmp_path, "docker")
    code, _, err = run(capsys, "--project-dir", str(tmp_path), "validate")
    assert code == 0, err
