"""What the engine is told, read from the mock monitor's RegisterResourceRequest (MockResourceArgs
drops it): create timeouts, replacement order, dependencies and property dependencies, GPU
requests, and the program run as a preview (a dry run) as the engine runs it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import llmfleet
from components import FleetSecrets, deploy_fleet

from .fleetdir import BASE_STACK, problems_of, short, write_project
from .pulumi_program import Run, run_program

CONTAINER = "docker:index/container:Container"
IMAGE = "docker:index/remoteImage:RemoteImage"
DYNAMIC = "pulumi-python:dynamic:Resource"
# terraform-provider-docker 4.5: resource_docker_container.go / resource_docker_image.go.
PROVIDER_DEFAULT_S = 20 * 60

CATALOG = """\
providers:
  ollama:
    kind: ollama
    models: [qwen2.5:0.5b, llama3.1:latest]
  vllm:
    kind: vllm
    model: Qwen/Qwen2.5-7B-Instruct-AWQ
    served_name: qwen
    gpus: [0, 1]
    tensor_parallel_size: 2
    gpu_memory_utilization: 0.4
  native:
    kind: llama_cpp
    gguf: /models/m.gguf
    alias: native
    gpus: all
    gpu_memory_budget: 0.3
  pyllama:
    kind: llama_cpp_python
    port: 8002
    gguf: /models/m.gguf
    alias: pyllama
    gpus: [1]
    gpu_memory_budget: 0.2
"""
BUILD_STACK = BASE_STACK.replace(
    "    llama_cpp_python: ghcr.io/abetlen/llama-cpp-python:v0.3.16\n",
    "    llama_cpp_python: {build: docker/llama-cpp-python-cuda, tag: 'fleet/lcp:1', cuda_architectures: '90',"
    " timeout_minutes: 45}\n",
)


def seconds(duration: str) -> int:
    """A Go duration as Pulumi passes it (`2100s`, `1h30m`) in seconds."""
    units = {"h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+)([hms])", duration)
    assert "".join(n + u for n, u in parts) == duration, duration
    return sum(int(n) * units[u] for n, u in parts)


def deploy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stack: str = BUILD_STACK, preview: bool = False) -> Run:
    (tmp_path / "docker" / "llama-cpp-python-cuda").mkdir(parents=True)
    (tmp_path / "docker" / "llama-cpp-python-cuda" / "Dockerfile").write_text("FROM scratch\n")
    fleet = llmfleet.load_fleet(write_project(tmp_path, CATALOG, stack), "test")
    return run_program(
        "test", {}, [], program=lambda: deploy_fleet(fleet, FleetSecrets("sk-x-123456"), tmp_path),
        monkeypatch=monkeypatch, preview=preview,
    )  # fmt: skip


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    return deploy(tmp_path, monkeypatch)


def test_every_container_is_waited_for_by_a_health_wait_computed_from_its_id(run: Run) -> None:
    # Never the provider's own wait (it watches only for `healthy`: a crashing server was waited on
    # for its kind's whole budget); the container's create only creates and starts it.
    waits = run.health_waits()
    budgets = {"ollama": 180, "vllm": 1800, "native": 900, "pyllama": 600, "gateway": 180, "front": 120}
    assert {name: r.inputs["budget_s"] for name, r in waits.items()} == {f"{n}-healthy": b for n, b in budgets.items()}
    for r in run.of_type(CONTAINER):
        name = r.name.removesuffix("-container")
        assert r.inputs["wait"] is False and "waitTimeout" not in r.inputs, name
        assert "create" not in run.request(CONTAINER, r.name).custom_timeouts, name  # the provider's 20 minutes
        wait = waits[f"{name}-healthy"]
        assert wait.inputs["container"] == f"{r.name}-id"  # the mocks' id: a new container waits again
        container_urn = next(u for u, key in run.urns.items() if key == (CONTAINER, r.name))
        assert run.request(DYNAMIC, wait.name).property_dependencies["container"] == [container_urn]
        assert wait.inputs["logs_hint"] == f"`llmfleet logs --stack test {'front-proxy' if name == 'front' else name}`"
    assert waits["vllm-healthy"].inputs["what"] == "provider 'vllm' (vllm)"
    assert (waits["gateway-healthy"].inputs["what"], waits["front-healthy"].inputs["what"]) == (
        "the gateway", "the front proxy")  # fmt: skip


def test_image_pulls_and_the_build_have_their_own_budgets(run: Run) -> None:
    for r in run.of_type(IMAGE):
        create = seconds(run.request(IMAGE, r.name).custom_timeouts["create"])
        if "build" in r.inputs:
            assert create == 45 * 60  # the stack's timeout_minutes
        else:
            assert create >= 3600, r.name


def test_the_stack_chooses_the_cuda_architectures_and_a_change_rebuilds(run: Run) -> None:
    image = run.one(IMAGE, "pyllama-image").inputs
    assert image["build"]["buildArgs"] == {"CUDA_ARCHITECTURES": "90"}
    assert image["triggers"]["CUDA_ARCHITECTURES"] == "90"
    assert set(image["triggers"]) == {"context", "CUDA_ARCHITECTURES"}


def test_servers_are_replaced_delete_first_and_the_gateway_create_first(run: Run) -> None:
    for r in run.of_type(CONTAINER):
        request = run.request(CONTAINER, r.name)
        assert (request.delete_before_replace_defined, request.delete_before_replace) == (
            True,
            r.name != "gateway-container",
        ), r.name
    gateway = run.one(CONTAINER, "gateway-container").inputs
    assert "name" not in gateway and "ports" not in gateway


def test_several_gpus_are_a_device_request_never_a_gpus_string(run: Run) -> None:
    vllm = run.one(CONTAINER, "vllm-container").inputs
    assert "gpus" not in vllm
    assert vllm["deviceRequests"] == [{"driver": "nvidia", "deviceIds": ["0", "1"], "capabilities": ["gpu"]}]
    assert "NVIDIA_VISIBLE_DEVICES=0,1" in vllm["envs"]
    command = vllm["command"]
    assert command[command.index("--tensor-parallel-size") + 1] == "2"
    # One listed GPU is a device request too; `all` stays the gpus string docker/cli understands.
    pyllama = run.one(CONTAINER, "pyllama-container").inputs
    assert (pyllama["deviceRequests"][0]["deviceIds"], "gpus" in pyllama) == (["1"], False)
    native = run.one(CONTAINER, "native-container").inputs
    assert (native["gpus"], "deviceRequests" in native) == ("all", False)


def test_ollama_models_survive_a_container_replacement(run: Run) -> None:
    # The engine re-diffs a dependent of a delete-first replaced resource only through inputs with
    # a property dependency on it (pulumi/pulumi step_generator.go calculateDependentReplacements):
    # the models must be ordered after the container, and computed from nothing of it.
    for r in run.ollama_models():
        request = run.request(DYNAMIC, r.name)
        assert (DYNAMIC, "ollama-healthy") in run.depends_on(DYNAMIC, r.name)  # pulled once it is healthy
        assert not any(deps for deps in request.property_dependencies.values()), request.property_dependencies
        assert r.inputs["container"] == "llmfleet-test-ollama"
    assert {r.inputs["tag"] for r in run.ollama_models()} == {"qwen2.5:0.5b", "llama3.1:latest"}


def test_the_gateway_waits_for_every_backend_and_pull(run: Run) -> None:
    after = run.depends_on(CONTAINER, "gateway-container")
    backends = {(DYNAMIC, f"{n}-healthy") for n in ("ollama", "vllm", "native", "pyllama")}
    pulls = {(DYNAMIC, r.name) for r in run.ollama_models()}
    assert backends | pulls <= after


def test_a_preview_registers_the_same_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    up = deploy(tmp_path / "up", monkeypatch)
    preview = deploy(tmp_path / "preview", monkeypatch, preview=True)
    assert set(preview.requests) == set(up.requests)
    for key, request in preview.requests.items():
        assert request.custom_timeouts == up.requests[key].custom_timeouts, key
        assert request.delete_before_replace == up.requests[key].delete_before_replace, key
        assert request.delete_before_replace_defined == up.requests[key].delete_before_replace_defined, key


def test_a_build_on_an_ssh_host_is_refused_before_deploy(tmp_path: Path) -> None:
    stack = BUILD_STACK + "  llmfleet:hosts:\n    gpu-1: {docker: 'ssh://ops@gpu-1'}\n"
    write_project(tmp_path, CATALOG, stack)
    errors = [short(p) for p in problems_of(tmp_path) if p.rule == "remote-build"]
    assert errors == [
        "7:24 error remote-build | config['llmfleet:images'].llama_cpp_python.build: cannot build 'fleet/lcp:1' on "
        "host 'gpu-1' over ssh://ops@gpu-1: image builds through ssh:// fail in terraform-provider-docker 4.5.0 "
        "(kreuzwerker/terraform-provider-docker#972). Build it on 'gpu-1' (`docker build -t fleet/lcp:1 "
        "docker/llama-cpp-python-cuda`) and set llmfleet:images.llama_cpp_python to 'fleet/lcp:1': a present "
        "image is used, not pulled."
    ]


def test_the_shipped_stacks_give_vllm_its_time(monkeypatch: pytest.MonkeyPatch) -> None:
    run = run_program("prod", {"llmfleet:masterKey": "k", "llmfleet:apiKeys": '{"OLLAMA_API_KEY": "x"}'},
                      ["llmfleet:masterKey", "llmfleet:apiKeys"], monkeypatch=monkeypatch)  # fmt: skip
    vllm = [r for r in run.of_type(CONTAINER) if "--served-model-name" in r.inputs.get("command", [])]
    assert vllm
    for r in vllm:
        # Its own wait, not a provider's create: no 20-minute default cuts it off.
        assert run.health_waits()[r.name.replace("-container", "-healthy")].inputs["budget_s"] == 1800


def test_nothing_is_created_on_a_host_before_its_engine_is_checked(run: Run) -> None:
    # An engine older than API 1.44 refuses the first container; everything else must not exist by then.
    checks = [r for r in run.of_type(DYNAMIC) if r.name.endswith("-engine-check")]
    assert [(r.name, r.inputs["host"]) for r in checks] == [("host-local-engine-check", "local")]
    check = (DYNAMIC, "host-local-engine-check")
    docker_types = ("docker:index/container:Container", "docker:index/remoteImage:RemoteImage",
                    "docker:index/network:Network", "docker:index/volume:Volume")  # fmt: skip
    created = [r for r in run.resources if r.typ in docker_types]
    assert created and all(check in run.depends_on(r.typ, r.name) for r in created), [
        r.name for r in created if check not in run.depends_on(r.typ, r.name)
    ]
