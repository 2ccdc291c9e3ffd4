"""The front proxy on Docker: HAProxy's container (components/servers/front_proxy.py) with its config
uploaded, publishing the stack's gateway address."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from llmfleet._front_proxy import FRONT_ALIAS, FrontProxySettings, front_proxy_config

from ..servers.front_proxy import CONFIG_PATH, front_proxy_spec
from .container import Placement, container_healthy, pulled_image, server_container
from .container_health import ContainerHealthy


@dataclass
class FrontProxyArgs:
    image: str
    placement: Placement  # its publish_ip is the stack's bind address
    port: int  # the published port: the stack's gateway port
    settings: FrontProxySettings


class FrontProxy(pulumi.ComponentResource):
    container: docker.Container
    healthy: ContainerHealthy

    def __init__(self, name: str, args: FrontProxyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llmfleet:index:FrontProxy", name, {}, opts)
        image = pulled_image(name, args.image, args.placement, self)
        self.container = server_container(
            name,
            front_proxy_spec(),
            image.image_id,
            args.placement,
            self,
            uploads=[docker.ContainerUploadArgs(file=CONFIG_PATH, content=front_proxy_config(args.settings))],
            external_port=args.port,
            alias=FRONT_ALIAS,
        )
        self.healthy = container_healthy(name, front_proxy_spec(), self.container, args.placement, self,
                                         what="the front proxy", logs_name="front-proxy")  # fmt: skip
        self.register_outputs({"container": self.container.name})
