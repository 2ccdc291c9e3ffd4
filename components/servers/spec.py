"""What every server runs, whatever the target: the spec each kind fills in (image aside: command,
environment, port, health check, mounts, GPUs, stop grace) and the helpers the kinds share.

The spec builders are pure functions of the catalog's objects, tested without Pulumi mocks. Each
target translates a spec into its own resources (components/docker/container.py for Docker;
bench/compose_fleet.py writes the same specs as a Compose file): nothing here imports a target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Healthcheck:
    tests: list[str]
    start_period_s: int
    interval_s: int = 10
    timeout_s: int = 5
    retries: int = 3
    start_interval_s: int = 5  # how often it is checked during the start period


def go_duration(seconds: int) -> str:
    """A whole number of seconds as Go's time.Duration prints it ("15m0s", "1h0m0s", "30s").

    The Docker provider reads a container's healthcheck back in this form: any other spelling of
    the same duration ("900s") is a difference on every preview and an update on every `up`
    (seen with the real engine; the mocks echo inputs and cannot show it)."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def http_probe(url: str) -> str:
    """Python that exits 0 if `url` answers 2xx/3xx within 4 s."""
    return f"import urllib.request as u; u.urlopen('{url}', timeout=4)"


def readiness_probe(url: str, ready_for_s: float) -> str:
    """Python that exits 0 only if `url` answers now and again `ready_for_s` later: a container
    healthy by it has been ready for that long, which is what the front proxy needs to have seen
    it (llmfleet/_front_proxy.py). Any error (refused, 503) exits non-zero."""
    return (f"import time, urllib.request as u; u.urlopen('{url}', timeout=1.5); time.sleep({ready_for_s}); "
            f"u.urlopen('{url}', timeout=1.5)")  # fmt: skip


def python_check(probe: str, start_period_s: int) -> Healthcheck:
    """For images that run on Python but may lack curl/wget (vLLM, llama-cpp-python, LiteLLM)."""
    shell = f'python3 -c "{probe}" || python -c "{probe}"'
    return Healthcheck(["CMD-SHELL", shell], start_period_s)


def python_http_check(url: str, start_period_s: int) -> Healthcheck:
    return python_check(http_probe(url), start_period_s)


@dataclass(frozen=True)
class Mount:
    container_path: str
    volume: str | None = None  # a named volume
    host_path: str | None = None  # or a host directory
    read_only: bool = False


@dataclass(frozen=True)
class FileBind:
    """One host file bound into the container (`--mount type=bind`, read-only). Unlike a volume's
    host path (`-v`, which Docker creates when missing), a bind whose source does not exist makes
    Docker refuse to create the container, naming the path: a deploy fails in seconds instead of
    waiting out the health wait for a server that cannot start."""

    source: str  # on the Docker host
    target: str  # in the container


@dataclass(frozen=True)
class GpuRequest:
    """Which GPUs a server gets: every one, or the listed device ids (how a target asks for them
    is its own: components/docker/container.py `gpu_args`)."""

    device_ids: tuple[str, ...] | None  # None: all GPUs

    @property
    def visible_devices(self) -> str:
        return ",".join(self.device_ids) if self.device_ids is not None else "all"


def gpu_request(gpus: str | Sequence[int] | None) -> GpuRequest | None:
    if gpus is None:
        return None  # CPU: nothing GPU-related at all
    if gpus == "all":
        return GpuRequest(None)
    return GpuRequest(tuple(str(i) for i in dict.fromkeys(gpus)))


# How long each kind may take to stop before it is killed, in one place: a container's own
# `stop_timeout` (docker stop, daemon restarts) and `destroy_grace_seconds` (Pulumi's delete and
# replace). The latter matters most: terraform-provider-docker 4.5 `resourceDockerContainerDelete`
# calls ContainerStop with destroy_grace_seconds, or 0 when unset, which kills the server at once
# whatever stop_timeout says. A server that exits sooner frees its slot sooner.
STOP_GRACE_S = {
    # Ollama and llama-server close every connection at the signal, cutting the replies in flight,
    # and exit within a second (tests/test_stop_real.py): the grace only bounds a hang.
    "ollama": 30,
    "llama_cpp": 30,
    # llama-cpp-python (uvicorn) finishes a reply that is not streamed, then exits: up to the grace.
    "llama_cpp_python": 30,
    # vLLM (uvicorn too; not run here) also tears down CUDA graphs and its engine process.
    "vllm": 60,
    # LiteLLM: uvicorn closes the listener, then waits for open requests up to
    # GRACEFUL_SHUTDOWN_TIMEOUT (30 s by default); a margin beyond it so it is never cut short.
    "litellm": 45,
    # HAProxy's image stops it with SIGUSR1: a soft stop that lets open connections finish.
    "haproxy": 30,
}


@dataclass(frozen=True)
class ContainerSpec:
    """Everything kind-specific about one server container."""

    kind: str
    port: int
    command: list[str] = field(default_factory=list)
    entrypoint: list[str] = field(default_factory=list)  # empty: the image's own
    env: dict[str, str] = field(default_factory=dict)
    healthcheck: Healthcheck | None = None
    wait_timeout_s: int = 120  # how long it may take to become healthy (container_healthy's budget)
    mounts: list[Mount] = field(default_factory=list)
    binds: list[FileBind] = field(default_factory=list)
    gpus: GpuRequest | None = None
    ipc_host: bool = False

    @property
    def stop_grace_s(self) -> int:
        return STOP_GRACE_S[self.kind]

    def envs(self) -> list[str]:
        env = dict(self.env)
        if self.gpus:
            env["NVIDIA_VISIBLE_DEVICES"] = self.gpus.visible_devices
        return [f"{k}={v}" for k, v in sorted(env.items())]
