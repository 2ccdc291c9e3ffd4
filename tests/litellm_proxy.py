"""Start the real LiteLLM proxy on loopback for a test, and always stop it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

LITELLM = str(Path(sys.executable).parent / "litellm")
MASTER_KEY = "sk-llmfleet-test-7f3a9c2e51"
STARTUP_DEADLINE = 90.0  # seconds; it takes 6-8 s on this 2-core machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proxy_env(master_key: str = MASTER_KEY) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LITELLM_", "DATABASE_URL"))}
    env.update(
        LITELLM_LOCAL_MODEL_COST_MAP="True",  # never fetch the price list from the network
        LITELLM_MASTER_KEY=master_key,
        OLLAMA_API_KEY="unused-in-tests",
        NO_COLOR="1",
    )
    return env


@contextlib.contextmanager
def running_proxy(
    config_text: str, workdir: Path, master_key: str = MASTER_KEY, port: int | None = None
) -> Iterator[str]:
    """Yield the base URL of a LiteLLM proxy serving `config_text` (on `port`, else a free one); stop it on exit."""
    config = workdir / "litellm.yaml"
    config.write_text(config_text)
    port = port or free_port()
    log_path = workdir / "litellm.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [LITELLM, "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=proxy_env(master_key),
            start_new_session=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_ready(url, proc, log_path)
            yield url
        finally:
            stop_process(proc)


def _wait_ready(url: str, proc: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"LiteLLM exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health/liveliness", timeout=1.0).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"LiteLLM not ready within {STARTUP_DEADLINE} s:\n{log_path.read_text()[-3000:]}")


def stop_process(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it has not gone within `grace_s` (0: at once)."""
    if proc.poll() is not None:
        return
    if grace_s > 0:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace_s)
            return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def listed_models(url: str, master_key: str = MASTER_KEY) -> list[str]:
    response = httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {master_key}"}, timeout=10)
    response.raise_for_status()
    return sorted(item["id"] for item in response.json()["data"])


def validate_config(config_text: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    config = workdir / "validate.yaml"
    config.write_text(config_text)
    return subprocess.run(
        [LITELLM, "--config", str(config), "--validate_config"],
        capture_output=True,
        text=True,
        env=proxy_env(),
        timeout=120,
    )
