"""The gateway's entrypoint, run for real around a small server standing in for LiteLLM: ready only
once LiteLLM is, 503 from the moment a stop begins, and LiteLLM stopped only once the connections
sent to it are done. (tests/test_gateway_rollout.py runs it around the real LiteLLM under load.)"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from components.servers.gateway import ENTRYPOINT_SOURCE
from components.servers.gateway_entrypoint import open_connections

from .litellm_proxy import free_port, stop_process

pytestmark = pytest.mark.timeout(60)

# LiteLLM's stand-in: ready after a second, and it says when it got the stop signal.
STAND_IN = """
import http.server, signal, sys, time
time.sleep(1)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
def term(*_):
    print("SIGTERM", flush=True); sys.exit(0)
signal.signal(signal.SIGTERM, term)
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""

TABLE = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0200007F:0FA0 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
   1: 0200007F:0FA0 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 2 1
   2: 0300007F:0FA0 0100007F:D432 01 00000000:00000000 00:00000000 00000000     0        0 3 1
   3: 0200007F:0FA0 0100007F:D433 06 00000000:00000000 00:00000000 00000000     0        0 4 1
   4: 0100007F:D431 0200007F:0FA0 01 00000000:00000000 00:00000000 00000000     0        0 5 1
"""


def test_open_connections_counts_established_ones_to_the_port(tmp_path: Path) -> None:
    (tmp_path / "tcp").write_text(TABLE)  # port 4000 = 0x0FA0; 127.0.0.2 = 0200007F
    # Listening (0A) and TIME_WAIT (06) are not requests in flight; the client's side is not ours.
    assert open_connections(4000, proc_net=str(tmp_path)) == 2
    assert open_connections(4000, "127.0.0.2", proc_net=str(tmp_path)) == 1
    assert open_connections(4001, proc_net=str(tmp_path)) == 0


def ready(url: str) -> tuple[int, str]:
    try:
        answer = httpx.get(url, timeout=2)
        return answer.status_code, answer.text
    except httpx.HTTPError as exc:
        return 0, type(exc).__name__


def test_a_stop_drains_first_and_waits_for_open_connections(tmp_path: Path) -> None:
    litellm_port, ready_port = free_port(), free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "LLMFLEET_READY_LISTEN": f"127.0.0.1:{ready_port}",
        "LLMFLEET_READINESS_URL": f"http://127.0.0.1:{litellm_port}/health/readiness",
        "LLMFLEET_DRAIN_S": "0.5",
        "LLMFLEET_DRAIN_MAX_S": "20",
    }
    argv = [sys.executable, str(ENTRYPOINT_SOURCE), sys.executable, "-c", STAND_IN, str(litellm_port)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{ready_port}/health/readiness"
    try:
        deadline = time.monotonic() + 20
        states = []
        while time.monotonic() < deadline and (not states or states[-1][0] != 200):
            states.append(ready(url))
            time.sleep(0.1)
        assert states[-1] == (200, "200\n"), states
        assert any(code == 503 for code, _ in states), states  # not ready before LiteLLM is

        held = socket.create_connection(("127.0.0.1", litellm_port))  # a request LiteLLM has not answered
        proc.send_signal(signal.SIGTERM)  # Docker stops PID 1 only
        time.sleep(0.1)
        assert ready(url) == (503, "draining\n")
        time.sleep(1.5)  # past LLMFLEET_DRAIN_S: still serving, since a connection is open
        assert proc.poll() is None
        socket.create_connection(("127.0.0.1", litellm_port)).close()

        held.close()
        code = proc.wait(timeout=10)
        out, err = proc.communicate(timeout=5)
        assert "SIGTERM" in out  # LiteLLM got the signal, after the drain
        assert "gateway: drained in" in err and "(0 connections left)" in err, err
        assert code == 0
    finally:
        stop_process(proc, 0)


def test_without_a_command_it_says_how_to_run_it() -> None:
    done = subprocess.run([sys.executable, str(ENTRYPOINT_SOURCE)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 64 and "usage: gateway_entrypoint.py COMMAND" in done.stderr
