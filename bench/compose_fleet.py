"""The same fleet as a Docker Compose project: what bench/deploy.py deploys with `docker compose`
beside llmfleet's `pulumi up`, to compare the two on the same services.

The compose file is generated from what the Pulumi program reads (`llmfleet.load_fleet` of the
project's stack and catalog) through the components' own builders: each server's ContainerSpec
(`server_spec`: `ollama_spec`, `vllm_spec`, `llama_server_spec`, `llama_cpp_python_spec`), the gateway's and the
front proxy's (`gateway_spec`, `front_proxy_spec`), the gateway's rendered LiteLLM config and its
entrypoint, the front proxy's HAProxy config, and the commands that pull Ollama's models
(components/servers/). This file is a third translation of those target-neutral specs beside
components/docker/ (pulumi-docker) and imports no target's; each spec field is written as
components/docker/container.py gives it to the container resource (Go durations, device requests).
Nothing else is copied by hand, so the two deploys cannot drift apart; what has no Compose form is
refused (`ComposeError`).

How each piece maps:
- a local provider: a service named after it (its DNS name on the network, which the gateway's
  config calls), its image, command, environment, health check (interval, timeout, retries, start
  period and start interval), volumes and bind mounts, published port, stop grace, restart policy;
- its Ollama models: a one-shot service `<provider>-models` that runs the image's `ollama` CLI
  against the server once it is healthy (`ollama pull`, or `ollama create` from a GGUF), as
  llmfleet's model resources run it in the server's container; the gateway waits for it to
  complete, as llmfleet's gateway waits for each model;
- the gateway: the service `gateway`, started once every backend is healthy and every model
  there, holding the network alias the front proxy resolves, publishing nothing; its config and
  entrypoint are Compose `configs`. A config's name carries a digest of its content: Compose
  recreates a container when its service's definition changes (v5.6.0 `pkg/compose/hash.go`,
  `ServiceHash`), and a config's content is not part of it, so an edited config under the same
  name would leave the old gateway running with the old catalog;
- the front proxy: the service `front`, publishing the stack's gateway address;
- volumes: the project's own (Ollama's models, the Hugging Face and vLLM caches), removed by
  `docker compose down -v`; the stack's GGUF directory bound from the host.
Secrets never reach the file: the gateway's master key, the external providers' API keys and the
Hugging Face token are `${NAME}`, taken from the environment `docker compose` runs in.

What Compose cannot do the same way is the point of the comparison, not a gap in this file: a
changed gateway is recreated in place (stopped, then started), where llmfleet starts the new one
beside the old one first.
"""

from __future__ import annotations

import hashlib
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.fleet import required_api_keys
from components.servers.fleet import server_spec
from components.servers.front_proxy import CONFIG_PATH as FRONT_CONFIG_PATH
from components.servers.front_proxy import front_proxy_spec
from components.servers.gateway import CONFIG_PATH as GATEWAY_CONFIG_PATH
from components.servers.gateway import ENTRYPOINT_PATH, ENTRYPOINT_SOURCE, gateway_spec
from components.servers.gateway import PORT as GATEWAY_PORT
from components.servers.gateway import READY_PORT as GATEWAY_READY_PORT
from components.servers.gguf import GGUF_DIR, gguf_mount
from components.servers.ollama import ollama_pull_args
from components.servers.spec import ContainerSpec, go_duration
from llmfleet import (
    Fleet,
    OllamaProvider,
    load_fleet,
    render_gateway_config,
)
from llmfleet._docker_names import FRONT_PROXY, GATEWAY
from llmfleet._front_proxy import FRONT_ALIAS, GATEWAY_ALIAS, FrontProxySettings, front_proxy_config

NETWORK = "fleet"
HF_CACHE_VOLUME, VLLM_CACHE_VOLUME, GGUF_VOLUME = "hf-cache", "vllm-cache", "gguf"
MASTER_KEY_ENV = "LITELLM_MASTER_KEY"


class ComposeError(ValueError):
    """The fleet has something this compose file cannot express the way llmfleet deploys it."""


def _literal(value: Any) -> Any:
    """`value` with every `$` doubled, in every string: Compose interpolates `${...}` everywhere in
    the file (commands, environment, health checks, configs' content), and `$$` is a literal `$`."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, list):
        return [_literal(v) for v in value]
    if isinstance(value, dict):
        return {k: _literal(v) for k, v in value.items()}
    return value


def _from_env(name: str) -> str:
    """A value Compose reads from its environment; it refuses to start without it."""
    return f"${{{name}:?set {name} in the environment of docker compose}}"


def _healthcheck(spec: ContainerSpec) -> dict[str, Any]:
    check = spec.healthcheck
    assert check is not None
    # Durations as Go prints them, as the container resource is given them.
    return {"test": list(check.tests), "interval": go_duration(check.interval_s),
            "timeout": go_duration(check.timeout_s), "retries": check.retries,
            "start_period": go_duration(check.start_period_s),
            "start_interval": go_duration(check.start_interval_s)}  # fmt: skip


def _volumes(spec: ContainerSpec) -> list[dict[str, Any]]:
    found = []
    for mount in spec.mounts:
        if mount.volume is not None:
            found.append({"type": "volume", "source": mount.volume, "target": mount.container_path})
        else:  # a host directory as `-v` mounts it: Docker creates it when missing
            found.append({"type": "bind", "source": mount.host_path, "target": mount.container_path,
                          "bind": {"create_host_path": True}})  # fmt: skip
        if mount.read_only:
            found[-1]["read_only"] = True
    for bind in spec.binds:  # `--mount type=bind`, read-only: Docker refuses a missing source, naming it
        found.append({"type": "bind", "source": bind.source, "target": bind.target, "read_only": True,
                      "bind": {"create_host_path": False}})  # fmt: skip
    return found


def _gpus(spec: ContainerSpec) -> dict[str, Any]:
    """The container's GPUs as the container resource asks for them: all, or device requests."""
    if spec.gpus is None:
        return {}
    if spec.gpus.device_ids is None:
        return {"gpus": "all"}
    # Listed devices as a device request with the nvidia driver (components/docker/container.py `gpu_args`).
    return {"gpus": [{"driver": "nvidia", "device_ids": list(spec.gpus.device_ids), "capabilities": ["gpu"]}]}


def _service(spec: ContainerSpec, image: str, aliases: list[str], publish: tuple[str, int] | None) -> dict[str, Any]:
    """One container as `server_container` creates it (components/docker/container.py)."""
    service: dict[str, Any] = {"image": image}
    if spec.entrypoint:
        service["entrypoint"] = list(spec.entrypoint)
    if spec.command:
        service["command"] = list(spec.command)
    service["environment"] = dict(entry.split("=", 1) for entry in spec.envs())
    if spec.healthcheck:
        service["healthcheck"] = _healthcheck(spec)
    service["restart"] = "unless-stopped"
    service.update(_gpus(spec))
    if spec.ipc_host:
        service["ipc"] = "host"
    service["networks"] = {NETWORK: {"aliases": aliases}}
    if publish:
        service["ports"] = [{"target": spec.port, "published": str(publish[1]), "host_ip": publish[0],
                             "protocol": "tcp"}]  # fmt: skip
    if volumes := _volumes(spec):
        service["volumes"] = volumes
    service["stop_grace_period"] = f"{spec.stop_grace_s}s"
    return service


def _server_spec(fleet: Fleet, name: str, provider: object) -> ContainerSpec:
    """The provider's ContainerSpec as the Docker components build it, with the Compose project's
    volume names in place of the volumes llmfleet creates."""
    gguf = gguf_mount(fleet.stack.hosts[fleet.stack.host_of(name)], GGUF_VOLUME)
    spec = server_spec(fleet, name, provider, hf_cache=HF_CACHE_VOLUME, vllm_cache=VLLM_CACHE_VOLUME, gguf=gguf,
                       ollama_models=f"{name}-models")  # fmt: skip
    if spec is None:
        raise ComposeError(f"provider '{name}': no compose service for {type(provider).__name__}")
    return spec


def _image(fleet: Fleet, kind: str) -> str:
    ref = fleet.stack.images.ref(kind)
    if not isinstance(ref, str):
        raise ComposeError(f"images.{kind}: a build ({ref!r}), not a pulled image: not compared")
    return ref


def _models_job(name: str, provider: OllamaProvider, server: dict[str, Any]) -> dict[str, Any]:
    """The one-shot service that pulls (or creates) the server's models through its CLI, once the
    server is healthy: the GGUF files it creates from are read on the client's side, so it mounts
    what the server mounts of the GGUF directory."""
    lines = ["set -e"]
    for model in provider.models:
        tag = shlex.quote(model.ollama_name)
        if model.gguf:
            modelfile = f'printf "FROM %s\\n" {shlex.quote(model.gguf)} > "$f"'
            lines.append(f'f=$(mktemp); {modelfile}; ollama create {tag} -f "$f"')
        else:
            pull = ollama_pull_args(model.ollama_name, model.insecure)
            lines.append(shlex.join(["ollama", *pull]))
    gguf = [v for v in server.get("volumes", []) if v["target"] == GGUF_DIR or v["target"].startswith(f"{GGUF_DIR}/")]
    job: dict[str, Any] = {
        "image": server["image"],
        "entrypoint": ["sh", "-c", "\n".join(lines)],
        "environment": {"OLLAMA_HOST": f"http://{name}:{provider.listen_port}"},
        "depends_on": {name: {"condition": "service_healthy"}},
        "networks": [NETWORK],
        "restart": "no",
    }
    if gguf:
        job["volumes"] = gguf
    return job


def _config(content: str, what: str, configs: dict[str, Any]) -> str:
    """A Compose config holding `content`, named by its digest (see the module's docstring)."""
    name = f"{what}-{hashlib.sha256(content.encode()).hexdigest()[:12]}"
    configs[name] = {"content": content}
    return name


def compose_file(fleet: Fleet) -> dict[str, Any]:
    """The compose file that deploys `fleet` as llmfleet's program does, on one Docker host."""
    stack = fleet.stack
    hosts = {stack.host_of(name) for name in fleet.catalog.local_providers()} | {stack.gateway_host}
    if len(hosts) > 1:
        raise ComposeError(f"the fleet uses {len(hosts)} Docker hosts ({', '.join(sorted(hosts))}): one compose "
                           "project deploys to one")  # fmt: skip
    services: dict[str, Any] = {}
    configs: dict[str, Any] = {}
    volumes: dict[str, Any] = {}
    ready: dict[str, Any] = {}  # what the gateway waits for
    secrets: dict[str, list[str]] = {}  # each service's variables read from the environment
    for name, provider in fleet.catalog.local_providers().items():
        spec = _server_spec(fleet, name, provider)
        publish = stack.publish_ip(name)
        service = _service(spec, _image(fleet, spec.kind), [name], (publish, spec.port) if publish else None)
        if spec.kind in ("vllm", "llama_cpp") and stack.hf_token is not None:
            secrets[name] = ["HF_TOKEN"]
        services[name] = service
        ready[name] = {"condition": "service_healthy"}
        if isinstance(provider, OllamaProvider) and provider.models:
            job = f"{name}-models"
            if job in fleet.catalog.providers:
                raise ComposeError(f"provider '{job}': the name of the service pulling provider '{name}''s models")
            services[job] = _models_job(name, provider, service)
            ready[job] = {"condition": "service_completed_successfully"}
        for volume in service.get("volumes", []):
            if volume["type"] == "volume":
                volumes[volume["source"]] = {}
    placed = [p.ollama_models.volume for p in stack.providers.values() if hasattr(p.ollama_models, "volume")]
    for existing in placed:  # an Ollama store the stack names: used as is, never created or removed
        volumes[existing] = {"external": True}

    gateway = _service(gateway_spec(), _image(fleet, "litellm"), [GATEWAY_ALIAS], None)
    secrets[GATEWAY] = [MASTER_KEY_ENV, *required_api_keys(fleet)]
    gateway["configs"] = [
        {"source": _config(render_gateway_config(fleet), "gateway-config", configs), "target": GATEWAY_CONFIG_PATH},
        {"source": _config(ENTRYPOINT_SOURCE.read_text(), "gateway-entrypoint", configs), "target": ENTRYPOINT_PATH},
    ]
    gateway["depends_on"] = ready
    services[GATEWAY] = gateway

    front_spec = front_proxy_spec()
    front = _service(front_spec, _image(fleet, "haproxy"), [FRONT_ALIAS], (stack.gateway.bind, stack.gateway.port))
    front["ports"][0]["target"] = front_spec.port
    settings = FrontProxySettings(stack=fleet.name, gateway_port=GATEWAY_PORT, check_port=GATEWAY_READY_PORT)
    front["configs"] = [{"source": _config(front_proxy_config(settings), "front-proxy-config", configs),
                         "target": FRONT_CONFIG_PATH}]  # fmt: skip
    services[FRONT_PROXY] = front

    # Every string is literal but the secrets' `${NAME}`, which Compose reads from its environment.
    document = _literal({"services": services, "networks": {NETWORK: {"driver": "bridge"}}, "volumes": volumes,
                         "configs": configs})  # fmt: skip
    for service, names in secrets.items():
        document["services"][service]["environment"].update({key: _from_env(key) for key in names})
    return document


def write_compose_file(project_dir: Path, stack: str, target: Path) -> Path:
    """Load the stack's fleet from `project_dir` as the program does, write its compose file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(compose_file(load_fleet(project_dir, stack)), sort_keys=False, width=120))
    return target


@dataclass
class ComposeProject:
    """`docker compose -p NAME -f FILE ...` with the Compose build as the CLI's plugin."""

    docker: str  # the docker CLI
    file: Path
    name: str
    env: dict[str, str]  # DOCKER_HOST, DOCKER_CONFIG (the plugin) and the secrets the file reads

    def run(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        argv = [self.docker, "compose", "--progress", "plain", "-p", self.name, "-f", str(self.file), *args]
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout, check=False)
