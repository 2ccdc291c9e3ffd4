"""The names a stack gives what it creates on a Docker engine: written once, here, for the Pulumi
components (which create them) and for `validate` (which checks that two stacks sharing an engine
never create the same one)."""

from __future__ import annotations

PREFIX = "llmfleet"
# The front proxy's component name: its container is `llmfleet-<stack>-front`.
FRONT_PROXY = "front"
# Volumes a host's servers share on purpose (weights and compiled kernels), kept on destroy.
CACHE_VOLUMES = ("hf-cache", "vllm-cache", "gguf")


def container_name(stack: str, component: str) -> str:
    """A server's (or the front proxy's) fixed container name; the gateway has none (Pulumi
    names each of its containers uniquely, for create-first replacement)."""
    return f"{PREFIX}-{stack}-{component}"


def network_name(stack: str) -> str:
    """The stack's bridge network, one on each Docker host it uses."""
    return f"{PREFIX}-{stack}"


def volume_name(stack: str, what: str) -> str:
    """A volume: one of CACHE_VOLUMES, or `<provider>-models` (an Ollama server's models)."""
    return f"{PREFIX}-{stack}-{what}"
