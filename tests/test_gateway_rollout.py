"""A catalog change under load, on loopback with the real pieces (tests/rollout.py): the gateway
replaced new-first behind the front proxy, twice, at 20 requests/s, and not one request fails."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from components.server_container import STOP_GRACE_S
from llmfleet._front_proxy import FrontProxySettings, front_proxy_config

from .rollout import HAPROXY, roll

pytestmark = [pytest.mark.litellm, pytest.mark.timeout(300)]


def test_the_rendered_config_is_valid_for_haproxy(tmp_path: Path) -> None:
    config = tmp_path / "haproxy.cfg"
    config.write_text(front_proxy_config(FrontProxySettings(stack="prod", gateway_port=4000)))
    check = subprocess.run([HAPROXY, "-c", "-f", str(config)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr


def test_two_gateway_replacements_under_load_fail_no_request(tmp_path: Path) -> None:
    result = roll(tmp_path, replacements=2, rate=20, grace_s=STOP_GRACE_S["litellm"])
    assert result.sent >= 20 * 15, result.sent  # the rolls took time: the load ran through them
    assert result.failures == [], f"{len(result.failures)} of {result.sent} failed: {result.failures[:5]}"
