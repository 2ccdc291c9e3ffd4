"""The names and labels a stack gives what it creates on a Docker engine, derived once, here: for
the Pulumi components (which create them), for `validate` (which checks that two stacks sharing an
engine never create the same one) and for `llmfleet logs` (which finds the containers again).
Pure: no Pulumi, no Docker.

- A server is the container `llmfleet-<stack>-<provider>` (a fixed name: it is replaced
  delete-first).
- The front proxy is the component `front`, so its container is `llmfleet-<stack>-front`.
- The gateway is the component `gateway`, but its containers have no fixed name (Pulumi names
  them, `gateway-container-<suffix>`): a catalog change creates the new one beside the old one.
  They are found by their labels, `llmfleet.stack=<stack>` and `llmfleet.provider=gateway`.
"""

from __future__ import annotations

PREFIX = "llmfleet"
# Labels every container carries, so `docker ps --filter label=llmfleet.stack=prod` finds a fleet.
LABEL_PREFIX = PREFIX
STACK_LABEL = f"{LABEL_PREFIX}.stack"
NAME_LABEL = f"{LABEL_PREFIX}.provider"  # the provider's name, or `gateway` / `front`
KIND_LABEL = f"{LABEL_PREFIX}.kind"

# The components' names, which their containers' names and labels are derived from.
GATEWAY = "gateway"
FRONT_PROXY = "front"
# What `llmfleet logs` calls them (beside the providers' names).
LOG_NAMES = {"gateway": GATEWAY, "front-proxy": FRONT_PROXY}
# Volumes a host's servers share on purpose (weights and compiled kernels), kept on destroy.
CACHE_VOLUMES = ("hf-cache", "vllm-cache", "gguf")


def container_name(stack: str, component: str) -> str:
    """The fixed container name of a server (`component` its provider) or of the front proxy; the
    gateway has none (Pulumi names each of its containers uniquely, for create-first replacement)."""
    return f"{PREFIX}-{stack}-{component}"


def container_labels(stack: str, name: str, kind: str) -> dict[str, str]:
    return {STACK_LABEL: stack, NAME_LABEL: name, KIND_LABEL: kind}


def network_name(stack: str) -> str:
    """The stack's bridge network, one on each Docker host it uses."""
    return f"{PREFIX}-{stack}"


def volume_name(stack: str, what: str) -> str:
    """A volume: one of CACHE_VOLUMES, or `<provider>-models` (an Ollama server's models)."""
    return f"{PREFIX}-{stack}-{what}"


def reserved_provider_names() -> dict[str, str]:
    """Provider names that would collide with what llmfleet itself names, and why."""
    return {
        FRONT_PROXY: f"the front proxy's container is {container_name('<stack>', FRONT_PROXY)}",
        GATEWAY: f"the gateway's containers are labelled {NAME_LABEL}={GATEWAY} "
        "(and `llmfleet logs gateway` shows them)",
        "front-proxy": "`llmfleet logs front-proxy` shows the front proxy's log",
    }
