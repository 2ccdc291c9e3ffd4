"""README, "Upgrading an image": what replacing a server's image touches, under the SDK's mocks."""

from __future__ import annotations

from pathlib import Path

import pytest

import llmfleet
from components import FleetSecrets, deploy_fleet

from .fleetdir import BASE_STACK, write_project
from .pulumi_program import run_program

CATALOG = """\
providers:
  ollama: {kind: ollama, models: ["qwen2.5:0.5b"]}
  vq: {kind: vllm, model: Qwen/Qwen2.5-0.5B-Instruct, served_name: qwen, gpus: [0]}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path, CATALOG, BASE_STACK)


def test_an_image_upgrade_of_a_server_does_not_replace_the_gateway(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README, "Upgrading an image": a server's container replaced delete-first re-diffs only the
    resources computed from it (pulumi/pulumi step_generator.go calculateDependentReplacements); the
    gateway and the front proxy are ordered after the servers but computed from none of them."""
    fleet = llmfleet.load_fleet(project, "test")
    secrets = FleetSecrets(master_key="sk-x-123456")
    run = run_program("test", {}, [], program=lambda: deploy_fleet(fleet, secrets, project), monkeypatch=monkeypatch)
    servers = {urn for urn, (typ, name) in run.urns.items() if name in ("ollama-container", "vq-container",
                                                                          "ollama-image", "vq-image")}  # fmt: skip
    assert len(servers) == 4
    for name in ("gateway-container", "front-container"):
        request = run.request("docker:index/container:Container", name)
        computed_from = {u for deps in request.property_dependencies.values() for u in deps}
        assert not computed_from & servers, name
    # Ordered after the servers' health waits, which are computed from the containers' ids: the
    # engine replaces those with the containers, so a new server is waited for again.
    after = {run.urns[u] for u in run.request("docker:index/container:Container", "gateway-container").dependencies}
    assert {
        ("pulumi-python:dynamic:Resource", "ollama-healthy"),
        ("pulumi-python:dynamic:Resource", "vq-healthy"),
    } <= after
    for name in ("ollama", "vq"):
        request = run.request("pulumi-python:dynamic:Resource", f"{name}-healthy")
        assert request.property_dependencies["container"] and set(request.property_dependencies["container"]) <= servers
