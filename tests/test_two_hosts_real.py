"""The real-deploy fleet across two Docker hosts with the real Pulumi engine: the gateway's host is the
tests' engine, the other a second engine of the tests' own reached as users reach a remote host,
`docker: ssh://user@127.0.0.1:<port>` through an sshd on loopback (tests/ssh_host.py). The Docker
provider, each host's engine check, the health waits and Ollama's `docker exec` all go over that ssh.

One deployment goes through every phase in order: a later step means nothing once an earlier one
has failed."""

from __future__ import annotations

import ipaddress
import json
import re
import time
from collections.abc import Iterator

import pytest
import yaml

from tests import engine_build
from tests.docker_engine import DockerEngine, running_engine
from tests.images import FleetImages, ensure_images
from tests.litellm_proxy import free_port
from tests.real_deploy import MASTER_KEY, make_project
from tests.ssh_host import SshHost, running_sshd
from tests.two_hosts import (
    REMOTE_DATA_ROOT,
    SshProject,
    TwoHostFleet,
    copy_images,
    machine_address,
    next_pool,
)


@pytest.fixture(scope="module")
def images() -> FleetImages:
    """Built (or found) in an engine that reaches Debian's mirror; deployed in air-gapped ones."""
    with running_engine(air_gapped=False) as builder:
        return ensure_images(builder)


@pytest.fixture(scope="module")
def local(images: FleetImages) -> Iterator[DockerEngine]:
    with running_engine() as engine:
        yield engine


@pytest.fixture(scope="module")
def remote(local: DockerEngine, images: FleetImages) -> Iterator[DockerEngine]:
    """The second engine: its own data root and address pool, the test images copied from the first."""
    with running_engine(data_root=REMOTE_DATA_ROOT, address_pool=next_pool()) as engine:
        started = time.monotonic()
        copied = copy_images(local, engine, images)
        print(f"two hosts: {len(copied)} images copied to the second engine in {time.monotonic() - started:.0f} s")
        yield engine


@pytest.fixture(scope="module")
def ssh(tmp_path_factory: pytest.TempPathFactory, remote: DockerEngine) -> Iterator[SshHost]:
    with running_sshd(tmp_path_factory.mktemp("sshd"), remote.host) as host:
        yield host


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory, local: DockerEngine, remote: DockerEngine, ssh: SshHost,
    images: FleetImages,
) -> Iterator[TwoHostFleet]:  # fmt: skip
    root = tmp_path_factory.mktemp("two-hosts")
    base = make_project(root / "project", engine_build.ensure_built(), local)
    project = SshProject(root=base.root, engine_bin=base.engine_bin, docker=local, ssh=ssh)
    fleet = TwoHostFleet(project, images, root, ssh, machine_address())
    fleet.write(remote=("ollama", "native"))
    ok(project.pulumi("stack", "init"), "stack init")
    project.set_secret("llmfleet:masterKey", MASTER_KEY)
    try:
        yield fleet
    finally:
        if project.leftovers() or project.on(remote).leftovers():  # a failed step: leave nothing behind
            project.pulumi("destroy", "--yes", "--skip-preview", timeout=600)


def ok(done, what: str) -> str:
    assert done.returncode == 0, f"{what} failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout + done.stderr


def gateway_bases(project: SshProject) -> dict[str, str]:
    """Each model's api_base in the config the running gateway was given."""
    gateway = project.containers()["gateway"]["name"]
    config = yaml.safe_load(project.docker.docker("exec", gateway, "cat", "/app/config.yaml").stdout)
    return {d["model_name"]: d["litellm_params"]["api_base"] for d in config["model_list"]}


@pytest.mark.real_deploy
@pytest.mark.timeout(1800)
def test_two_hosts_deploy_move_and_destroy(fleet: TwoHostFleet, local: DockerEngine, remote: DockerEngine) -> None:
    project = fleet.project
    on_remote = project.on(remote)

    started = time.monotonic()
    out = ok(project.pulumi("up", "--yes", "--policy-pack", "policy"), "the first up")
    first_up_s = time.monotonic() - started
    assert "mandatory" not in out
    # Providers on both hosts; the gateway and the front proxy on the gateway's host only.
    assert sorted(project.containers()) == ["front", "gateway", "python", "vllm"]
    assert sorted(on_remote.containers()) == ["native", "ollama"]
    assert all(c["state"] == "running" for c in [*project.containers().values(), *on_remote.containers().values()])
    # Everything on the remote host went through the sshd: it let the deploy's docker clients in.
    assert fleet.ssh.connections() > 0

    # The gateway (a container on the first engine) reaches the remote backends at the remote host's
    # address and published ports, the local ones by their names on the fleet network.
    bases = gateway_bases(project)
    assert bases == {
        "tiny-house": fleet.endpoint("ollama"),
        "tiny-native": fleet.endpoint("native") + "/v1",
        "tiny-vllm": f"http://vllm:{fleet.ports[1]}/v1",
        "tiny-python": f"http://python:{fleet.ports[3]}/v1",
    }, bases
    ok(project.pulumi("preview", "--expect-no-changes"), "a preview right after up")
    ok(project.llmfleet("drift", "--stack", "e2e", "--backends"), "drift after the first up")
    out = ok(project.llmfleet("probe", "--stack", "e2e", "--backends"), "probe after the first up")
    assert "every name answers" in out and "tiny-native [model]: answers" in out, out
    # The model built from the remote host's GGUF file (remote.gguf exists only in its gguf_dir).
    ollama = on_remote.containers()["ollama"]["name"]
    assert "tiny-house" in remote.docker("exec", ollama, "ollama", "list").stdout
    # What the hourly drift job runs, and the logs of a remote server: both through the ssh endpoint.
    ok(project.pulumi("refresh", "--preview-only", "--expect-no-changes"), "refresh of both hosts")
    out = ok(project.llmfleet("logs", "--stack", "e2e", "--tail", "50", "native"), "logs of a remote provider")
    # The probe's chats reached the remote llama-server through the second engine's published port:
    # its userland proxy connects from that engine's own network.
    sources = {ipaddress.ip_address(m) for m in re.findall(r"request: POST /v1/chat/completions (\S+) 200", out)}
    assert sources and all(ip in ipaddress.ip_network(next_pool()) for ip in sources), out[-2000:]

    # A provider moved from the gateway's host to the remote one by a stack change.
    python_before = project.containers()["python"]["id"]
    fleet.write(remote=("ollama", "native", "python"))
    steps = project.preview_steps()
    changed = {urn.rsplit("::", 1)[1]: op for urn, op in steps.items() if op != "same"}
    # The server, its image and health wait go to the other host; the gateway follows with its new config.
    assert changed == {"python-image": "replace", "python-container": "replace", "python-healthy": "replace",
                       "gateway-container": "replace", "gateway-healthy": "replace"}, changed  # fmt: skip
    started = time.monotonic()
    ok(project.pulumi("up", "--yes", "--policy-pack", "policy"), "the move's up")
    move_s = time.monotonic() - started
    assert "python" not in project.containers()
    assert local.docker("ps", "-a", "-q", "--filter", f"id={python_before}").stdout.strip() == ""
    moved = on_remote.containers()["python"]
    assert moved["state"] == "running"
    assert gateway_bases(project)["tiny-python"] == fleet.endpoint("python") + "/v1"
    outputs = json.loads(ok(project.pulumi("stack", "output", "providers", "--json"), "stack output"))
    assert outputs["python"]["endpoint"] == fleet.endpoint("python")
    ok(project.pulumi("preview", "--expect-no-changes"), "a preview right after the move")
    ok(project.llmfleet("drift", "--stack", "e2e", "--backends"), "drift after the move")
    out = ok(project.llmfleet("probe", "--stack", "e2e", "--backends"), "probe after the move")
    assert "every name answers" in out and "tiny-python [model]: answers" in out, out

    # The gateway moved to the remote host, with the last provider: the gateway's and front proxy's
    # containers are the same on every host, so only their host's endpoint (a label) moves them.
    fleet.write(remote=("ollama", "native", "python", "vllm"), gateway="remote")
    steps = project.preview_steps()
    changed = {urn.rsplit("::", 1)[1]: op for urn, op in steps.items() if op != "same"}
    for moved_resource in ("gateway-container", "front-container", "vllm-container"):
        assert changed.get(moved_resource) == "replace", changed
    started = time.monotonic()
    ok(project.pulumi("up", "--yes", "--policy-pack", "policy"), "the gateway's move")
    gateway_move_s = time.monotonic() - started
    assert project.containers() == {}, project.containers()
    assert sorted(on_remote.containers()) == ["front", "gateway", "native", "ollama", "python", "vllm"]
    # On its new host the gateway reaches every backend by its name on that host's network.
    assert gateway_bases(on_remote)["tiny-vllm"] == f"http://vllm:{fleet.ports[1]}/v1"
    ok(project.pulumi("preview", "--expect-no-changes"), "a preview right after the gateway's move")
    # Through the gateway only: the backends on the gateway's host now are on its network, unpublished.
    out = ok(project.llmfleet("probe", "--stack", "e2e"), "probe after the gateway's move")
    assert "every name answers" in out and "tiny-vllm [model]: answers" in out, out

    # Destroy: nothing of the stack is left on either engine.
    started = time.monotonic()
    ok(project.pulumi("destroy", "--yes"), "destroy")
    destroy_s = time.monotonic() - started
    assert project.leftovers() == [] and on_remote.leftovers() == []

    # The remote host unreachable (nothing listens where the stack says its sshd is): the up fails in
    # seconds, naming the host and what ssh said, and creates nothing there.
    fleet.write(remote=("ollama", "native"), endpoint=f"ssh://{fleet.ssh.user}@127.0.0.1:{free_port()}")
    started = time.monotonic()
    failed = project.pulumi("up", "--yes")
    unreachable_s = time.monotonic() - started
    said = failed.stdout + failed.stderr
    assert failed.returncode != 0 and unreachable_s < 90, (unreachable_s, said[-3000:])
    assert "host 'remote'" in said and "Connection refused" in said, said[-3000:]
    assert on_remote.leftovers() == []
    fleet.write(remote=("ollama", "native"))
    ok(project.pulumi("destroy", "--yes"), "destroy after the unreachable host")
    assert project.leftovers() == [] and on_remote.leftovers() == []
    print(f"two hosts: first up {first_up_s:.0f} s, move {move_s:.0f} s, gateway's move {gateway_move_s:.0f} s, "
          f"destroy {destroy_s:.0f} s, "
          f"{fleet.ssh.connections()} ssh sessions; unreachable host failed in {unreachable_s:.0f} s")  # fmt: skip


def test_next_pool() -> None:
    assert next_pool("10.201.0.0/16") == "10.202.0.0/16"
    assert next_pool("10.213.0.0/16") == "10.214.0.0/16"


def test_machine_address_is_not_loopback() -> None:
    assert not ipaddress.ip_address(machine_address()).is_loopback
