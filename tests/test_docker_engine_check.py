"""The Docker engine version check's CRUD, called directly (the engine only drives it)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from components.docker.engine_check import DockerEngineCheckProvider

PROPS = {"host": "gpu-1", "docker_host": "ssh://ops@gpu-1", "version": None, "api_version": None}


class FakeDocker:
    """Answers `docker version --format '{{json .Server}}'` like the CLI, recording the call."""

    def __init__(self, version: str = "26.1.5+dfsg1", api: str = "1.45", code: int = 0, err: str = "") -> None:
        self.answer = (code, json.dumps({"Version": version, "ApiVersion": api}) if code == 0 else "", err)
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], timeout: float) -> tuple[int, str, str]:
        self.calls.append(list(argv))
        return self.answer


def test_a_new_enough_engine_passes_and_is_recorded() -> None:
    fake = FakeDocker()
    result = DockerEngineCheckProvider(fake).create(PROPS)
    assert fake.calls == [["docker", "--host", "ssh://ops@gpu-1", "version", "--format", "{{json .Server}}"]]
    assert (result.id, result.outs["version"], result.outs["api_version"]) == ("gpu-1", "26.1.5+dfsg1", "1.45")


def test_an_engine_older_than_api_1_44_is_refused_with_what_to_do() -> None:
    with pytest.raises(RuntimeError) as caught:
        DockerEngineCheckProvider(FakeDocker("20.10.24+dfsg1", "1.41")).create(PROPS)
    assert str(caught.value) == (
        "host 'gpu-1': Docker Engine 20.10.24+dfsg1 speaks API 1.41, and llmfleet's containers need API 1.44 "
        "(Docker Engine 25 or later: every healthcheck sets a start_interval). Upgrade Docker on that host and "
        "run `pulumi up` again; nothing was created on it."
    )


def test_the_local_engine_is_asked_without_a_host_flag() -> None:
    fake = FakeDocker(api="1.44")
    DockerEngineCheckProvider(fake).create({**PROPS, "host": "local", "docker_host": None})
    assert fake.calls == [["docker", "version", "--format", "{{json .Server}}"]]


def test_an_engine_that_does_not_answer_says_where_and_why() -> None:
    fake = FakeDocker(code=1, err="Cannot connect to the Docker daemon at unix:///var/run/docker.sock.\n")
    with pytest.raises(
        RuntimeError,
        match=r"^could not ask the Docker engine on host 'local' \(the local engine, "
        r"DOCKER_HOST\) for its version: Cannot connect to the Docker daemon",
    ):
        DockerEngineCheckProvider(fake).create({**PROPS, "host": "local", "docker_host": None})


def test_a_new_endpoint_checks_again_and_nothing_else_does() -> None:
    provider = DockerEngineCheckProvider(FakeDocker())
    assert provider.diff("gpu-1", PROPS, {**PROPS, "docker_host": "ssh://ops@gpu-9"}).replaces == ["docker_host"]
    assert not provider.diff("gpu-1", {**PROPS, "version": "26"}, PROPS).changes
