"""`llmfleet logs` with the real Docker CLI against the tests' own Docker engine (tests/docker_engine.py):
containers named and labelled as the components name and label them (llmfleet/_docker_names.py), from
the tests' debootstrap base image (tests/images.py), reached through the stack's `docker` endpoint
and through DOCKER_HOST. Skipped only when the base image's tarball has not been built yet: this
test never builds it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmfleet._docker_names import FRONT_PROXY, GATEWAY, container_labels, container_name
from tests.docker_engine import DockerEngine, docker_cli, running_engine
from tests.images import SUITE, _base
from tests.llama_build import CACHE_ROOT

from .fleetdir import BASE_STACK, write_project

pytestmark = [pytest.mark.real_deploy, pytest.mark.timeout(300)]
PROJECT = Path(__file__).resolve().parent.parent
CATALOG = """\
providers:
  ollama: {kind: ollama, models: ["qwen2.5:0.5b"]}
  never: {kind: ollama, models: ["x:1"]}
"""


@pytest.fixture(scope="module")
def engine() -> DockerEngine:
    if not (CACHE_ROOT / f"debian-{SUITE}-minbase.tar").exists():
        pytest.skip("the debootstrap base is built by `python -m tests.images` (.ci/run); this test builds nothing")
    with running_engine() as engine:
        yield engine


def run_container(engine: DockerEngine, base: str, name: str, labels: dict[str, str], script: str) -> None:
    flags = [f for k, v in labels.items() for f in ("--label", f"{k}={v}")]
    engine.docker("run", "-d", "--name", name, "--network", "none", *flags, base, "sh", "-c", script)


def logs(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    path = f"{Path(docker_cli()).parent}:/usr/bin:/bin"
    return subprocess.run([sys.executable, "-m", "llmfleet", "--project-dir", str(project), "logs", *args],
                          cwd=PROJECT, env={"PATH": path, **(env or {})}, capture_output=True, text=True,
                          timeout=60)  # fmt: skip


def test_logs_of_real_containers_through_the_stacks_endpoint(engine: DockerEngine, tmp_path: Path) -> None:
    base = _base(engine, sys.stderr)  # the imported tarball: present once tests.images has run
    stack = "logs"
    run_container(engine, base, container_name(stack, "ollama"), container_labels(stack, "ollama", "ollama"),
                  "echo first; echo second; echo third; sleep 120")  # fmt: skip
    run_container(engine, base, container_name(stack, FRONT_PROXY), container_labels(stack, FRONT_PROXY, "haproxy"),
                  "echo haproxy ready; sleep 120")  # fmt: skip
    # Two gateways, as during a roll: the old one has exited, the new one runs. Pulumi names them.
    run_container(engine, base, "gateway-container-0ld", container_labels(stack, GATEWAY, "litellm"), "echo old gw")
    time.sleep(1.1)  # creation times a second apart: `docker ps` orders by them
    run_container(engine, base, "gateway-container-n3w", container_labels(stack, GATEWAY, "litellm"),
                  "echo new gw; sleep 120")  # fmt: skip
    # Another stack's gateway on the same engine is not shown.
    run_container(engine, base, "gateway-container-0th", container_labels("other", GATEWAY, "litellm"), "echo no")
    deadline = time.monotonic() + 30
    while "third" not in engine.docker("logs", container_name(stack, "ollama")).stdout:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    engine.docker("wait", "gateway-container-0ld", timeout=30)

    hosts = f"  llmfleet:hosts:\n    box: {{docker: '{engine.host}'}}\n"
    project = write_project(tmp_path, CATALOG, BASE_STACK + hosts, name=stack)
    done = logs(project, "--stack", stack, "ollama")
    assert (done.returncode, done.stdout, done.stderr) == (0, "first\nsecond\nthird\n", "")
    done = logs(project, "--stack", stack, "ollama", "--tail", "1", "--since", "10m")
    assert (done.returncode, done.stdout) == (0, "third\n")
    done = logs(project, "--stack", stack, "front-proxy", "--timestamps")
    assert done.returncode == 0 and done.stdout.endswith(" haproxy ready\n") and done.stdout[:2] == "20"

    done = logs(project, "--stack", stack, "gateway")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == ("==> gateway-container-0ld (exited) <==\nold gw\n"
                           "==> gateway-container-n3w (running) <==\nnew gw\n")  # fmt: skip

    done = logs(project, "--stack", stack, "never")
    assert done.returncode == 1
    assert done.stderr.startswith(f"llmfleet logs: provider 'never': no container {container_name(stack, 'never')} "
                                  f"on host 'box' ({engine.host}). The stack may not be deployed there")  # fmt: skip

    # No endpoint in the stack: the local engine, as DOCKER_HOST names it for `pulumi up` too.
    local = write_project(tmp_path / "local", CATALOG, BASE_STACK, name=stack)
    done = logs(local, "--stack", stack, "ollama", "--tail", "2", env={"DOCKER_HOST": engine.host})
    assert (done.returncode, done.stdout) == (0, "second\nthird\n")
    gone = f"unix://{tmp_path}/no-engine.sock"
    done = logs(local, "--stack", stack, "ollama", env={"DOCKER_HOST": gone})
    assert done.returncode == 1
    assert done.stderr.startswith(
        "llmfleet logs: could not ask the Docker engine on host 'local' (the local engine: DOCKER_HOST or the "
        "default socket) about provider 'ollama' (docker exited 1): "
    )
    assert "Cannot connect to the Docker daemon" in done.stderr
