"""Moving an existing fleet, for real: an Ollama models store that already holds the declared model
(`llmfleet:providers.<name>.ollama_models: {volume: ...}`) deployed by the real Pulumi engine into
the tests' Docker engine. The store is mounted, its model adopted without a pull, nothing of it
deleted by `destroy`; a store that does not exist stops the `up` before any container is created.

The image runs the real Ollama (tests/images/ollama): the store is seeded by that Ollama in a
throwaway container (`ollama create tiny-ollama` from the tests' tiny GGUF), and read back as Ollama
keeps it: the model's manifest under /root/.ollama/models/manifests. The deployed container is
air-gapped (no DNS), so a pull of `tiny-ollama` from Ollama's library would fail the `up`: the
model can only have been adopted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import engine_build
from tests.docker_engine import DockerEngine, running_engine
from tests.images import FleetImages, ensure_images
from tests.litellm_proxy import free_port
from tests.real_deploy import MASTER_KEY, Project, make_project
from tests.tiny_gguf import write_tiny_gguf

pytestmark = [pytest.mark.real_deploy, pytest.mark.timeout(900)]
STORE = "fleet-ollama-store"  # the volume an Ollama installed by hand used: not llmfleet's
MANIFEST = "/root/.ollama/models/manifests/registry.ollama.ai/library/tiny-ollama/latest"
CATALOG = """\
providers:
  ollama:
    kind: ollama
    models: [tiny-ollama]
routes:
  aliases:
    chat: tiny-ollama
"""


def stack(images: FleetImages, volume: str, gateway_port: int) -> str:
    return f"""\
config:
  llmfleet:catalog: config/store.yaml
  llmfleet:gateway: {{bind: 127.0.0.1, port: {gateway_port}}}
  llmfleet:providers:
    ollama: {{ollama_models: {{volume: {volume}}}}}
  llmfleet:images:
    ollama: {images.ollama}
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
    project = make_project(tmp_path / "project", engine_build.ensure_built(), docker)
    project.stack = "store"
    (project.root / "config" / "store.yaml").write_text(CATALOG)
    (project.root / "stacks" / "Pulumi.store.yaml").write_text(stack(images, STORE, free_port()))
    assert project.pulumi("stack", "init").returncode == 0, project.log[-1]
    project.set_secret("llmfleet:masterKey", MASTER_KEY)
    try:
        yield project
    finally:
        if project.leftovers():
            project.pulumi("destroy", "--yes", "--skip-preview", timeout=600)
        docker.docker("volume", "rm", "-f", STORE, check=False)


def stored_manifest(docker: DockerEngine, image: str) -> str:
    """The model's manifest and its time as the volume holds them, read by a throwaway container."""
    done = docker.docker("run", "--rm", "--network", "none", "-v", f"{STORE}:/root/.ollama", "--entrypoint", "sh",
                         image, "-c", 'stat -c %Y "$0" && cat "$0"', MANIFEST, check=False)  # fmt: skip
    return done.stdout if done.returncode == 0 else f"no manifest: {done.stderr.strip()}"


def seed_store(docker: DockerEngine, image: str, gguf_dir: Path) -> None:
    """What an Ollama installed by hand left: the real server in a throwaway container, `ollama
    create tiny-ollama` from the tiny GGUF (one thread, a 4-token cap), then stopped."""
    seeder = "llmfleet-test-store-seeder"
    docker.docker("run", "-d", "--name", seeder, "--network", "none", "-v", f"{STORE}:/root/.ollama",
                  "-v", f"{gguf_dir}:/models:ro", image)  # fmt: skip
    try:
        script = (
            "for i in $(seq 100); do ollama list >/dev/null 2>&1 && break; sleep 0.1; done; "
            "printf 'FROM /models/tiny.gguf\nPARAMETER num_thread 1\nPARAMETER num_predict 4\n' > /tmp/Modelfile"
            " && ollama create tiny-ollama -f /tmp/Modelfile"
        )
        done = docker.docker("exec", seeder, "sh", "-c", script, timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        docker.docker("rm", "-f", seeder, check=False)


def test_an_existing_store_is_used_as_it_is_and_kept(
    project: Project, docker: DockerEngine, images: FleetImages, tmp_path: Path
) -> None:
    # The store an earlier Ollama filled: the declared model is already there.
    docker.docker("volume", "create", STORE)
    (tmp_path / "gguf").mkdir()
    write_tiny_gguf(tmp_path / "gguf" / "tiny.gguf")
    seed_store(docker, images.ollama, tmp_path / "gguf")
    seeded = stored_manifest(docker, images.ollama)
    assert not seeded.startswith("no manifest"), seeded

    done = project.pulumi("up", "--yes")
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    ollama = project.containers()["ollama"]
    mounts = json.loads(docker.docker("inspect", ollama["id"]).stdout)[0]["Mounts"]
    assert [(m["Type"], m["Name"], m["Destination"]) for m in mounts] == [("volume", STORE, "/root/.ollama")]
    # No volume of llmfleet's own for the models: the store is the one named.
    assert docker.ids("volume", "name=llmfleet-store-ollama-models") == []
    # Adopted as it was (a pull from the library could not have worked here): the same manifest,
    # never rewritten.
    assert stored_manifest(docker, images.ollama) == seeded
    checked = project.llmfleet("drift", "--stack", "store")  # through the front proxy, at the stack's port
    assert checked.returncode == 0, checked.stdout + checked.stderr

    done = project.pulumi("destroy", "--yes", "--skip-preview", timeout=600)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert project.leftovers() == []
    # The store and its model outlive the stack: destroy ran no `ollama rm` and deleted no volume.
    assert docker.ids("volume", f"name={STORE}") != []
    assert stored_manifest(docker, images.ollama) == seeded


def test_a_store_that_does_not_exist_stops_the_up_before_any_container(project: Project, images: FleetImages):
    stack_file = project.root / "stacks" / "Pulumi.store.yaml"
    text = stack_file.read_text()
    stack_file.write_text(text.replace(f"{{volume: {STORE}}}", "{volume: no-such-store}"))
    done = project.pulumi("up", "--yes", timeout=300)
    assert done.returncode != 0
    assert "no-such-store" in done.stdout + done.stderr
    assert "ollama" not in project.containers()  # Docker did not make an empty store of that name either
    assert project.docker.ids("volume", "name=no-such-store") == []
