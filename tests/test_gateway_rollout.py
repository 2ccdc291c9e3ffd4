"""A catalog change under load, on loopback with the real pieces (tests/rollout.py): the gateway
replaced new-first behind the front proxy, twice, at 20 requests/s, and not one request fails."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from components.servers.spec import STOP_GRACE_S
from llmfleet._cli import main
from llmfleet._front_proxy import FrontProxySettings, front_proxy_config

from .litellm_proxy import MASTER_KEY
from .rollout import HAPROXY, MODEL, roll

pytestmark = [pytest.mark.litellm, pytest.mark.timeout(300)]


def test_the_rendered_config_is_valid_for_haproxy(tmp_path: Path) -> None:
    config = tmp_path / "haproxy.cfg"
    config.write_text(front_proxy_config(FrontProxySettings(stack="prod", gateway_port=4000, check_port=4001)))
    check = subprocess.run([HAPROXY, "-c", "-f", str(config)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("busy", [False, True], ids=["idle-host", "every-core-busy"])
def test_two_gateway_replacements_under_load_fail_no_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, busy: bool
) -> None:
    # every-core-busy: a busy loop on each core from the first replacement on, as on a GPU host
    # whose CPUs feed the GPUs; the margin between "new gateway ready" and "old gateway gone" must
    # not depend on an idle machine.
    checks: dict[str, tuple[int, str]] = {}

    def drift_and_probe_through_the_front_proxy(url: str) -> None:
        monkeypatch.setenv("LITELLM_MASTER_KEY", MASTER_KEY)
        monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
        for command in ("drift", "probe"):
            code = main(["--project-dir", str(tmp_path / "project"), command, "--stack", "test", "--url", url])
            checks[command] = (code, capsys.readouterr().out)

    result = roll(tmp_path, replacements=2, rate=20, grace_s=STOP_GRACE_S["litellm"],
                  after=drift_and_probe_through_the_front_proxy, busy=busy)  # fmt: skip
    assert result.sent >= 20 * 15, result.sent  # the rolls took time: the load ran through them
    assert result.failures == [], f"{len(result.failures)} of {result.sent} failed: {result.failures[:5]}"
    # The users' URL is the one the drift check and probe use: both see the new gateway.
    assert checks["drift"][0] == 0 and "in sync" in checks["drift"][1], checks
    assert checks["probe"][0] == 0 and f"{MODEL}" in checks["probe"][1], checks
