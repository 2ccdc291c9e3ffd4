"""A gateway roll on loopback, as Docker and Pulumi perform it, with the real pieces.

- HAProxy (Debian's package) runs the front proxy config llmfleet renders, pointed at a DNS stub;
- the stub plays Docker's embedded DNS (127.0.0.11): it answers the gateway alias with every
  gateway "container" that exists, from the moment it starts, healthy or not;
- each gateway is a real LiteLLM proxy on its own loopback address (127.0.0.2, 127.0.0.3: one
  address per container, one port for all, as on a Docker network);
- "healthy" is the gateway container's own health check command, run as Docker runs it;
- a load generator sends chat completions at a fixed rate and records every failure.

Used by tests/test_gateway_rollout.py and bench/catalog_change.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import httpx

from llmfleet._front_proxy import GATEWAY_ALIAS, FrontProxySettings, front_proxy_config

from .litellm_proxy import LITELLM, MASTER_KEY, free_port, proxy_env, stop_process

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
GATEWAY_ADDRESSES = ("127.0.0.2", "127.0.0.3")
START_DEADLINE_S = 120.0


def free_port_on(*addresses: str) -> int:
    """A port free on every one of `addresses`."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind((addresses[0], 0))
            port = s.getsockname()[1]
        try:
            for address in addresses[1:]:
                with socket.socket() as s:
                    s.bind((address, port))
            return port
        except OSError:
            continue
    raise RuntimeError(f"no port free on all of {addresses}")


class DnsStub:
    """Answers A queries for the gateway alias with the current addresses, as Docker's DNS does."""

    def __init__(self, name: str = GATEWAY_ALIAS) -> None:
        self.name = name.rstrip(".") + "."
        self.addresses: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            with contextlib.suppress(Exception):  # a malformed query is dropped, as a server would
                self.sock.sendto(self._answer(dns.message.from_wire(wire)).to_wire(), peer)

    def _answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.RA
        question = query.question[0]
        if question.name.to_text().lower() != self.name:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.A and self.addresses:
            response.answer.append(dns.rrset.from_text(self.name, 0, "IN", "A", *self.addresses))
        return response  # AAAA, or no gateway yet: NOERROR with no answer

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(timeout=2)


@dataclass
class Gateway:
    address: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    check_port: int | None = None  # where its entrypoint answers readiness; None: LiteLLM alone

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    @property
    def readiness_url(self) -> str:
        from components.servers.gateway import READINESS_PATH

        return f"http://{self.address}:{self.check_port or self.port}{READINESS_PATH}"


def start_gateway(config: Path, address: str, port: int, workdir: Path, check_port: int | None = None) -> Gateway:
    """A LiteLLM proxy on `address:port`; returns at once, as `docker run` does. With `check_port`,
    run as the gateway container runs it: under its entrypoint (components/servers/gateway_entrypoint.py),
    which answers readiness there and drains before LiteLLM stops."""
    from components.servers.gateway import ENTRYPOINT_SOURCE, READINESS_PATH, entrypoint_env

    log = workdir / f"litellm-{address}-{time.monotonic_ns()}.log"
    argv = [LITELLM, "--config", str(config), "--host", address, "--port", str(port)]
    env = proxy_env()
    if check_port is not None:
        argv = [sys.executable, str(ENTRYPOINT_SOURCE), *argv]
        env |= entrypoint_env(f"{address}:{check_port}", f"http://{address}:{port}{READINESS_PATH}")
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return Gateway(address, port, proc, log, check_port)


def wait_healthy(gateway: Gateway, check: list[str], interval_s: float = 1.0) -> None:
    """Run the container's health check command until it passes, as Docker does (start_interval)."""
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        if gateway.proc.poll() is not None:
            raise RuntimeError(f"LiteLLM exited with {gateway.proc.returncode}:\n{gateway.log.read_text()[-3000:]}")
        if subprocess.run(check, capture_output=True, timeout=30).returncode == 0:
            return
        time.sleep(interval_s)
    raise RuntimeError(f"the gateway at {gateway.url} was not healthy within {START_DEADLINE_S} s")


def stop_gracefully(gateway: Gateway, grace_s: float) -> None:
    """What pulumi-docker's delete does with destroy_grace_seconds: the stop signal to the
    container's PID 1 only (its entrypoint), then SIGKILL to everything left."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(gateway.proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        gateway.proc.wait(timeout=grace_s)
    stop_process(gateway.proc, 0)


def kill(gateway: Gateway) -> None:
    """What pulumi-docker's delete does without destroy_grace_seconds: ContainerStop with timeout 0."""
    stop_process(gateway.proc, 0)


@contextlib.contextmanager
def running_haproxy(config_text: str, workdir: Path) -> Iterator[subprocess.Popen[bytes]]:
    config = workdir / "haproxy.cfg"
    # Every request in the log (info, not notice): a failed one shows its termination state there.
    config.write_text(config_text.replace("local0 notice", "local0 info"))
    check = subprocess.run([HAPROXY, "-c", "-f", str(config)], capture_output=True, text=True, timeout=30)
    if check.returncode != 0:
        raise RuntimeError(f"haproxy refused the config:\n{check.stdout}{check.stderr}")
    log = workdir / "haproxy.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([HAPROXY, "-db", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    try:
        yield proc
    finally:
        stop_process(proc)


def front_proxy_settings(dns: DnsStub, listen_port: int, gateway_port: int, check_port: int) -> FrontProxySettings:
    return FrontProxySettings(stack="test", gateway_port=gateway_port, check_port=check_port,
                              listen=f"127.0.0.1:{listen_port}", nameserver=dns.address)  # fmt: skip


@dataclass
class LoadResult:
    sent: int = 0
    failures: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    @property
    def p99(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0


class Load:
    """Chat completions at `rate` per second against `url`, in a thread, until stopped."""

    def __init__(self, url: str, model: str, rate: float, timeout_s: float = 60.0) -> None:
        self.url, self.model, self.rate, self.timeout_s = url, model, rate, timeout_s
        self.result = LoadResult()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout_s + 10)

    async def _run(self) -> None:
        headers = {"Authorization": f"Bearer {MASTER_KEY}"}
        body = {"model": self.model, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)  # a new connection each time
        async with httpx.AsyncClient(timeout=self.timeout_s, limits=limits, headers=headers) as client:
            tasks: list[asyncio.Task[None]] = []
            started = time.monotonic()
            while not self._stop.is_set():
                tasks.append(asyncio.create_task(self._one(client, body)))
                self.result.sent += 1
                await asyncio.sleep(max(0.0, started + self.result.sent / self.rate - time.monotonic()))
            await asyncio.gather(*tasks)

    async def _one(self, client: httpx.AsyncClient, body: dict[str, object]) -> None:
        started = time.monotonic()
        try:
            response = await client.post(f"{self.url}/v1/chat/completions", json=body)
            if response.status_code != 200:
                self.result.failures.append(f"{response.status_code}: {response.text[:200]}")
        except httpx.HTTPError as exc:
            self.result.failures.append(f"{type(exc).__name__}: {exc}")
        self.result.latencies.append(time.monotonic() - started)


def python_check(code: str) -> list[str]:
    """The gateway's health check command (CMD-SHELL python3 -c ...), run with this Python."""
    return [sys.executable, "-c", code]


# -- the two ways a catalog change reaches the gateway, under load ------------------------------

CATALOG = "providers:\n  ollama: {{kind: ollama, port: {port}, models: [{model}]}}\n"
MODEL = "tiny"


@contextlib.contextmanager
def gateway_config(workdir: Path) -> Iterator[Path]:
    """A rendered LiteLLM config routing MODEL to a stand-in Ollama on loopback (see test_routes_real_servers)."""
    import llmfleet

    from .fleetdir import BASE_STACK, write_project
    from .standins import serve_ollama, standins

    stack = BASE_STACK + (
        "  llmfleet:hosts:\n    gw: {}\n    box: {docker: 'unix:///unused', address: 127.0.0.1}\n"
        "  llmfleet:gateway: {host: gw}\n  llmfleet:providers:\n    ollama: {host: box}\n"
    )
    with standins(1) as (ollama,):
        serve_ollama(ollama, [MODEL])
        project = write_project(workdir / "project", CATALOG.format(port=ollama.port, model=MODEL), stack)
        config = workdir / "litellm.yaml"
        config.write_text(llmfleet.render_gateway_config(llmfleet.load_fleet(project, "test")))
        yield config


def readiness_check(gateway: Gateway) -> list[str]:
    from components.servers.spec import readiness_probe
    from llmfleet._front_proxy import READY_FOR_S

    return python_check(readiness_probe(gateway.readiness_url, READY_FOR_S))


@contextlib.contextmanager
def burning_cpus(count: int | None = None) -> Iterator[list[subprocess.Popen[bytes]]]:
    """A busy loop on every core (or `count` of them), in processes of their own, for as long as the
    block runs: a GPU host is a busy host, and the roll must hold there too."""
    burners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
        for _ in range(count or os.cpu_count() or 1)
    ]
    try:
        yield burners
    finally:
        for burner in burners:
            stop_process(burner, 0)


def roll(
    workdir: Path,
    replacements: int,
    rate: float,
    grace_s: float,
    after: Callable[[str], None] | None = None,
    busy: bool = False,
) -> LoadResult:
    """Replace the gateway `replacements` times behind the front proxy, as `pulumi up` does now:
    start the new one (in DNS at once), wait until it is healthy, stop the old one gracefully.
    `after(front_url)` runs once the load has stopped, with the last gateway still behind the proxy.
    `busy`: every core runs a busy loop from the first replacement to the end of the load."""
    workdir.mkdir(parents=True, exist_ok=True)
    port, front = free_port_on(*GATEWAY_ADDRESSES), free_port()
    check_port = port
    while check_port == port:
        check_port = free_port_on(*GATEWAY_ADDRESSES)
    dns = DnsStub()
    live: list[Gateway] = []
    try:
        with gateway_config(workdir) as config:
            live.append(start_gateway(config, GATEWAY_ADDRESSES[0], port, workdir, check_port))
            dns.addresses = [GATEWAY_ADDRESSES[0]]
            wait_healthy(live[0], readiness_check(live[0]))
            with running_haproxy(front_proxy_config(front_proxy_settings(dns, front, port, check_port)), workdir):
                wait_routes(f"http://127.0.0.1:{front}")
                burners = burning_cpus() if busy else contextlib.nullcontext()
                with Load(f"http://127.0.0.1:{front}", MODEL, rate) as load, burners:
                    for i in range(replacements):
                        old, address = live[-1], GATEWAY_ADDRESSES[(i + 1) % 2]
                        live.append(start_gateway(config, address, port, workdir, check_port))
                        dns.addresses = [old.address, address]  # Docker's DNS: from container start
                        wait_healthy(live[-1], readiness_check(live[-1]))
                        stop_gracefully(old, grace_s)
                        dns.addresses = [address]  # the container is removed
                    time.sleep(2)
                if after is not None:
                    after(f"http://127.0.0.1:{front}")
                return load.result
    finally:
        for gateway in live:
            stop_process(gateway.proc)
        dns.close()


def restart_in_place(workdir: Path, restarts: int, rate: float) -> LoadResult:
    """The baseline, as `pulumi up` did before: one gateway with a fixed name and published port,
    deleted first (stopped with a 0-second grace), then created again at the same address."""
    from components.servers.gateway import LIVENESS_PATH
    from components.servers.spec import http_probe

    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port_on(GATEWAY_ADDRESSES[0])
    live: list[Gateway] = []
    try:
        with gateway_config(workdir) as config:
            live.append(start_gateway(config, GATEWAY_ADDRESSES[0], port, workdir))
            url = live[0].url
            old_check = python_check(http_probe(f"{url}{LIVENESS_PATH}"))  # the gateway's check before
            wait_healthy(live[0], old_check)
            with Load(url, MODEL, rate) as load:
                for _ in range(restarts):
                    kill(live[-1])
                    live.append(start_gateway(config, GATEWAY_ADDRESSES[0], port, workdir))
                    wait_healthy(live[-1], old_check)
                time.sleep(2)
            return load.result
    finally:
        for gateway in live:
            stop_process(gateway.proc)


def wait_routes(url: str, deadline_s: float = 30.0) -> None:
    """Until one chat completion through `url` answers (HAProxy has resolved and checked a gateway)."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}
    headers = {"Authorization": f"Bearer {MASTER_KEY}"}
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=10).status_code == 200:
                return
        time.sleep(0.25)
    raise RuntimeError(f"nothing routes through {url} within {deadline_s} s")
