"""Ollama on Docker: one container with its models on a volume (components/servers/ollama.py), and
each declared model pulled (or created from a GGUF file) as a resource of its own
(components/docker/ollama_model.py), so `pulumi preview` shows models come and go."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from llmfleet import ExistingVolume, OllamaProvider
from llmfleet import OllamaModel as OllamaModelSpec
from llmfleet._docker_names import container_name, volume_name

from ..servers.ollama import GpuMemory, model_resource_name, models_mount, ollama_spec
from ..servers.spec import Mount
from .container import Placement, ServerComponent, host_key, pulled_image
from .ollama_model import OllamaModel, OllamaModelArgs


def model_resource_aliases(server: str, model: OllamaModelSpec) -> list[pulumi.Alias]:
    """The name such a resource had before (by the gateway name), so a stack deployed then keeps its
    models: the engine moves them to the new name without a delete or a pull."""
    before = f"{server}-model-{model.name}"
    return [] if before == model_resource_name(server, model) else [pulumi.Alias(name=before)]


@dataclass
class OllamaServerArgs:
    provider: OllamaProvider
    image: str
    placement: Placement
    docker_host: str | None  # for the pulls, which run `docker exec` against this host
    gguf: Mount | None = None  # the host's GGUF directory, for models created from a file
    memory: GpuMemory | None = None  # the host's GPU memory, when declared: the budget becomes a limit
    # An existing models store (the stack's `ollama_models`): used as is, neither created nor deleted.
    models_store: str | ExistingVolume | None = None


class OllamaServer(ServerComponent):
    models: dict[str, OllamaModel]

    def __init__(self, name: str, args: OllamaServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llmfleet:index:OllamaServer", name, {}, opts)
        placement = args.placement
        store = args.models_store
        host_opts = pulumi.ResourceOptions(parent=self, provider=placement.provider, depends_on=placement.after_ready())
        created = None
        existing: list[pulumi.Resource] = []
        if store is None:
            created = docker.Volume(
                f"{name}-models",
                docker.VolumeArgs(
                    name=volume_name(placement.stack, f"{name}-models"),
                    labels=[docker.VolumeLabelArgs(label=k, value=v) for k, v in host_key(placement).items()] or None,
                ),
                opts=pulumi.ResourceOptions.merge(host_opts, pulumi.ResourceOptions(retain_on_delete=True)),
            ).name
        elif isinstance(store, ExistingVolume):
            # Read, not managed: the `up` stops here if it does not exist (Docker would create an
            # empty one, and every model would be downloaded again), and destroy never deletes it.
            existing.append(docker.Volume.get(f"{name}-models", store.volume, opts=host_opts))
        image = pulled_image(name, args.image, placement, self)
        spec = ollama_spec(args.provider, models_mount(store, created), args.gguf, args.memory)
        self._serve(name, spec, image.image_id, placement, args.provider.served_names, depends_on=existing)
        # Pull only once the server is healthy (its health wait, components/docker/container_health.py):
        # an ordering through depends_on alone. The container's name is passed as the plain,
        # deterministic value, never as its output: the engine re-diffs a dependent with every
        # input that has a property dependency on a delete-first replaced resource set to unknown
        # (pulumi/pulumi pkg/resource/deploy/step_generator.go, calculateDependentReplacements),
        # which would make each model "replace" on every container replacement: `ollama rm` and a
        # full re-pull. Without a property dependency it is left alone (the health wait itself is
        # replaced, being computed from the container's id, and waits for the new container); the
        # models survive on the volume the new container mounts.
        # In a store llmfleet did not create, no model is ever removed (`ollama rm`): neither on destroy
        # nor when the catalog drops it. The store and what it held before are the operator's.
        container = container_name(placement.stack, name)
        self.models = {
            m.name: OllamaModel(
                model_resource_name(name, m),
                OllamaModelArgs(docker_host=args.docker_host, container=container, tag=m.ollama_name, gguf=m.gguf,
                                insecure=m.insecure),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.healthy], retain_on_delete=store is not None,
                                            aliases=model_resource_aliases(name, m)),
            )
            for m in args.provider.models
        }  # fmt: skip
        self._register()
