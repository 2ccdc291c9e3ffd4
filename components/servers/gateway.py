"""The LiteLLM gateway: the rendered config at CONFIG_PATH, run under the entrypoint that answers
readiness and drains it before it stops (gateway_entrypoint.py), healthy only once it has been ready
long enough for the front proxy to route to it. The master key and API keys are the target's to
pass as secrets."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from llmfleet._front_proxy import DRAIN_S, READY_FOR_S

from .spec import ContainerSpec, python_check, readiness_probe

CONFIG_PATH = "/app/config.yaml"
PORT = 4000  # inside the container; clients use the front proxy's published port
# LiteLLM's readiness needs no key and calls no backend (/health would send completions). The
# entrypoint answers the same path on READY_PORT, and turns it to 503 before LiteLLM stops: the
# front proxy and the container's health check both ask there (components/servers/gateway_entrypoint.py).
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
