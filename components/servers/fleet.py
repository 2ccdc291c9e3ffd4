"""What each of a fleet's servers runs: its kind's spec, from the catalog's provider and the stack's
placement of it, given only the names a target gives its volumes. A target that creates its
resources from specs calls `server_spec` (bench/compose_fleet.py); the Docker components build the
same specs from the same helpers inside each component (components/docker/fleet.py)."""

from __future__ import annotations

import pulumi

from llmfleet import (
    ExistingVolume,
    Fleet,
    LlamaCppProvider,
    LlamaCppPythonProvider,
    OllamaProvider,
    VllmProvider,
)
from llmfleet._checks_gpus import shares_beside

from .llama_cpp import llama_server_spec
from .llama_cpp_python import llama_cpp_python_spec
from .ollama import GpuMemory, models_mount, ollama_spec
from .spec import ContainerSpec, Mount
from .vllm import vllm_spec


def ollama_memory(fleet: Fleet, name: str) -> GpuMemory | None:
    """What holds the Ollama server `name` to its gpu_memory_budget, when its host declares its GPU
    memory: that memory, and the share the other servers on its GPUs declare."""
    if fleet.stack.kubernetes is not None and fleet.stack.on_kubernetes:
        # A pod's GPUs are whole devices of its own: nothing else declares a share of them.
        placed = fleet.stack.providers.get(name)
        pool = fleet.stack.kubernetes.pools.get(placed.pool) if placed and placed.pool else None
        return GpuMemory(pool.gpu_memory_gib) if pool and pool.gpu_memory_gib else None
    host = fleet.stack.hosts[fleet.stack.host_of(name)]
    if not host.gpu_memory_gib:
        return None
    return GpuMemory(host.gpu_memory_gib, shares_beside(fleet.catalog, fleet.stack, name))


def ollama_store(fleet: Fleet, name: str) -> str | ExistingVolume | None:
    """The models store the stack names for the Ollama server `name` (`ollama_models`), if any."""
    placed = fleet.stack.providers.get(name)
    return placed.ollama_models if placed else None


def server_spec(
    fleet: Fleet,
    name: str,
    provider: object,
    *,
    hf_cache: pulumi.Input[str],
    vllm_cache: pulumi.Input[str],
    gguf: Mount,
    ollama_models: pulumi.Input[str],
) -> ContainerSpec | None:
    """The spec of the local provider `name`, with the target's names for the shared Hugging Face and
    vLLM caches, the GGUF directory's mount, and the volume it creates for Ollama's models (used
    unless the stack names a store). None for a kind no spec is derived for here."""
    if isinstance(provider, OllamaProvider):
        store = models_mount(ollama_store(fleet, name), ollama_models)
        return ollama_spec(provider, store, gguf, ollama_memory(fleet, name))
    if isinstance(provider, VllmProvider):
        return vllm_spec(provider, hf_cache, vllm_cache, gguf)
    if isinstance(provider, LlamaCppProvider):
        return llama_server_spec(provider, hf_cache, gguf)
    if isinstance(provider, LlamaCppPythonProvider):
        return llama_cpp_python_spec(provider, gguf)
    return None
