"""The fleet deployed by the real Pulumi engine into a real Docker engine, changed, checked and
destroyed: `pulumi preview/up/refresh/destroy` from the CLI built from Go modules
(tests/engine_build.py), the Docker provider talking to a `dockerd` of the tests' own
(tests/docker_engine.py), images built locally (tests/images.py), a `file://` backend and
passphrase secrets. vLLM is a stand-in in its image; Ollama (0.14.1, built by tests/ollama_build.py),
llama-server, llama-cpp-python, LiteLLM and HAProxy are the real servers. The Ollama models are
pulled for real, over the registry protocol, from the tests' registry (tests/ollama_registry.py,
seeded by `ollama push` from the real Ollama on the host), or created from the host's GGUF.

One deployment goes through every phase in order, so each phase is a step of one test: a later
step means nothing once an earlier one has failed."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import engine_build
from tests.docker_engine import DockerEngine, running_engine
from tests.images import FleetImages, ensure_images
from tests.real_deploy import MASTER_KEY, PULLED, Fleet, new_fleet
from tests.rollout import Load
from tests.standins import json_route, openai_models, standins

pytestmark = [pytest.mark.real_deploy, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def images() -> FleetImages:
    """Built (or found) in an engine that reaches Debian's mirror; deployed in an air-gapped one."""
    with running_engine(air_gapped=False) as builder:
        return ensure_images(builder)


@pytest.fixture(scope="module")
def docker(images: FleetImages) -> Iterator[DockerEngine]:
    with running_engine() as engine:
        yield engine


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, docker: DockerEngine, images: FleetImages) -> Iterator[Fleet]:
    fleet = new_fleet(tmp_path_factory.mktemp("real-deploy"), engine_build.ensure_built(), docker, images)
    try:
        yield fleet
    finally:
        try:
            if fleet.project.leftovers():  # a failed step: leave nothing behind for the next run
                fleet.project.pulumi("destroy", "--yes", "--skip-preview", timeout=600)
        finally:
            fleet.close()  # the registry and its network


def ok(done, what: str) -> str:
    assert done.returncode == 0, f"{what} failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout + done.stderr


def ollama_models(fleet: Fleet) -> dict[str, tuple[str, str]]:
    """What the deployed Ollama lists (`/api/tags`, at its published port): name -> (digest, time
    modified). A model pulled or created again gets a new time."""
    answer = httpx.get(f"http://127.0.0.1:{fleet.ports[0]}/api/tags", timeout=10)
    answer.raise_for_status()
    return {m["name"]: (m["digest"], m["modified_at"]) for m in answer.json()["models"] or []}


def registry_pulls(fleet: Fleet) -> dict[str, int]:
    """How often each model's manifest was fetched from the registry: one per `ollama pull`."""
    return {model: fleet.registry.store.manifest_pulls(*PULLED[model]) for model in PULLED}


def changes(fleet: Fleet) -> dict[str, str]:
    """The preview's steps other than `same`, by resource name."""
    steps = fleet.project.preview_steps()
    return {urn.rsplit("::", 1)[1]: op for urn, op in steps.items() if op != "same"}


def test_deploy_change_check_and_destroy(fleet: Fleet) -> None:
    project = fleet.project

    # A preview before anything exists: the policy is not applicable, so it passes without a gateway.
    out = ok(project.pulumi("preview", "--policy-pack", "policy"), "the first preview")
    assert "llmfleet@v0.0.1" in out and "+ 33 to create" in out

    # The first up: everything healthy, then the policy checks the live gateway and probes it.
    started = time.monotonic()
    out = ok(project.pulumi("up", "--yes", "--policy-pack", "policy"), "the first up")
    first_up_s = time.monotonic() - started
    assert "+ 33 created" in out and "mandatory" not in out
    containers = project.containers()
    assert sorted(containers) == ["front", "gateway", "native", "ollama", "python", "vllm"]
    assert all(c["state"] == "running" for c in containers.values()), containers
    # What the engine stored reads back as what the program said: nothing to change.
    ok(project.pulumi("preview", "--expect-no-changes"), "a preview right after up")

    ok(project.llmfleet("drift", "--stack", "e2e", "--backends"), "drift after the first up")
    out = ok(project.llmfleet("probe", "--stack", "e2e"), "probe after the first up")
    assert "every name answers" in out
    # Ollama lists the pulled model under its registry reference and the one created from the host's
    # GGUF file as `name:latest`, its case kept; drift and probe above found both under those names.
    tiny = fleet.pull_ref("tiny")
    listed = ollama_models(fleet)
    assert sorted(listed) == sorted([tiny, "Tiny-House:latest"]), listed
    assert registry_pulls(fleet) == {"tiny": 1, "second": 0}

    # The master key stays secret: not in the state, the outputs or anything any command printed.
    export = ok(project.pulumi("stack", "export"), "stack export")
    assert MASTER_KEY not in export and MASTER_KEY not in "".join(project.log)
    assert MASTER_KEY not in ok(project.pulumi("stack", "output", "--json"), "stack output")

    # A catalog change: one more Ollama model and one more alias. Only the gateway is replaced
    # (new one first), with the wait for it to be healthy, and one model resource is added.
    fleet.write(second_model=True)
    second = fleet.pull_ref("second")
    changed = changes(fleet)
    assert changed == {"gateway-container": "replace", "gateway-healthy": "replace",
                       f"ollama-model-{second}": "create"}, changed  # fmt: skip
    out = ok(project.pulumi("preview"), "the change's preview")
    assert out.index("create replacement") < out.index("delete original")  # create-before-delete
    ollama_before = project.containers()["ollama"]["id"]
    with Load(fleet.url, "tiny-vllm", rate=10) as load:
        time.sleep(3)  # the load runs against the old gateway first
        started = time.monotonic()
        ok(project.pulumi("up", "--yes", "--policy-pack", "policy"), "the change's up")
        change_up_s = time.monotonic() - started
        time.sleep(3)
    assert load.result.sent > 50 and load.result.failures == [], (load.result.sent, load.result.failures[:5])
    assert project.containers()["ollama"]["id"] == ollama_before  # the Ollama container is untouched
    # The new model pulled; no other pulled or created again.
    after = ollama_models(fleet)
    assert {name: after[name] for name in listed} == listed and second in after, after
    assert registry_pulls(fleet) == {"tiny": 1, "second": 1}
    out = ok(project.llmfleet("probe", "--stack", "e2e"), "probe after the change")
    assert "code [alias]: answers" in out and "second:1b [model]: answers" in out

    # A gateway name renamed, its source kept: the same Ollama model serves the new name. Only the
    # gateway changes; the model is neither pulled again nor removed (the model resource is named by
    # what Ollama lists, so no old resource's delete runs `ollama rm` after the new one adopted it).
    fleet.pulled_name = "tiny-chat"
    fleet.write(second_model=True)
    changed = changes(fleet)
    assert changed == {"gateway-container": "replace", "gateway-healthy": "replace"}, changed
    ok(project.pulumi("up", "--yes", "--policy-pack", "policy"), "the rename's up")
    assert ollama_models(fleet) == after
    assert registry_pulls(fleet) == {"tiny": 1, "second": 1}
    out = ok(project.llmfleet("probe", "--stack", "e2e"), "probe after the rename")
    assert "tiny-chat [model]: answers" in out and "chat [alias]: answers" in out and "tiny-ollama" not in out
    ok(project.llmfleet("drift", "--stack", "e2e", "--backends"), "drift after the rename")

    # A model removed from the catalog is removed from Ollama (`ollama rm`), the others kept as they were.
    fleet.write()
    assert changes(fleet) == {"gateway-container": "replace", "gateway-healthy": "replace",
                              f"ollama-model-{second}": "delete"}  # fmt: skip
    ok(project.pulumi("up", "--yes", "--policy-pack", "policy"), "the removal's up")
    assert ollama_models(fleet) == listed

    # A backend stopped by hand. probe: its name fails, exit 2. drift: the gateway still lists it,
    # and the backend's own list could not be read, exit 1 ("could not check"), naming it.
    native = project.containers()["native"]["name"]
    project.docker.docker("stop", native)
    drift = project.llmfleet("drift", "--stack", "e2e", "--backends")
    assert drift.returncode == 1 and "native [llama_cpp]: unreachable" in drift.stdout, drift.stdout
    probe = project.llmfleet("probe", "--stack", "e2e")
    assert probe.returncode == 2 and "tiny-native [model]: degraded" in probe.stdout, probe.stdout
    refresh = ok(project.pulumi("refresh", "--preview-only", "--diff"), "refresh with a backend stopped")
    assert "native-container" in refresh and "mustRun" in refresh, refresh
    # `up` starts it again (the provider sets must_run false on a stopped container's refresh).
    ok(project.pulumi("up", "--yes", "--refresh"), "up after the stop")
    ok(project.llmfleet("drift", "--stack", "e2e", "--backends", "--wait", "60"), "drift after the restart")

    # A GGUF file that is not on the host: the up fails in seconds, naming the file.
    fleet.write(missing_gguf=True)
    started = time.monotonic()
    failed = project.pulumi("up", "--yes")
    assert failed.returncode != 0 and time.monotonic() - started < 60
    assert str(fleet.gguf_dir / "missing.gguf") in failed.stdout + failed.stderr, failed.stdout[-3000:]
    fleet.write()
    ok(project.pulumi("up", "--yes"), "up with the file back")

    # A gateway that lists less than the declared set: the policy fails the up.
    with standins(1) as (short,):
        short.routes["/v1/models"] = json_route(openai_models(["tiny-native"]))
        fleet.write(gateway_url=short.url)
        config = str(policy_config(fleet))
        failed = project.pulumi("up", "--yes", "--policy-pack", "policy", "--policy-pack-config", config)
    assert failed.returncode != 0 and "gateway-drift" in failed.stdout, failed.stdout[-3000:]
    assert "missing (declared, not listed)" in failed.stdout
    fleet.write()

    # Destroy: nothing of the stack is left, and every server was asked to stop before any kill.
    since = time.time()
    started = time.monotonic()
    ok(project.pulumi("destroy", "--yes"), "destroy")
    destroy_s = time.monotonic() - started
    assert project.leftovers() == []
    signals = kill_signals(project.docker, since)
    # SIGTERM, or HAProxy's stop signal SIGUSR1: never a SIGKILL after a grace period ran out.
    assert len(signals) == 6 and all(set(sent) <= {"15", "10"} for sent in signals.values()), signals
    print(f"real deploy: first up {first_up_s:.0f} s, change {change_up_s:.0f} s, destroy {destroy_s:.0f} s, "
          f"{load.result.sent} requests during the change")  # fmt: skip


def policy_config(fleet: Fleet) -> Path:
    """A short wait for the drift policy: the stand-in gateway never comes in sync."""
    path = fleet.project.root / "policy-config.json"
    path.write_text(json.dumps({"gateway-drift": {"waitSeconds": 2, "timeoutSeconds": 2, "probe": False}}))
    return path


def kill_signals(docker: DockerEngine, since: float) -> dict[str, list[str]]:
    """The signals Docker sent each container since `since`, in order."""
    events = docker.docker(
        "events",
        "--since",
        f"{since:.0f}",
        "--until",
        f"{time.time():.0f}",
        "--filter",
        "type=container",
        "--filter",
        "event=kill",
        "--format",
        "{{json .}}",
    ).stdout
    signals: dict[str, list[str]] = {}
    for line in events.splitlines():
        attributes = json.loads(line)["Actor"]["Attributes"]
        signals.setdefault(attributes.get("name", "?"), []).append(attributes.get("signal", "?"))
    return signals
