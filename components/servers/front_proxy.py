"""The front proxy: HAProxy holding the stack's gateway address (bind:port), in front of however
many gateway containers exist. Its config changes only with `llmfleet:gateway`, never with the
catalog, so a catalog change never touches it; replacing it (a new image, a new port) is a short
outage, the one the gateways' create-first replacement avoids."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from llmfleet._front_proxy import FRONT_ALIAS, FRONT_PORT, FrontProxySettings, front_proxy_config

from ..docker.container_health import ContainerHealthy
from .spec import (
    ContainerSpec,
    Healthcheck,
    Placement,
    container_healthy,
    pulled_image,
    server_container,
)

CONFIG_PATH = "/usr/local/etc/haproxy/haproxy.cfg"  # where the official image's CMD reads it


def front_proxy_spec() -> ContainerSpec:
    return ContainerSpec(
        kind="haproxy",
        port=FRONT_PORT,
        # The official image is Debian with bash but no curl: healthy once HAProxy accepts.
        healthcheck=Healthcheck(["CMD", "bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{FRONT_PORT}"], start_period_s=10),
        wait_timeout_s=120,
    )


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
