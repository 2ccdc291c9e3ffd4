"""Ollama: one server with its models in a store (a volume, or the operator's directory or volume),
and each declared model pulled, or created from a GGUF file, by the server's own `ollama` CLI."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from llmfleet import ExistingVolume, OllamaModel, OllamaProvider, ollama_listed_name

from .gguf import gguf_binds
from .spec import ContainerSpec, Healthcheck, Mount, gpu_request

MODELS_DIR = "/root/.ollama"
GIB = 2**30


def model_resource_name(server: str, model: OllamaModel) -> str:
    """A model resource is named by the model Ollama lists (`name:tag`, as it spells it), not by the
    name clients use: renaming a gateway name whose `pull` stays the same is then no change at all.
    Named by the gateway name, the renamed resource would be a new one that adopts the model already
    listed, and the old one's delete, which the engine runs after every create, would `ollama rm`
    the model the new one serves."""
    return f"{server}-model-{ollama_listed_name(model.ollama_name)}"


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


def ollama_pull_args(tag: str, insecure: bool) -> list[str]:
    """`ollama pull`'s arguments; --insecure: plain http to a registry of the operator's (the
    catalog's `insecure: true`)."""
    return ["pull", *(["--insecure"] if insecure else []), tag]
