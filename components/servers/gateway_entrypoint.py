"""PID 1 of the gateway container: LiteLLM as a child process, behind a readiness endpoint that
the front proxy and Docker check, which drains the gateway before LiteLLM is told to stop.

Why: on SIGTERM uvicorn closes its listener at once and drops the connections it has accepted but
not yet read, while the front proxy keeps sending new requests until its checks find the gateway
gone. On an idle host that window is a few milliseconds; with every core busy it is long enough
that requests reach a gateway already stopping and end with no response (measured with
tests/rollout.py: 11 to 165 failed of about 2,000 at 20 requests/s; HAProxy logs them `SH--`).
Here a stop signal first turns the readiness answer to 503 while LiteLLM keeps serving, for
LLMFLEET_DRAIN_S seconds: long enough for the front proxy to take the gateway out (two failed
checks, 250 ms apart). Then it waits until no connection to LiteLLM is left open: a busy gateway
may not even have read requests sent seconds ago (12 s, measured), and uvicorn would drop those
on its stop. Only then does LiteLLM get the signal. The container's stop grace covers it all
(components/server_container.py, STOP_GRACE_S).

It is uploaded into the container and run by the image's own Python: standard library only, and
nothing of llmfleet imported.

Environment:
  LLMFLEET_READY_LISTEN   where to answer GET /health/readiness (default 0.0.0.0:4001)
  LLMFLEET_READINESS_URL  LiteLLM's own readiness, asked until it first answers 200, and whose
                          address is then checked by connecting (default
                          http://127.0.0.1:4000/health/readiness)
  LLMFLEET_DRAIN_S        seconds between a stop signal and the first look at open connections
                          (default 5: the front proxy's checks take the gateway out meanwhile)
  LLMFLEET_DRAIN_MAX_S    then wait until no connection to LiteLLM is open, for at most this long
                          from the signal (default 35; the container's stop grace is 45)
"""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

READY_PATH = "/health/readiness"


class Readiness:
    """Ready = LiteLLM has answered its own readiness once, still accepts connections, and no stop
    has begun. After the first answer only a TCP connect is asked of it: a gateway busy with
    requests answers its readiness slowly (seconds, with every core busy) but is serving, and
    must not be taken out for that; a gateway whose LiteLLM exited is gone with this process."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        parts = urllib.parse.urlsplit(upstream)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.started = threading.Event()
        self.draining = threading.Event()

    def wait_started(self, child: subprocess.Popen[bytes]) -> None:
        while not self.started.is_set() and child.poll() is None:
            try:
                with urllib.request.urlopen(self.upstream, timeout=10) as answer:
                    if answer.status == 200:
                        self.started.set()
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)

    def status(self) -> int:
        if self.draining.is_set() or not self.started.is_set():
            return 503
        try:
            socket.create_connection(self.address, timeout=5).close()
        except OSError:
            return 503
        return 200


def open_connections(port: int, address: str | None = None, proc_net: str = "/proc/net") -> int:
    """Established TCP connections to local `port` (and `address`, when given), from the
    kernel's tables: the requests the front proxy has sent that LiteLLM has not answered yet,
    read or not (the front proxy closes its side after each response: http-server-close)."""
    wanted = None
    if address is not None:
        wanted = socket.inet_aton(address)[::-1].hex().upper()  # /proc/net/tcp: little-endian
    count = 0
    for table in ("tcp", "tcp6"):
        try:
            with open(f"{proc_net}/{table}") as entries:
                lines = entries.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            host, _, hex_port = local.rpartition(":")
            if state == "01" and int(hex_port, 16) == port and (wanted is None or host.endswith(wanted)):
                count += 1
    return count


def serve_readiness(listen: str, readiness: Readiness) -> http.server.ThreadingHTTPServer:
    host, _, port = listen.rpartition(":")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = readiness.status() if self.path == READY_PATH else 404
            body = b"draining\n" if readiness.draining.is_set() else f"{status}\n".encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:  # a check every 250 ms is not worth a log line
            pass

    server = http.server.ThreadingHTTPServer((host or "0.0.0.0", int(port)), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: gateway_entrypoint.py COMMAND [ARG ...]   (e.g. litellm --config ...)", file=sys.stderr)
        return 64
    readiness = Readiness(os.environ.get("LLMFLEET_READINESS_URL", "http://127.0.0.1:4000" + READY_PATH))
    drain_s = float(os.environ.get("LLMFLEET_DRAIN_S", "5"))
    child = subprocess.Popen(argv)
    server = serve_readiness(os.environ.get("LLMFLEET_READY_LISTEN", "0.0.0.0:4001"), readiness)
    threading.Thread(target=readiness.wait_started, args=(child,), daemon=True).start()

    drain_max_s = float(os.environ.get("LLMFLEET_DRAIN_MAX_S", "35"))
    # In a container every connection to LiteLLM's port is to it; on a shared host (the tests)
    # only those to its own address are.
    serving = readiness.address if readiness.address[0] != "127.0.0.1" else (None, readiness.address[1])

    def drain_then_stop(signum: int) -> None:
        started = time.monotonic()
        time.sleep(drain_s)  # the front proxy's checks see 503 and take the gateway out
        while open_connections(serving[1], serving[0]) and time.monotonic() - started < drain_max_s:
            time.sleep(0.25)  # what was sent before that is answered first, read or not
        left = open_connections(serving[1], serving[0])
        waited = time.monotonic() - started
        print(f"gateway: drained in {waited:.1f} s ({left} connections left), stopping LiteLLM", file=sys.stderr,
              flush=True)  # fmt: skip
        if child.poll() is None:
            child.send_signal(signum)

    def stop(signum: int, _frame: object) -> None:
        if readiness.draining.is_set():
            return
        readiness.draining.set()
        threading.Thread(target=drain_then_stop, args=(signum,), daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = child.wait()
    server.shutdown()
    return 128 - code if code < 0 else code  # killed by a signal: the shell's convention


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
