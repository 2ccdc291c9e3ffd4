"""Ollama: one container with its models on a volume, and each declared model pulled (or created
from a GGUF file) as a resource of its own (components/ollama_model.py), so `pulumi preview` shows
models come and go."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from llmfleet import OllamaProvider

from .docker_host import gguf_binds
from .ollama_model import OllamaModel, OllamaModelArgs
from .server_container import (
    ContainerSpec,
    Healthcheck,
    Mount,
    Placement,
    ServerComponent,
    container_name,
    gpu_request,
    pulled_image,
)

MODELS_DIR = "/root/.ollama"


def ollama_spec(p: OllamaProvider, models_volume: pulumi.Input[str], gguf: Mount | None = None) -> ContainerSpec:
    """The server's container. The GGUF directory is mounted only when a model is created from a
    file in it, so fleets that only pull keep the container they had."""
    files = [m.gguf for m in p.models if m.gguf]
    # The catalog's own variables first, llmfleet's over them (validate refuses any overlap).
    env = {**p.env, "OLLAMA_HOST": f"0.0.0.0:{p.listen_port}"}
    if p.context_length:
        env["OLLAMA_CONTEXT_LENGTH"] = str(p.context_length)
    if p.parallel:
        env["OLLAMA_NUM_PARALLEL"] = str(p.parallel)
    return ContainerSpec(
        kind="ollama",
        port=p.listen_port,
        env=env,
        # The image has no curl; the ollama CLI talks to the server through OLLAMA_HOST.
        healthcheck=Healthcheck(["CMD", "ollama", "list"], start_period_s=30),
        wait_timeout_s=180,
        mounts=[Mount(MODELS_DIR, volume=models_volume), *([gguf] if gguf and files else [])],
        binds=[b for f in files for b in gguf_binds(gguf, f)] if gguf else [],
        gpus=gpu_request(p.gpus),
    )


@dataclass
class OllamaServerArgs:
    provider: OllamaProvider
    image: str
    placement: Placement
    docker_host: str | None  # for the pulls, which run `docker exec` against this host
    gguf: Mount | None = None  # the host's GGUF directory, for models created from a file


class OllamaServer(ServerComponent):
    models: dict[str, OllamaModel]

    def __init__(self, name: str, args: OllamaServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llmfleet:index:OllamaServer", name, {}, opts)
        placement = args.placement
        volume = docker.Volume(
            f"{name}-models",
            docker.VolumeArgs(name=f"llmfleet-{placement.stack}-{name}-models"),
            opts=pulumi.ResourceOptions(
                parent=self, provider=placement.provider, retain_on_delete=True, depends_on=placement.after_ready()
            ),
        )
        image = pulled_image(name, args.image, placement, self)
        spec = ollama_spec(args.provider, volume.name, args.gguf)
        self._serve(name, spec, image.image_id, placement, args.provider.served_names)
        # Pull only once the server is healthy (the container waits for its healthcheck): an
        # ordering through depends_on alone. The container's name is passed as the plain,
        # deterministic value, never as its output: the engine re-diffs a dependent with every
        # input that has a property dependency on a delete-first replaced resource set to unknown
        # (pulumi/pulumi pkg/resource/deploy/step_generator.go, calculateDependentReplacements),
        # which would make each model "replace" on every container replacement: `ollama rm` and a
        # full re-pull. Without a property dependency it is left alone; the models survive on the
        # volume the new container mounts.
        container = container_name(placement.stack, name)
        self.models = {
            m.name: OllamaModel(
                f"{name}-model-{m.name}",
                OllamaModelArgs(docker_host=args.docker_host, container=container, tag=m.ollama_name, gguf=m.gguf),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.container]),
            )
            for m in args.provider.models
        }
        self._register()
