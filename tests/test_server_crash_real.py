"""A server that crashes at start fails `pulumi up` within about a minute, saying why; one that is
only slow to load is waited for. The real Pulumi engine and Docker provider, the tests' own dockerd
(as tests/test_real_deploy.py), the health wait of components/docker/container_health.py:

- vLLM given an option it does not know through the catalog's `args`: the stand-in refuses it as
  vLLM's argparse does (exit 2, "vllm: error: unrecognized arguments: ...");
- vLLM running out of GPU memory a few seconds into every start: a crash loop (exit 1);
- the real llama-server given a file that is not a GGUF (exit 1);
- vLLM loading its weights for longer than a crash takes to be seen: the `up` waits and succeeds.

Each failing `up` must name the provider, the exit code and the log's lines, within a minute; the
whole fleet's `up` is what the time covers (the engine, the network, the images, the front proxy).
One deployment goes through the cases in order, each a change of the catalog."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import engine_build
from tests.docker_engine import DockerEngine, running_engine
from tests.images import FleetImages, ensure_images
from tests.litellm_proxy import free_port
from tests.real_deploy import MASTER_KEY, Project, make_project

pytestmark = [pytest.mark.real_deploy, pytest.mark.timeout(1200)]
STACK = "crash"
CRASH_WITHIN_S = 60
SLOW_LOAD_S = 75  # beyond the minute in which a crash is reported: a slow start is not one

VLLM = """\
  vllm:
    kind: vllm
    port: {port}
    model: Qwen/Qwen2.5-0.5B-Instruct
    served_name: tiny-vllm
"""
NATIVE = """\
  native:
    kind: llama_cpp
    port: {port}
    gguf: /models/notes.gguf
    alias: tiny-native
"""


def stack(images: FleetImages, gguf_dir: Path, gateway_port: int) -> str:
    return f"""\
config:
  llmfleet:catalog: config/crash.yaml
  llmfleet:hosts:
    local: {{gguf_dir: {gguf_dir}}}
  llmfleet:gateway: {{bind: 127.0.0.1, port: {gateway_port}}}
  llmfleet:images:
    vllm: {{image: {images.vllm}, cpu: true}}
    llama_cpp: {images.llama_server}
    litellm: {images.litellm}
    haproxy: {images.haproxy}
"""


@pytest.fixture(scope="module")
def images() -> FleetImages:
    with running_engine(air_gapped=False) as builder:
        return ensure_images(builder)


@pytest.fixture(scope="module")
def docker(images: FleetImages) -> Iterator[DockerEngine]:
    with running_engine() as engine:
        yield engine


@pytest.fixture
def project(tmp_path: Path, docker: DockerEngine, images: FleetImages) -> Iterator[Project]:
    gguf_dir = tmp_path / "gguf"
    gguf_dir.mkdir()
    # A file named like a model that is not one: what a truncated download or a wrong path leaves.
    (gguf_dir / "notes.gguf").write_text("these are notes, not a model\n")
    project = make_project(tmp_path / "project", engine_build.ensure_built(), docker)
    project.stack = STACK
    (project.root / "stacks" / f"Pulumi.{STACK}.yaml").write_text(stack(images, gguf_dir, free_port()))
    assert project.pulumi("stack", "init").returncode == 0, project.log[-1]
    project.set_secret("llmfleet:masterKey", MASTER_KEY)
    try:
        yield project
    finally:
        if project.leftovers():
            project.pulumi("destroy", "--yes", "--skip-preview", timeout=600)


def write_catalog(project: Project, *providers: str) -> None:
    (project.root / "config" / "crash.yaml").write_text("providers:\n" + "".join(providers))


def failed_up(project: Project) -> tuple[float, str]:
    started = time.monotonic()
    done = project.pulumi("up", "--yes", timeout=600)
    took = time.monotonic() - started
    out = done.stdout + done.stderr
    assert done.returncode != 0, out[-3000:]
    # What the person running `up` reads (shown with -s): from the message to its hint.
    if "crashed at start" in out:
        excerpt = out[out.index("crashed at start") - 40 :]
        print(excerpt[: excerpt.find("shows the whole log") + 20], f"\n({took:.0f} s)\n")
    return took, out


def test_crashes_fail_the_up_within_a_minute_and_a_slow_start_is_waited_for(project: Project) -> None:
    vllm_port, native_port = free_port(), free_port()
    timings: dict[str, float] = {}

    # 1. An option vLLM does not know: it exits at once with argparse's usage error, and again at
    #    each restart.
    write_catalog(project, VLLM.format(port=vllm_port) + "    args: [--bogus-flag]\n")
    took, out = failed_up(project)
    timings["vllm bad argument"] = took
    assert "provider 'vllm' (vllm) crashed at start: container llmfleet-crash-vllm on host 'local'" in out, out[-4000:]
    assert "exited with code 2" in out
    assert "vllm: error: unrecognized arguments: --bogus-flag" in out
    assert "`llmfleet logs --stack crash vllm` shows the whole log" in out
    assert took < CRASH_WITHIN_S, (took, out[-3000:])
    assert "gateway" not in project.containers()  # it waits for its backends: never started

    # 2. Out of GPU memory three seconds into every start: a crash loop.
    write_catalog(project, VLLM.format(port=vllm_port) + "    env: {STANDIN_CRASH_AFTER_S: '3'}\n")
    took, out = failed_up(project)
    timings["vllm crash loop"] = took
    assert "provider 'vllm' (vllm) crashed at start" in out, out[-4000:]
    assert "exited with code 1" in out
    assert "torch.OutOfMemoryError: CUDA out of memory." in out
    assert took < CRASH_WITHIN_S, (took, out[-3000:])

    # 3. The real llama-server given a file that is not a GGUF.
    write_catalog(project, NATIVE.format(port=native_port))
    took, out = failed_up(project)
    timings["llama-server not a GGUF"] = took
    assert "provider 'native' (llama_cpp) crashed at start: container llmfleet-crash-native" in out, out[-4000:]
    assert "exited with code 1" in out
    # llama-server's own lines: what is wrong with the file, and which file.
    assert "invalid magic characters" in out and "failed to load model from /models/notes.gguf" in out
    assert took < CRASH_WITHIN_S, (took, out[-3000:])

    # 4. Slow, not broken: vLLM loads for longer than a crash takes to be reported, then serves.
    write_catalog(project, VLLM.format(port=vllm_port) + f"    env: {{STANDIN_LOAD_S: '{SLOW_LOAD_S}'}}\n")
    started = time.monotonic()
    done = project.pulumi("up", "--yes", timeout=900)
    timings["vllm slow load (succeeds)"] = time.monotonic() - started
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-3000:]}"
    assert timings["vllm slow load (succeeds)"] >= SLOW_LOAD_S
    containers = project.containers()
    assert sorted(containers) == ["front", "gateway", "vllm"] and all(
        c["state"] == "running" for c in containers.values()
    ), containers
    checked = project.llmfleet("probe", "--stack", STACK)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # Nothing any command printed holds the master key.
    assert MASTER_KEY not in "".join(project.log)

    done = project.pulumi("destroy", "--yes", timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]
    assert project.leftovers() == []
    print("crash and slow starts: " + ", ".join(f"{what} {s:.0f} s" for what, s in timings.items()))
