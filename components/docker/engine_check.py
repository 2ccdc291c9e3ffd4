"""Before anything is created on a Docker host: is its engine new enough? (a dynamic provider)

Every llmfleet container sets a healthcheck `start_interval`, which needs Docker Engine API 1.44
(Docker 25, January 2024). An older engine is only found out when the Docker provider creates the
first container ("specify health-check start interval requires API version 1.44"), after the
network, volumes and images already exist: an `up` that fails halfway. This resource asks the
engine its version first (`docker version`, through the same endpoint as the provider) and fails
with the version it found and what to do; every other resource on that host waits for it.

It runs the docker CLI where `pulumi up` runs, as the Ollama model resources do. Pulumi pickles
the provider by reference to this module, so it must stay importable from the program's directory
and must register nothing when imported (see ollama_model.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider

from .cli import Runner, run_docker

MIN_API = (1, 44)
MIN_ENGINE = "Docker Engine 25"


class DockerEngineCheckProvider(ResourceProvider):
    """create = ask the engine its version and refuse an old one; a new endpoint asks again."""

    def __init__(self, runner: Runner | None = None) -> None:
        self._runner = runner

    def _server(self, props: dict[str, Any]) -> dict[str, str]:
        endpoint = props.get("docker_host")
        argv = ["docker", *(["--host", endpoint] if endpoint else []), "version", "--format", "{{json .Server}}"]
        code, out, err = (self._runner or run_docker)(argv, 60)
        where = f"host '{props['host']}' ({endpoint or 'the local engine, DOCKER_HOST'})"
        if code != 0 or not out.strip() or out.strip() == "null":
            detail = (err or out).strip()[-500:] or "no answer"
            raise RuntimeError(f"could not ask the Docker engine on {where} for its version: {detail}")
        server = json.loads(out)
        return {"version": str(server.get("Version", "?")), "api_version": str(server.get("ApiVersion", "0"))}

    def create(self, props: dict[str, Any]) -> CreateResult:
        server = self._server(props)
        api = tuple(int(part) for part in server["api_version"].split(".")[:2] if part.isdigit())
        if api < MIN_API:
            raise RuntimeError(
                f"host '{props['host']}': Docker Engine {server['version']} speaks API {server['api_version']}, "
                f"and llmfleet's containers need API {'.'.join(map(str, MIN_API))} ({MIN_ENGINE} or later: every "
                "healthcheck sets a start_interval). Upgrade Docker on that host and run `pulumi up` again; "
                "nothing was created on it."
            )
        return CreateResult(id_=props["host"], outs={**props, **server})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, props)  # checked when created; a refresh needs no engine

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in ("host", "docker_host") if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=changed, delete_before_replace=True)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        pass  # nothing was made


@dataclass
class DockerEngineCheckArgs:
    host: str  # the stack's name for the host
    docker_host: str | None  # its endpoint; None: the local engine (DOCKER_HOST)


class DockerEngineCheck(Resource):
    """Type token `pulumi-python:dynamic:Resource` (fixed by the SDK for dynamic resources)."""

    version: pulumi.Output[str]
    api_version: pulumi.Output[str]

    def __init__(self, name: str, args: DockerEngineCheckArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props = {"host": args.host, "docker_host": args.docker_host, "version": None, "api_version": None}
        super().__init__(DockerEngineCheckProvider(), name, props, opts)
