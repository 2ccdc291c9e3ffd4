"""deploy_fleet under mocks for fleets built in the test: multi-host placement, opt-in
publishing, missing secrets, and a broken catalog stopping the program with its problems."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import llmfleet
from components import FleetSecrets, deploy_fleet

from .fleetdir import BASE_STACK, write_project
from .pulumi_program import plain_strings, run_program

CATALOG = """\
providers:
  ollama:
    kind: ollama
    models: [qwen2.5:0.5b]
  vllm:
    kind: vllm
    port: 8001
    model: Qwen/Qwen2.5-0.5B-Instruct
    served_name: qwen
    gpus: [0, 1]
    tensor_parallel_size: 2
  cloud:
    kind: external
    api: openai
    base_url: https://api.openai.com/v1
    api_key_env: OPENAI_API_KEY
    models: [gpt-4o-mini]
"""
MULTI_HOST = (
    BASE_STACK
    + """\
  llmfleet:hosts:
    edge: {}
    gpu-1: {docker: "ssh://ops@gpu-1", address: 10.0.0.11}
  llmfleet:providers:
    vllm: {host: gpu-1}
    ollama: {publish: true}
"""
)
CONTAINER = "docker:index/container:Container"


def deploy(tmp_path: Path, stack: str, monkeypatch: pytest.MonkeyPatch, api_keys: dict | None = None):
    fleet = llmfleet.load_fleet(write_project(tmp_path, CATALOG, stack), "test")
    secrets = FleetSecrets(
        master_key="sk-x-123456", api_keys={"OPENAI_API_KEY": "sk-openai"} if api_keys is None else api_keys
    )
    return run_program("test", {}, [], program=lambda: deploy_fleet(fleet, secrets, tmp_path), monkeypatch=monkeypatch)


def test_a_docker_provider_per_remote_host_and_remote_api_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = deploy(tmp_path, MULTI_HOST, monkeypatch)
    providers = run.of_type("pulumi:providers:docker")
    assert [(p.name, p.inputs["host"]) for p in providers] == [("host-gpu-1-docker", "ssh://ops@gpu-1")]
    assert {r.name for r in run.of_type("llmfleet:index:DockerHost")} == {"host-edge", "host-gpu-1"}

    vllm = run.one(CONTAINER, "vllm-container").inputs
    # Published on the remote host's address, where the gateway reaches it.
    assert vllm["ports"] == [{"internal": 8001, "external": 8001, "ip": "10.0.0.11"}]
    assert vllm["deviceRequests"] == [{"driver": "nvidia", "deviceIds": ["0", "1"], "capabilities": ["gpu"]}]
    gateway = run.one(CONTAINER, "gateway-container").inputs
    config = yaml.safe_load(gateway["uploads"][0]["content"])
    bases = {d["model_name"]: d["litellm_params"]["api_base"] for d in config["model_list"]}
    assert bases == {"qwen2.5:0.5b": "http://ollama:11434", "qwen": "http://10.0.0.11:8001/v1",
                     "gpt-4o-mini": "https://api.openai.com/v1"}  # fmt: skip
    # Opt-in publishing binds to loopback on the gateway's host.
    assert run.one(CONTAINER, "ollama-container").inputs["ports"] == [
        {"internal": 11434, "external": 11434, "ip": "127.0.0.1"}
    ]


def test_remote_resources_use_the_remote_provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = deploy(tmp_path, MULTI_HOST, monkeypatch)
    opts = run.options["vllm-container"]
    assert opts.provider is not None and opts.provider._name == "host-gpu-1-docker"
    assert run.options["ollama-container"].provider is None  # the local engine
    pull = run.one("pulumi-python:dynamic:Resource", "ollama-model-qwen2.5:0.5b").inputs
    assert "docker_host" not in pull and pull["container"] == "llmfleet-test-ollama"


def test_an_image_follows_its_server_to_another_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine keeps a resource whose provider changes when the Docker provider's diff asks for no
    replacement (it does not for a new host): the image resource carries the host's endpoint, so a
    server moved to another host has its image pulled there (tests/test_two_hosts_real.py)."""
    run = deploy(tmp_path, MULTI_HOST, monkeypatch)
    images = {r.name: r.inputs.get("triggers") for r in run.of_type("docker:index/remoteImage:RemoteImage")}
    assert images == {"vllm-image": {"llmfleet.docker_host": "ssh://ops@gpu-1"},
                      "ollama-image": None, "gateway-image": None, "front-image": None}  # fmt: skip


# The gateway, the front proxy and Ollama on the remote host: what is the same on every host.
GATEWAY_REMOTE = (
    BASE_STACK
    + """\
  llmfleet:hosts:
    gpu-1: {docker: "ssh://ops@gpu-1", address: 10.0.0.11}
  llmfleet:gateway: {host: gpu-1}
  llmfleet:providers:
    vllm: {host: gpu-1}
    ollama: {host: gpu-1}
"""
)


def test_what_runs_on_a_remote_host_is_labelled_with_its_host(tmp_path: Path, monkeypatch) -> None:
    """Every container and an Ollama models volume carry their host's endpoint: moved to another
    host, the gateway's, the front proxy's, an unpublished server's and the volume have nothing else
    that changes, and the engine would keep them where they were (tests/test_two_hosts_real.py moves
    the gateway). The local engine's carry none."""

    def labelled(run, kind: str) -> dict[str, dict[str, str]]:
        return {r.name: {x["label"]: x["value"] for x in r.inputs.get("labels") or []} for r in run.of_type(kind)}

    key = "llmfleet.docker_host"
    run = deploy(tmp_path, GATEWAY_REMOTE, monkeypatch)
    containers = labelled(run, CONTAINER)
    assert {name: labels.get(key) for name, labels in containers.items()} == {
        "gateway-container": "ssh://ops@gpu-1", "front-container": "ssh://ops@gpu-1",
        "vllm-container": "ssh://ops@gpu-1", "ollama-container": "ssh://ops@gpu-1",
    }  # fmt: skip
    assert labelled(run, "docker:index/volume:Volume")["ollama-models"] == {key: "ssh://ops@gpu-1"}
    # On the local engine: no label, so single-host stacks read as before.
    local = deploy(tmp_path / "local", BASE_STACK, monkeypatch)
    assert all(key not in labels for labels in labelled(local, CONTAINER).values())
    assert labelled(local, "docker:index/volume:Volume")["ollama-models"] == {}


def test_external_keys_reach_the_gateway_only_as_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = deploy(tmp_path, BASE_STACK, monkeypatch)
    for resource in run.resources:
        assert not [s for s in plain_strings(resource.inputs) if "sk-openai" in s or "sk-x-123456" in s]


def test_missing_external_key_stops_before_anything_is_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = llmfleet.load_fleet(write_project(tmp_path, CATALOG), "test")
    with pytest.raises(Exception, match=r"no secret for OPENAI_API_KEY .*pulumi config set --secret --path "
                                        r"'llmfleet:apiKeys.OPENAI_API_KEY' --stack test$"):  # fmt: skip
        run_program("test", {}, [], program=lambda: deploy_fleet(fleet, FleetSecrets("k"), tmp_path),
                    monkeypatch=monkeypatch)  # fmt: skip


def test_a_broken_catalog_stops_the_program_with_its_problems(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    broken = tmp_path / "project"
    write_project(broken, CATALOG.replace("served_name: qwen", "served_name: q*"), name="dev")
    monkeypatch.setattr("tests.pulumi_program.PROJECT", broken)
    (broken / "__main__.py").write_text((Path(__file__).parent.parent / "__main__.py").read_text())
    monkeypatch.syspath_prepend(str(Path(__file__).parent.parent))
    with pytest.raises(Exception, match=r"config/catalog.yaml:\d+:\d+: error: providers.vllm.served_name: 'q\*' is a "
                                        r"wildcard[\s\S]*llmfleet validate --stack dev"):  # fmt: skip
        run_program("dev", {"llmfleet:masterKey": "k"}, ["llmfleet:masterKey"], monkeypatch=monkeypatch)


def test_an_image_said_to_run_on_cpu_is_pulled_by_its_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `{image: ..., cpu: true}` only tells the checks; the server runs the reference, without GPUs.
    catalog = "providers:\n  vllm:\n    kind: vllm\n    model: /models/qwen-awq\n    served_name: qwen\n"
    stack = BASE_STACK.replace(
        "    vllm: vllm/vllm-openai:v0.18.0\n", "    vllm: {image: 'vllm/vllm-cpu:v0.18.0', cpu: true}\n"
    )
    stack += "  llmfleet:hosts: {local: {gguf_dir: /srv/models}}\n"
    fleet = llmfleet.load_fleet(write_project(tmp_path, catalog, stack), "test")
    secrets = FleetSecrets(master_key="sk-x-123456")
    run = run_program("test", {}, [], program=lambda: deploy_fleet(fleet, secrets, tmp_path), monkeypatch=monkeypatch)
    assert run.one("docker:index/remoteImage:RemoteImage", "vllm-image").inputs["name"] == "vllm/vllm-cpu:v0.18.0"
    container = run.one(CONTAINER, "vllm-container").inputs
    assert "gpus" not in container and "deviceRequests" not in container
    # The model directory under /models is the host's gguf_dir, mounted, and the directory itself bound.
    volumes = {(v["containerPath"], v.get("hostPath"), v.get("readOnly")) for v in container["volumes"]}
    assert ("/models", "/srv/models", True) in volumes
    assert [(m["target"], m["source"], m["type"]) for m in container["mounts"]] == [
        ("/models/qwen-awq", "/srv/models/qwen-awq", "bind")
    ]


def test_an_ollama_budget_reaches_its_container_as_bytes_on_a_host_that_declares_gpu_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = """\
providers:
  ollama: {kind: ollama, models: [q], gpus: [0], gpu_memory_budget: 0.3}
  vllm: {kind: vllm, model: org/m, served_name: v, gpus: [0], gpu_memory_utilization: 0.45}
  python: {kind: llama_cpp_python, gguf: /models/m.gguf, alias: p, gpus: [0, 1], gpu_memory_budget: 0.1}
  elsewhere: {kind: ollama, port: 11435, models: [r], gpus: all, gpu_memory_budget: 0.5}
"""
    stack = (
        BASE_STACK
        + """\
  llmfleet:hosts:
    local: {gpu_memory_gib: 80, gguf_dir: /srv/models}
    gpu-2: {docker: "ssh://ops@gpu-2", address: 10.0.0.12}
  llmfleet:providers: {elsewhere: {host: gpu-2}}
"""
    )
    fleet = llmfleet.load_fleet(write_project(tmp_path, catalog, stack), "test")
    # Only the host without gpu_memory_gib, and the llama.cpp server, are said to be declarations.
    assert sorted((p.rule, p.path[1]) for p in fleet.warnings) == [
        ("gpu-budget-not-applied", "elsewhere"), ("gpu-budget-not-applied", "python"),
        ("gpu-with-cpu-image", "python"),
    ]  # fmt: skip
    secrets = FleetSecrets(master_key="sk-x-123456")
    run = run_program("test", {}, [], program=lambda: deploy_fleet(fleet, secrets, tmp_path), monkeypatch=monkeypatch)

    def overhead(container: str) -> list[str]:
        envs = plain_strings(run.one(CONTAINER, container).inputs["envs"])
        return [e for e in envs if e.startswith("OLLAMA_GPU_OVERHEAD=")]

    # GPU 0 of 80 GiB: vLLM 0.45 and the llama-cpp-python server's 0.1 beside Ollama's 0.3; it
    # leaves the 0.15 nobody claims, 12 GiB, and so uses at most 24 GiB while they hold theirs.
    assert overhead("ollama-container") == [f"OLLAMA_GPU_OVERHEAD={12 * 2**30}"]
    assert overhead("elsewhere-container") == []
