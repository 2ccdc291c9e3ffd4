"""`llmfleet logs`: a deployed server's recent log, read with the Docker CLI from the host the stack
placed it on, through the same endpoint `pulumi up` uses (the host's `docker` in the stack file;
none: the local engine, DOCKER_HOST).

Which containers (names and labels from llmfleet/_docker_names.py, as the components create them):
- a provider, the front proxy: the one container of that fixed name;
- the gateway: every container labelled as the stack's gateway, running or not. After a deploy
  there is one; during a catalog change's roll (or after a roll that failed) the old and the new.
  Each is shown in turn, oldest first, under a `==> name (state) <==` line; `--follow` follows the
  newest, the one a roll brings in, and names the others on stderr.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ._docker_names import FRONT_PROXY, GATEWAY, LOG_NAMES, NAME_LABEL, STACK_LABEL, container_name
from ._load import Fleet

# (argv, timeout seconds) -> (exit code, stdout, stderr): the look-ups, whose output is read.
Capture = Callable[[Sequence[str], float], tuple[int, str, str]]
# argv -> exit code: `docker logs` itself, its output passed straight through.
Stream = Callable[[Sequence[str]], int]

LOOKUP_TIMEOUT_S = 60.0  # an ssh:// host can take seconds to answer
# What `docker --since` takes: a Go duration (10m, 1h30m), a Unix time, or an RFC 3339 date or time.
SINCE = re.compile(
    r"(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+|\d+(\.\d+)?|\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?"
)


class LogsError(Exception):
    """Why the log could not be shown; `usage` when the command line asked for something that is not there."""

    def __init__(self, message: str, *, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


@dataclass(frozen=True)
class Target:
    """What `NAME` is in the stack: which host, through which endpoint, and how its containers are found."""

    what: str  # for messages: "provider 'ollama'", "the gateway", "the front proxy"
    host: str
    endpoint: str | None  # the host's `docker`; None: the local engine
    container: str | None  # a fixed name, or None: the gateway's containers, found by label
    labels: tuple[str, ...] = ()

    def docker(self, *args: str) -> list[str]:
        return ["docker", *(["--host", self.endpoint] if self.endpoint else []), *args]

    @property
    def where(self) -> str:
        return f"host '{self.host}' ({self.endpoint or 'the local engine: DOCKER_HOST or the default socket'})"


def target(fleet: Fleet, name: str) -> Target:
    """Resolve a provider's name, `gateway` or `front-proxy` in the stack."""
    from ._checks_context import closest

    settings = fleet.stack
    local = fleet.catalog.local_providers()
    if name in LOG_NAMES:
        host = settings.gateway_host
        endpoint = settings.hosts[host].docker
        if LOG_NAMES[name] == GATEWAY:
            labels = (f"{STACK_LABEL}={fleet.name}", f"{NAME_LABEL}={GATEWAY}")
            return Target("the gateway", host, endpoint, None, labels)
        return Target("the front proxy", host, endpoint, container_name(fleet.name, FRONT_PROXY))
    if name in local:
        host = settings.host_of(name)
        return Target(f"provider '{name}'", host, settings.hosts[host].docker, container_name(fleet.name, name))
    if name in fleet.catalog.providers:
        raise LogsError(f"'{name}' is an external provider: llmfleet deploys nothing for it, so there is no log. "
                        f"Give a local provider, gateway or front-proxy.", usage=True)  # fmt: skip
    hint = closest(name, [*local, *LOG_NAMES])
    raise LogsError(f"stack '{fleet.name}' has no provider '{name}'. {hint}".rstrip(), usage=True)


def logs_options(tail: str, since: str | None, follow: bool, timestamps: bool) -> list[str]:
    options = ["--tail", tail]
    if since is not None:
        options += ["--since", since]
    if follow:
        options.append("--follow")
    if timestamps:
        options.append("--timestamps")
    return options


def _capture(argv: Sequence[str], timeout: float) -> tuple[int, str, str]:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return 124, "", f"no answer within {timeout:.0f} s"
    return done.returncode, done.stdout, done.stderr


def _stream(argv: Sequence[str]) -> int:
    return subprocess.run(list(argv), check=False).returncode


def _not_deployed(stack: str) -> str:
    return (f"The stack may not be deployed there (`pulumi up --stack {stack}`), or was destroyed; "
            f"`docker ps -a --filter label={STACK_LABEL}={stack}` on that host lists what it has.")  # fmt: skip


def containers(t: Target, stack: str, capture: Capture) -> list[tuple[str, str]]:
    """The (name, state) of the target's containers, oldest first. Raises LogsError when the engine
    cannot be asked or nothing is found."""
    if t.container is not None:
        argv = t.docker("container", "inspect", "--format", "{{.State.Status}}", t.container)
    else:
        filters = [arg for label in t.labels for arg in ("--filter", f"label={label}")]
        argv = t.docker("ps", "--all", *filters, "--format", "{{.Names}}\t{{.State}}")
    code, out, err = capture(argv, LOOKUP_TIMEOUT_S)
    detail = (err or out).strip()[-500:]
    if code != 0 and t.container is not None and re.search(r"no such (container|object)", detail, re.I):
        raise LogsError(f"{t.what}: no container {t.container} on {t.where}. {_not_deployed(stack)}")
    if code != 0:
        raise LogsError(f"could not ask the Docker engine on {t.where} about {t.what} (docker exited {code}): "
                        f"{detail or 'no output'}")  # fmt: skip
    if t.container is not None:
        return [(t.container, out.strip())]
    # `docker ps` lists the newest first (the daemon sorts by creation time).
    found = [tuple(line.split("\t", 1)) for line in out.splitlines() if line.strip()]
    if not found:
        raise LogsError(f"{t.what}: no container labelled {' and '.join(t.labels)} on {t.where}. "
                        f"{_not_deployed(stack)}")  # fmt: skip
    return [(name, state[0] if state else "") for name, *state in reversed(found)]


def kubectl_hint(fleet: Fleet, name: str, options: list[str]) -> str:
    """On Kubernetes a server's log is its pod's, which kubectl shows: the command, for the stack's
    context and namespace (after the same checks of NAME)."""
    kube = fleet.stack.kubernetes
    assert kube is not None
    if name == "front-proxy":
        raise LogsError(f"stack '{fleet.name}' deploys to Kubernetes, where the gateway's Service is its front: "
                        "there is no front proxy. Give a local provider or gateway.", usage=True)  # fmt: skip
    target(fleet, name)  # an unknown or external name: the same errors as on Docker
    workload = GATEWAY if name in LOG_NAMES else name
    flags = " ".join(options)  # kubectl logs takes the same --tail, --since, --follow, --timestamps
    config = f" --kubeconfig {kube.kubeconfig}" if kube.kubeconfig else ""
    every = f" (one replica; every one: -l app.kubernetes.io/instance={GATEWAY} --prefix)"
    every = every if workload == GATEWAY else ""
    return (
        f"stack '{fleet.name}' deploys to Kubernetes: its pods' logs are kubectl's to show. Run: kubectl{config} "
        f"--context {kube.context} -n {kube.namespace} logs deployment/{workload} {flags}".rstrip()
        + every
    )


def show_logs(
    fleet: Fleet,
    name: str,
    options: list[str],
    *,
    follow: bool,
    out: Callable[[str], None],
    err: Callable[[str], None],
    capture: Capture | None = None,
    stream: Stream | None = None,
) -> int:
    """Show the log(s) of `name`; 0 when docker showed them all, 1 when it could not.
    Raises LogsError for what the user must change."""
    if fleet.stack.on_kubernetes and fleet.stack.kubernetes is not None:
        raise LogsError(kubectl_hint(fleet, name, options))
    if shutil.which("docker") is None:
        raise LogsError("the docker CLI is not installed here (it is what `llmfleet logs`, like `pulumi up`, "
                        "reaches the hosts with): install Docker's CLI (Debian: docker-cli or docker.io)")  # fmt: skip
    t = target(fleet, name)
    found = containers(t, fleet.name, capture or _capture)
    run = stream or _stream
    if follow:
        *others, (newest, _) = found
        if others:
            err(f"following the newest gateway container, {newest}; also there: "
                + ", ".join(f"{n} ({s})" for n, s in others))  # fmt: skip
        return 0 if run(t.docker("logs", *options, newest)) == 0 else 1
    failed = False
    for container, state in found:
        if len(found) > 1:
            out(f"==> {container} ({state}) <==")
        failed |= run(t.docker("logs", *options, container)) != 0
    return 1 if failed else 0
