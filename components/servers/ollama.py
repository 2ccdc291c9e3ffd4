"""Ollama: one container with its models on a volume, and each declared model pulled (or created
from a GGUF file) as a resource of its own (components/ollama_model.py), so `pulumi preview` shows
models come and go."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from llmfleet import ExistingVolume, OllamaProvider, ollama_listed_name
from llmfleet import OllamaModel as OllamaModelSpec
from llmfleet._docker_names import volume_name

from ..docker.host import gguf_binds
from ..docker.ollama_model import OllamaModel, OllamaModelArgs
from .spec import (
    ContainerSpec,
    Healthcheck,
    Mount,
    Placement,
    ServerComponent,
    container_name,
    gpu_request,
    host_labels,
    pulled_image,
)

MODELS_DIR = "/root/.ollama"
GIB = 2**30


@dataclass(frozen=True)
class GpuMemory:
    """What holds an Ollama server to its gpu_memory_budget: each GPU's memory (the host's
    gpu_memory_gib) and the share the other servers on its GPUs declare (at least)."""

    gib: float
    beside: float = 0.0


def gpu_overhead(budget: float, memory: GpuMemory) -> int:
    """OLLAMA_GPU_OVERHEAD, in bytes: what Ollama leaves alone on each GPU. Ollama 0.14.1 subtracts
    it from each GPU's *free* memory whenever it places a model (server/sched.go, llm/server.go:
    free - overhead - the backend's minimum), and free memory already excludes what the other
    servers hold; so reserving what no declared share claims, (1 - budget - beside) x memory, leaves
    Ollama at most its budget while the others hold theirs. Never negative."""
    return max(0, round((1 - budget - memory.beside) * memory.gib * GIB))


def ollama_env(p: OllamaProvider, memory: GpuMemory | None = None) -> dict[str, str]:
    # The catalog's own variables first, llmfleet's over them (validate refuses any overlap).
    env = {**p.env, "OLLAMA_HOST": f"0.0.0.0:{p.listen_port}"}
    if p.context_length:
        env["OLLAMA_CONTEXT_LENGTH"] = str(p.context_length)
    if p.parallel:
        env["OLLAMA_NUM_PARALLEL"] = str(p.parallel)
    if p.gpus is not None and p.gpu_memory_budget is not None and memory is not None:
        env["OLLAMA_GPU_OVERHEAD"] = str(gpu_overhead(p.gpu_memory_budget, memory))
    return env


def models_mount(store: str | ExistingVolume | None, created: pulumi.Input[str] | None) -> Mount:
    """Where the models live, at /root/.ollama: an existing host directory or named volume the stack
    names (`llmfleet:providers.<name>.ollama_models`), else the volume llmfleet created."""
    if isinstance(store, str):
        return Mount(MODELS_DIR, host_path=store)
    if isinstance(store, ExistingVolume):
        return Mount(MODELS_DIR, volume=store.volume)
    return Mount(MODELS_DIR, volume=created)


def ollama_spec(
    p: OllamaProvider, models: Mount | pulumi.Input[str], gguf: Mount | None = None, memory: GpuMemory | None = None
) -> ContainerSpec:
    """The server's container; `models` the models store's mount, or the name of the volume llmfleet
    created for it. The GGUF directory is mounted only when a model is created from a file in it,
    so fleets that only pull keep the container they had. With the host's GPU memory known, the
    gpu_memory_budget becomes a limit Ollama applies (OLLAMA_GPU_OVERHEAD)."""
    if not isinstance(models, Mount):
        models = models_mount(None, models)
    files = [m.gguf for m in p.models if m.gguf]
    env = ollama_env(p, memory)
    return ContainerSpec(
        kind="ollama",
        port=p.listen_port,
        env=env,
        # The image has no curl; the ollama CLI talks to the server through OLLAMA_HOST.
        healthcheck=Healthcheck(["CMD", "ollama", "list"], start_period_s=30),
        wait_timeout_s=180,
        mounts=[models, *([gguf] if gguf and files else [])],
        binds=[b for f in files for b in gguf_binds(gguf, f)] if gguf else [],
        gpus=gpu_request(p.gpus),
    )


def model_resource_name(server: str, model: OllamaModelSpec) -> str:
    """A model resource is named by the model Ollama lists (`name:tag`, as it spells it), not by the
    name clients use: renaming a gateway name whose `pull` stays the same is then no change at all.
    Named by the gateway name, the renamed resource would be a new one that adopts the model already
    listed, and the old one's delete, which the engine runs after every create, would `ollama rm`
    the model the new one serves."""
    return f"{server}-model-{ollama_listed_name(model.ollama_name)}"


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
                    labels=[docker.VolumeLabelArgs(label=k, value=v) for k, v in host_labels(placement).items()]
                    or None,
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
        # Pull only once the server is healthy (its health wait, components/container_health.py):
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
