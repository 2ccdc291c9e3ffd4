"""Compose a validated Fleet into components: check what the gateway needs of the stack's secrets
before anything is created, then translate the fleet for its target: Docker hosts
(components/docker/fleet.py) or a Kubernetes cluster (components/kubernetes/fleet.py). What each server
runs is derived once, in components/servers/, whatever the target."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pulumi

from llmfleet import ExternalProvider, Fleet
from llmfleet._gateway_settings import settings_env_names
from llmfleet._stack import set_secret_command

if TYPE_CHECKING:
    from .docker.fleet import DeployedFleet
    from .kubernetes.fleet import DeployedFleet as KubernetesFleet


@dataclass
class FleetSecrets:
    master_key: pulumi.Input[str]
    hf_token: pulumi.Input[str] | None = None
    api_keys: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


def required_api_keys(fleet: Fleet) -> list[str]:
    """The stack's llmfleet:apiKeys the gateway needs: external providers' keys and every
    `os.environ/NAME` the catalog's LiteLLM settings read (a callback's key)."""
    providers = fleet.catalog.providers.values()
    keys = {p.api_key_env for p in providers if isinstance(p, ExternalProvider) and p.api_key_env}
    return sorted(keys | settings_env_names(fleet.catalog))


def missing_api_keys(raw: str | None, needed: list[str], stack: str) -> None:
    """Stop before anything is created when the stack's `llmfleet:apiKeys` lacks a key the gateway
    needs, with the command that sets it. `raw` is the config value as the engine passes it to the
    program (JSON, decrypted): only its key names are read, here, synchronously, so the error is a
    plain message and never a traceback from inside an Output."""
    if not needed or raw is None:
        return  # none set at all: deploy_fleet says which keys to set
    try:
        held = json.loads(raw)
    except ValueError:
        held = raw  # a single value: the whole map set as one secret
    if not isinstance(held, Mapping):
        what = "is one encrypted value, not a map of keys"
    else:
        absent = [k for k in needed if not isinstance(held.get(k), str)]
        if not absent:
            return
        what, needed = f"has no {', '.join(absent)}", absent
    commands = "; ".join(set_secret_command(f"llmfleet:apiKeys.{k}", stack) for k in needed)
    raise pulumi.RunError(f"stack '{stack}': llmfleet:apiKeys {what}. Run: {commands}")


def deploy_fleet(fleet: Fleet, secrets: FleetSecrets, project_dir: Path) -> DeployedFleet | KubernetesFleet:
    stack = fleet.name
    missing = [k for k in required_api_keys(fleet) if k not in secrets.api_keys]
    if missing:  # checked before anything is created
        keys = ", ".join(missing)
        raise pulumi.RunError(
            f"stack '{stack}': no secret for {keys} (external providers' api_key_env, the gateway settings' "
            "os.environ/NAME). Run: " + "; ".join(set_secret_command(f"llmfleet:apiKeys.{k}", stack) for k in missing)
        )
    api_keys = {k: secrets.api_keys[k] for k in required_api_keys(fleet)}
    # The target's translation, imported once it is chosen: what needs only the specs or these
    # checks (components.servers, bench/compose_fleet.py) loads no target's provider SDK.
    if fleet.stack.on_kubernetes:
        from .kubernetes.fleet import deploy_to_kubernetes

        return deploy_to_kubernetes(fleet, secrets, api_keys, project_dir)
    from .docker.fleet import deploy_to_docker

    return deploy_to_docker(fleet, secrets, api_keys, project_dir)
