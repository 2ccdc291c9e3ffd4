"""One Ollama model, pulled or created from a GGUF file, as a Pulumi resource (a dynamic provider),
on Docker: its commands run inside the server's container with `docker exec`. What the resource
does (pull, create from a GGUF, list, rm and its retry) is the same on every target
(components/servers/ollama_model.py says it, and why a dynamic resource); this module says only
how a command runs in the container.

`docker --host ssh://...` reaches remote hosts the same way the docker provider does. It needs the
docker CLI where `pulumi up` runs. A container that is stopped or gone is a server that is down:
delete then succeeds without touching the volume, and a refresh shows the model as gone.

Pulumi pickles the provider (by reference to this module) into the state and runs it in another
process, started in the program's directory (pulumi/pulumi#5455) with `python -m`, so this module
is importable there; importing it must register nothing (pulumi/pulumi#7453). Tests load the
pickled provider in a fresh interpreter started in the project directory. Deployed stacks hold
this module's path (and components/ollama_model.py's, from before): the class keeps its name here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import Resource

from ..servers.ollama_model import OllamaModelLifecycle, ServerDown, create_from_gguf_argv, model_props
from .cli import Runner, run_docker

# What `docker exec` prints when there is no running container to exec into (moby
# daemon/errors.go: "No such container: %s", "Container %s is not running", "... is
# restarting, wait until the container is running", "... is paused, unpause the container ...").
CONTAINER_DOWN = re.compile(r"No such container|is not running|is restarting|is paused", re.IGNORECASE)


class ContainerDown(ServerDown):
    """The Ollama container is stopped or missing: there is no model list to read."""


class OllamaModelProvider(OllamaModelLifecycle):
    """The model in the container `container` on `docker_host`: a change of either, of the source
    file or of the tag replaces."""

    PLACEMENT = ("docker_host", "container")

    def __init__(self, runner: Runner | None = None) -> None:
        self._runner = runner

    @staticmethod
    def exec_in(docker_host: str | None, container: str, argv: Sequence[str]) -> list[str]:
        """`docker exec` of `argv` in the server's container, on its host."""
        host = ["--host", docker_host] if docker_host else []
        return ["docker", *host, "exec", container, *argv]

    @classmethod
    def docker_exec(cls, docker_host: str | None, container: str, args: Sequence[str]) -> list[str]:
        return cls.exec_in(docker_host, container, ["ollama", *args])

    @classmethod
    def create_from_gguf(cls, docker_host: str | None, container: str, tag: str, gguf: str) -> list[str]:
        """`docker exec` of the shell that runs `ollama create` from a temporary Modelfile."""
        return cls.exec_in(docker_host, container, create_from_gguf_argv(tag, gguf))

    def run(self, props: dict[str, Any], argv: Sequence[str], timeout: float) -> tuple[int, str, str]:
        code, out, err = (self._runner or run_docker)(self.exec_in(props.get("docker_host"), props["container"], argv),
                                                      timeout)  # fmt: skip
        if code != 0:
            detail = (err or out).strip()[-500:]
            if CONTAINER_DOWN.search(detail):
                raise ContainerDown(f"container {props['container']} is not running: {detail}")
        return code, out, err

    def where(self, props: dict[str, Any]) -> str:
        return f"container {props['container']}"

    def rm_command(self, props: dict[str, Any], name: str) -> str:
        return f"docker exec {props['container']} ollama rm {name}"

    def model_id(self, props: dict[str, Any]) -> str:
        return f"{props['container']}/{props['tag']}"


@dataclass
class OllamaModelArgs:
    docker_host: pulumi.Input[str] | None
    container: pulumi.Input[str]
    tag: str  # what Ollama lists: the library tag or hf.co reference pulled, or the name created
    gguf: str | None = None  # create the model from this file in the container instead of pulling
    insecure: bool = False  # pull over plain http (`ollama pull --insecure`)


class OllamaModel(Resource):
    """Type token `pulumi-python:dynamic:Resource` (fixed by the SDK for dynamic resources)."""

    digest: pulumi.Output[str]

    def __init__(self, name: str, args: OllamaModelArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props = {"docker_host": args.docker_host, "container": args.container,
                 **model_props(args.tag, args.gguf, args.insecure)}  # fmt: skip
        super().__init__(OllamaModelProvider(), name, props, opts)
