"""The LiteLLM gateway: the rendered config uploaded into the container, the master key from a
stack secret as an environment variable, started after every backend it routes to is healthy and
every Ollama pull is done, and itself waited for until healthy. It publishes no port: clients reach
it through the front proxy, which finds it by its network alias, so a catalog change replaces it
new-first with nothing dropped."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_docker as docker

from llmfleet._front_proxy import DRAIN_S, GATEWAY_ALIAS, READY_FOR_S

from ..docker.container_health import ContainerHealthy
from .spec import (
    ContainerSpec,
    Placement,
    container_healthy,
    pulled_image,
    python_check,
    readiness_probe,
    secret_env,
    server_container,
)

CONFIG_PATH = "/app/config.yaml"
PORT = 4000  # inside the container; clients use the front proxy's published port
# LiteLLM's readiness needs no key and calls no backend (/health would send completions). The
# entrypoint answers the same path on READY_PORT, and turns it to 503 before LiteLLM stops: the
# front proxy and the container's health check both ask there (components/gateway_entrypoint.py).
READINESS_PATH = "/health/readiness"
LIVENESS_PATH = "/health/liveliness"
READY_PORT = 4001
ENTRYPOINT_PATH = "/app/llmfleet_gateway_entrypoint.py"
ENTRYPOINT_SOURCE = Path(__file__).with_name("gateway_entrypoint.py")


def entrypoint_env(ready_listen: str, readiness_url: str) -> dict[str, str]:
    """What the entrypoint reads: where it answers readiness, LiteLLM's own, and the drain."""
    return {
        "LLMFLEET_READY_LISTEN": ready_listen,
        "LLMFLEET_READINESS_URL": readiness_url,
        "LLMFLEET_DRAIN_S": str(DRAIN_S),
    }


def gateway_spec() -> ContainerSpec:
    return ContainerSpec(
        kind="litellm",
        port=PORT,
        # The image's Python runs the entrypoint, which runs LiteLLM as the image would.
        entrypoint=["python3", ENTRYPOINT_PATH],
        command=["litellm", "--config", CONFIG_PATH, "--port", str(PORT)],
        # LiteLLM fetches its model price map from the internet at start unless told to use the
        # copy it ships: GPU hosts are often air-gapped, and a gateway must start without a network.
        # LiteLLM's HTTP client caches DNS answers for 300 s (AIOHTTP_TTL_DNS_CACHE): a backend
        # container replaced or stopped in that time keeps being called at its old address, and
        # requests hang there instead of falling back. Docker's DNS is local: ask it each second.
        env={
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "AIOHTTP_TTL_DNS_CACHE": "1",
            **entrypoint_env(f"0.0.0.0:{READY_PORT}", f"http://127.0.0.1:{PORT}{READINESS_PATH}"),
        },
        # Healthy only once ready for READY_FOR_S: by then the front proxy routes to it, so
        # Pulumi may stop the gateway it replaces (llmfleet/_front_proxy.py).
        # Two probes READY_FOR_S apart, each up to 1.5 s: more than the default 5 s timeout allows.
        healthcheck=dataclasses.replace(
            python_check(
                readiness_probe(f"http://127.0.0.1:{READY_PORT}{READINESS_PATH}", READY_FOR_S), start_period_s=60
            ),
            timeout_s=10,
        ),
        wait_timeout_s=180,
    )


@dataclass
class GatewayArgs:
    image: str
    config_yaml: str
    declared_models: list[str]
    probe_models: list[str]  # declared names served by local deployments: the policy probes these
    master_key: pulumi.Input[str]
    placement: Placement  # publishes nothing: the front proxy holds the stack's address
    url: str
    api_keys: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    backends: Sequence[pulumi.Resource] = ()  # what must be done first: each backend's health wait, each pull


class Gateway(pulumi.ComponentResource):
    url: pulumi.Output[str]
    declared_models: pulumi.Output[list[str]]
    probe_models: pulumi.Output[list[str]]
    master_key: pulumi.Output[str]
    container: docker.Container
    healthy: ContainerHealthy

    def __init__(self, name: str, args: GatewayArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llmfleet:index:Gateway", name, {}, opts)
        image = pulled_image(name, args.image, args.placement, self)
        self.container = server_container(
            name,
            gateway_spec(),
            image.image_id,
            args.placement,
            self,
            # The master key, then external API keys by name; the list must be stable across runs.
            extra_env=secret_env({"LITELLM_MASTER_KEY": args.master_key, **dict(sorted(args.api_keys.items()))}),
            uploads=[
                docker.ContainerUploadArgs(file=CONFIG_PATH, content=args.config_yaml),
                docker.ContainerUploadArgs(file=ENTRYPOINT_PATH, content=ENTRYPOINT_SOURCE.read_text()),
            ],
            depends_on=args.backends,
            rolling_alias=GATEWAY_ALIAS,
        )
        # A catalog change replaces the container create-first, and this wait with it: the old
        # gateway is deleted only after the new one is healthy (the engine deletes what it replaced
        # after every other step), that is, once the front proxy routes to it.
        self.healthy = container_healthy(name, gateway_spec(), self.container, args.placement, self,
                                         what="the gateway", logs_name="gateway")  # fmt: skip
        self.url = pulumi.Output.from_input(args.url)
        self.declared_models = pulumi.Output.from_input(list(args.declared_models))
        self.probe_models = pulumi.Output.from_input(list(args.probe_models))
        self.master_key = pulumi.Output.secret(args.master_key)
        self.register_outputs({"url": self.url, "declared_models": self.declared_models,
                               "probe_models": self.probe_models, "master_key": self.master_key})  # fmt: skip
