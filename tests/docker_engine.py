"""A real Docker engine for the end-to-end tests: `dockerd` started with roots of its own and a
socket of its own, stopped by its pid when the tests end.

Its data root lives in the test cache, so the images the tests build (tests/images.py) survive
from one run to the next; containers, networks and volumes do not: the engine starts and ends
with none. It makes no default bridge and touches no iptables rule of the machine: the tests'
containers share the user-defined networks the program creates, and reach the tests through ports
published on 127.0.0.1 (Docker's userland proxy). Image builds use the host's network
(`docker build --network host`), the only way a build step reaches Debian's mirror here.

Every component sets a healthcheck `start_interval`, which needs API 1.44 (Docker 25+): an older
daemon is refused here with the version it has, before any test deploys.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.llama_build import CACHE_ROOT

DATA_ROOT = CACHE_ROOT / "docker-data"
# The subnets the engine's networks take: each engine running at once on this machine needs its own
# (two engines may be up together: the two-host tests, or two checkouts' tests), or two bridges would
# claim one subnet and the host's routes to both would break. LLMFLEET_TEST_ADDRESS_POOL overrides it.
ADDRESS_POOL = os.environ.get("LLMFLEET_TEST_ADDRESS_POOL", "10.201.0.0/16")
# Docker 25: the first engine with API 1.44, which healthcheck start_interval needs.
MIN_API = (1, 44)
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30


class DockerEngineError(RuntimeError):
    pass


@dataclass(frozen=True)
class DockerEngine:
    host: str  # DOCKER_HOST for clients: unix:///.../docker.sock
    pid: int
    version: str
    api_version: str

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host}

    def docker(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [docker_cli(), *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and done.returncode != 0:
            raise DockerEngineError(f"docker {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
        return done

    def ids(self, kind: str, *filters: str) -> list[str]:
        """Ids of containers (`ps -a`), networks or volumes matching every `key=value` filter."""
        listing = {"container": ["ps", "-a"], "network": ["network", "ls"], "volume": ["volume", "ls"]}[kind]
        flags = [f for value in filters for f in ("--filter", value)]
        out = self.docker(*listing, "-q", *flags).stdout
        return [line for line in out.split() if line]

    def remove_everything_but_images(self) -> None:
        for cid in self.ids("container"):
            self.docker("rm", "-f", "-v", cid, check=False)
        for nid in self.ids("network", "type=custom"):
            self.docker("network", "rm", nid, check=False)
        for vid in self.ids("volume"):
            self.docker("volume", "rm", "-f", vid, check=False)


def docker_cli() -> str:
    found = shutil.which("docker")
    if not found:
        raise DockerEngineError("no docker CLI on PATH: apt-get install docker-cli (see .ci/run)")
    return found


def dockerd_binary() -> str:
    found = shutil.which("dockerd") or ("/usr/sbin/dockerd" if Path("/usr/sbin/dockerd").exists() else None)
    if not found:
        raise DockerEngineError("no dockerd: install Docker Engine 25 or later (.ci/run installs docker.io)")
    return found


def _stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)


def _stop_stale(pidfile: Path, data_root: Path) -> None:
    """A dockerd left by a killed run still holds the data root: stop it first."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists() and str(data_root) in cmdline.read_text(errors="replace"):
        _stop(pid)


@contextmanager
def running_engine(
    air_gapped: bool = True, data_root: Path = DATA_ROOT, address_pool: str = ADDRESS_POOL
) -> Iterator[DockerEngine]:
    """Start dockerd, yield it with nothing but images in it, then empty it and stop it.

    `air_gapped`: no upstream DNS for containers (`--dns 127.0.0.1`), as on an air-gapped host, so
    a name outside the fleet's network (a stopped backend's) fails at once instead of waiting on
    the machine's resolver, which containers cannot reach here. Image builds need the resolver
    (their RUN steps reach Debian's mirror by name): build in an engine started without it.
    `data_root` and `address_pool`: another engine's, for a second engine up at the same time."""
    data_root.mkdir(parents=True, exist_ok=True)
    pidfile = data_root.parent / f"{data_root.name}.pid"
    _stop_stale(pidfile, data_root)
    # Unix socket paths are limited to 108 bytes: keep the exec root and socket short.
    run_dir = Path(tempfile.mkdtemp(prefix="llmfleet-dockerd-"))
    sock = run_dir / "docker.sock"
    log_path = data_root.parent / f"{data_root.name}.log"
    cmd = [
        dockerd_binary(),
        "--data-root", str(data_root),
        "--exec-root", str(run_dir / "exec"),
        "--pidfile", str(pidfile),
        "-H", f"unix://{sock}",
        "--bridge=none",
        "--iptables=false",
        "--ip6tables=false",
        "--userland-proxy=true",
        "--default-address-pool", f"base={address_pool},size=24",
        *(["--dns=127.0.0.1"] if air_gapped else []),
    ]  # fmt: skip
    with log_path.open("ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    engine = None
    try:
        engine = _wait_ready(proc, f"unix://{sock}", log_path)
        engine.remove_everything_but_images()
        yield engine
    finally:
        if engine is not None:
            engine.remove_everything_but_images()
        _stop(proc.pid)
        proc.wait(timeout=STOP_TIMEOUT_S)
        shutil.rmtree(run_dir, ignore_errors=True)


def _wait_ready(proc: subprocess.Popen, host: str, log_path: Path) -> DockerEngine:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise DockerEngineError(f"dockerd exited ({proc.returncode}); log {log_path}:\n{tail}")
        done = subprocess.run(
            [docker_cli(), "version", "--format", "{{json .Server}}"],
            env={**os.environ, "DOCKER_HOST": host},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode == 0:
            server = json.loads(done.stdout)
            api = server["ApiVersion"]
            if tuple(int(part) for part in api.split(".")) < MIN_API:
                raise DockerEngineError(
                    f"Docker Engine {server['Version']} speaks API {api}; llmfleet's healthchecks "
                    f"(start_interval) need API {'.'.join(map(str, MIN_API))}, Docker 25 or later"
                )
            return DockerEngine(host=host, pid=proc.pid, version=server["Version"], api_version=api)
        time.sleep(0.5)
    raise DockerEngineError(f"dockerd did not answer within {START_TIMEOUT_S} s; log {log_path}")
