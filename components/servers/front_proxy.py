"""The front proxy: HAProxy holding the stack's gateway address (bind:port), in front of however
many gateway containers exist. Its config changes only with `llmfleet:gateway`, never with the
catalog, so a catalog change never touches it; replacing it (a new image, a new port) is a short
outage, the one the gateways' create-first replacement avoids."""

from __future__ import annotations

from llmfleet._front_proxy import FRONT_PORT

from .spec import ContainerSpec, Healthcheck

CONFIG_PATH = "/usr/local/etc/haproxy/haproxy.cfg"  # where the official image's CMD reads it


def front_proxy_spec() -> ContainerSpec:
    return ContainerSpec(
        kind="haproxy",
        port=FRONT_PORT,
        # The official image is Debian with bash but no curl: healthy once HAProxy accepts.
        healthcheck=Healthcheck(["CMD", "bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{FRONT_PORT}"], start_period_s=10),
        wait_timeout_s=120,
    )
