"""Moving an existing fleet, for real: an Ollama models store that already holds the declared model
(`llmfleet:providers.<name>.ollama_models: {volume: ...}`) deployed by the real Pulumi engine into
the tests' Docker engine. The store is mounted, its model adopted without a pull, nothing of it
deleted by `destroy`; a store that does not exist stops the `up` before any container is created.

The Ollama stand-in (tests/images/ollama) keeps its models in /root/.ollama/standin.json, with a
count of every pull: what the test seeds into the volume and reads back."""

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

pytestmark = [pytest.mark.real_deploy, pytest.mark.timeout(900)]
STORE = "fleet-ollama-store"  # the volume an Ollama installed by hand used: not llmfleet's
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


def store_state(docker: DockerEngine, image: str) -> dict:
    """standin.json as the volume holds it, read by a throwaway container."""
    done = docker.docker("run", "--rm", "--network", "none", "-v", f"{STORE}:/root/.ollama", "--entrypoint", "cat",
                         image, "/root/.ollama/standin.json")  # fmt: skip
    return json.loads(done.stdout)


def test_an_existing_store_is_used_as_it_is_and_kept(project: Project, docker: DockerEngine, images: FleetImages):
    # The store an earlier Ollama filled: the declared model is already there, pulled once.
    docker.docker("volume", "create", STORE)
    seeded = json.dumps({"models": ["tiny-ollama:latest"], "pulls": {"tiny-ollama:latest": 1}})
    docker.docker("run", "--rm", "--network", "none", "-v", f"{STORE}:/root/.ollama", "--entrypoint", "sh",
                  images.ollama, "-c", f"echo '{seeded}' > /root/.ollama/standin.json")  # fmt: skip

    done = project.pulumi("up", "--yes")
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    ollama = project.containers()["ollama"]
    mounts = json.loads(docker.docker("inspect", ollama["id"]).stdout)[0]["Mounts"]
    assert [(m["Type"], m["Name"], m["Destination"]) for m in mounts] == [("volume", STORE, "/root/.ollama")]
    # No volume of llmfleet's own for the models: the store is the one named.
    assert docker.ids("volume", "name=llmfleet-store-ollama-models") == []
    # Adopted, not pulled again: still the one pull of the earlier Ollama.
    assert store_state(docker, images.ollama)["pulls"] == {"tiny-ollama:latest": 1}
    checked = project.llmfleet("drift", "--stack", "store")  # through the front proxy, at the stack's port
    assert checked.returncode == 0, checked.stdout + checked.stderr

    done = project.pulumi("destroy", "--yes", "--skip-preview", timeout=600)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert project.leftovers() == []
    # The store and its model outlive the stack: destroy ran no `ollama rm` and deleted no volume.
    assert docker.ids("volume", f"name={STORE}") != []
    assert store_state(docker, images.ollama)["models"] == ["tiny-ollama:latest"]


def test_a_store_that_does_not_exist_stops_the_up_before_any_container(project: Project, images: FleetImages):
    stack_file = project.root / "stacks" / "Pulumi.store.yaml"
    text = stack_file.read_text()
    stack_file.write_text(text.replace(f"{{volume: {STORE}}}", "{volume: no-such-store}"))
    done = project.pulumi("up", "--yes", timeout=300)
    assert done.returncode != 0
    assert "no-such-store" in done.stdout + done.stderr
    assert "ollama" not in project.containers()  # Docker did not make an empty store of that name either
    assert project.docker.ids("volume", "name=no-such-store") == []
