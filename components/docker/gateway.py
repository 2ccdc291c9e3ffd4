"""The LiteLLM gateway on Docker: the rendered config uploaded into the container, the master key from a
stack secret as an environment variable, started after every backend it routes to is healthy and
every Ollama pull is done, and itself waited for until healthy. It publishes no port: clients reach
it through the front proxy, which finds it by its network alias, so a catalog change replaces it
new-first with nothing dropped."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from llmfleet._front_proxy import GATEWAY_ALIAS

from ..servers.gateway import CONFIG_PATH, ENTRYPOINT_PATH, ENTRYPOINT_SOURCE, gateway_spec
from .container import Placement, container_healthy, pulled_image, secret_env, server_container
from .container_health import ContainerHealthy


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
