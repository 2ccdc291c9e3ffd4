"""bench/compose_fleet.py beyond the bench's own CPU fleet: GPUs as the container resource asks for
them, checked by the built Compose (`docker compose config`), and what one compose project cannot
deploy refused by name."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

import llmfleet
from bench import compose_fleet
from tests import compose_build
from tests.docker_engine import docker_cli

from .fleetdir import BASE_STACK, write_project

GPU_CATALOG = """\
providers:
  vllm:
    kind: vllm
    model: Qwen/Qwen2.5-Coder-7B-Instruct-AWQ
    served_name: qwen-coder-vllm
    gpus: [0, 1]
    tensor_parallel_size: 2
    gpu_memory_utilization: 0.45
  native:
    kind: llama_cpp
    gguf: /models/tiny.gguf
    alias: tiny-native
    gpus: all
    gpu_memory_budget: 0.4
"""


def _config(target: Path) -> dict:
    env = compose_build.compose_env(compose_build.ensure_built(), {"PATH": "/usr/bin:/bin"})
    env[compose_fleet.MASTER_KEY_ENV] = "sk-compose-fleet-test"
    done = subprocess.run([docker_cli(), "compose", "-p", "gpu", "-f", str(target), "config", "--format", "json"],
                          env=env, capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_gpus_reach_compose_as_the_container_resource_asks_for_them(tmp_path: Path) -> None:
    write_project(tmp_path, GPU_CATALOG)
    fleet = llmfleet.load_fleet(tmp_path, "test")
    target = tmp_path / "compose.yaml"
    target.write_text(yaml.safe_dump(compose_fleet.compose_file(fleet), sort_keys=False))
    services = _config(target)["services"]
    assert services["vllm"]["gpus"] == [{"driver": "nvidia", "device_ids": ["0", "1"], "capabilities": ["gpu"]}]
    assert services["vllm"]["ipc"] == "host"
    assert services["vllm"]["environment"]["NVIDIA_VISIBLE_DEVICES"] == "0,1"
    assert services["native"]["gpus"] == [{"count": -1}]  # `gpus: all`, as Compose reads it


def test_a_fleet_on_two_hosts_is_refused(tmp_path: Path) -> None:
    stack = BASE_STACK + (
        "  llmfleet:hosts:\n    local: {}\n    gpu-1: {docker: 'ssh://ops@gpu-1', address: 10.0.0.5}\n"
        "  llmfleet:providers:\n    native: {host: gpu-1}\n"
    )
    write_project(tmp_path, GPU_CATALOG, stack)
    with pytest.raises(compose_fleet.ComposeError, match=r"the fleet uses 2 Docker hosts \(gpu-1, local\)"):
        compose_fleet.compose_file(llmfleet.load_fleet(tmp_path, "test"))
