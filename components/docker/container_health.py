"""Is a container up? Wait for it to become healthy, and fail at once when it crashes instead (a
dynamic provider).

pulumi-docker's own `wait` (terraform-provider-docker 4.5 `resourceDockerContainerCreate`) polls
only for `healthy`: a server that exits at start (a bad argument, a file that is not a GGUF, a CUDA
driver too old, out of memory) is restarted by its `restart: unless-stopped` policy and waited on
until the kind's whole budget (30 minutes for vLLM), and the `up` then says only that the container
did not become healthy. So every container is created without that wait, and one of these
resources, created after it, waits for it instead, through `docker inspect` where `pulumi up` runs:

- healthy: done;
- exited, restarting, or restarted while it is watched (its RestartCount grows): fail at once, with
  its exit code and the last lines of its log. Restarts from before the wait began are history: a
  container that crashed on the last `up`, whose cause was fixed on the host since, and that is now
  loading, is waited for;
- starting (or unhealthy, which the next passing check still turns healthy): poll again, until the
  kind's budget, then fail with the last health check's output and the log.

Everything that needed the container healthy (the gateway after its backends, the Ollama models,
the gateway's create-first roll) depends on this resource. It is computed from the container's id,
so a new container (a replacement) is waited for again; an update in place is not restarted and
needs no new wait.

Only the container's State and RestartCount are read (`docker inspect --format`), never its
configuration, whose environment holds the secrets; log lines that look like credentials are masked.

It runs the docker CLI as the Ollama model resources do; Pulumi pickles the provider by reference to
this module, which must stay importable from the program's directory and register nothing when
imported (see ollama_model.py). The waiting itself is `wait_healthy`, a plain function of a runner.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider

from llmfleet._wording import count

from .cli import Runner, run_docker

POLL_S = 1.0  # as often as the Docker provider polled for `healthy`: no slower a deploy
LOG_LINES = 20
# A crash-looping container seen running again after a restart has lost its exit code (Docker resets
# it when the process starts): watch closely this long for its next exit, to say what it exited with.
CATCH_EXIT_S = 20.0
CATCH_POLL_S = 0.5
# Consecutive failed `docker inspect` calls (the endpoint unreachable, ssh dropped) before giving up.
INSPECT_TRIES = 3
INSPECT_TIMEOUT_S = 60
# Only what the wait needs: the configuration (and its environment, where the secrets are) is never read.
STATE_FORMAT = '{"State": {{json .State}}, "RestartCount": {{.RestartCount}}}'
NO_CONTAINER = re.compile(r"No such (container|object)", re.IGNORECASE)
CREDENTIAL = re.compile(
    r"(?P<keep>\b(?:sk|hf|ghp|gho|xox[abp])[-_])[A-Za-z0-9_\-]{8,}"
    r"|(?P<bearer>\bBearer\s+)\S+"
    r"|(?P<assign>\b[A-Z0-9_]*(?:KEY|TOKEN|SECRET|PASSWORD)[A-Z0-9_]*\s*[=:]\s*)\S+"
)


@dataclass(frozen=True)
class Target:
    """The container waited for and how to name it to the person running `pulumi up`."""

    container: str  # id or name: what `docker` is given
    what: str  # "provider 'vllm-qwen' (vllm)", "the gateway", "the front proxy"
    host: str  # the stack's name for its Docker host
    docker_host: str | None = None  # the endpoint; None: the local engine (DOCKER_HOST)
    logs_hint: str = ""  # the command that shows the whole log
    name: str | None = None  # the container's name, when `container` is its id

    @property
    def label(self) -> str:
        return self.name or self.container

    def docker(self, *args: str) -> list[str]:
        return ["docker", *(["--host", self.docker_host] if self.docker_host else []), *args]

    @property
    def where(self) -> str:
        return f"host '{self.host}'" + (f" ({self.docker_host})" if self.docker_host else "")


@dataclass(frozen=True)
class Observed:
    """One `docker inspect` of the container."""

    status: str  # created, running, restarting, paused, removing, exited, dead
    health: str | None  # starting, healthy, unhealthy; None without a healthcheck
    exit_code: int
    restarts: int
    oom_killed: bool = False
    error: str = ""  # Docker's own reason when the process could not start
    health_output: str = ""  # what the last health check printed

    @classmethod
    def parse(cls, text: str) -> Observed:
        data = json.loads(text)
        state = data.get("State") or {}
        health = state.get("Health") or None
        checks = (health or {}).get("Log") or []
        return cls(
            status=str(state.get("Status", "?")),
            health=health.get("Status") if health else None,
            exit_code=int(state.get("ExitCode") or 0),
            restarts=int(data.get("RestartCount") or 0),
            oom_killed=bool(state.get("OOMKilled")),
            error=str(state.get("Error") or ""),
            health_output=str(checks[-1].get("Output") or "").strip() if checks else "",
        )

    @property
    def healthy(self) -> bool:
        return self.status == "running" and self.health == "healthy"

    @property
    def stopped(self) -> bool:
        """Not running, with an exit code to say (restarting: waiting out Docker's restart delay)."""
        return self.status in ("exited", "dead", "restarting")


class WaitFailed(RuntimeError):
    """The container crashed, vanished, or was not healthy within its budget; the message says which."""


class Unreachable(WaitFailed):
    """The Docker engine could not be asked about the container."""


def mask_credentials(line: str) -> str:
    def masked(match: re.Match[str]) -> str:
        return (match.group("keep") or match.group("bearer") or match.group("assign")) + "***"

    return CREDENTIAL.sub(masked, line)


def last_log_lines(target: Target, runner: Runner, lines: int = LOG_LINES) -> list[str]:
    """The container's last `lines` lines, stdout and stderr merged in order (Docker's timestamps
    have a fixed width, so they sort as text), credentials masked; [] when the log cannot be read."""
    code, out, err = runner(target.docker("logs", "--timestamps", "--tail", str(lines), target.container), 60)
    if code != 0:
        return []
    texts = [line.split(" ", 1)[1] if " " in line else "" for line in sorted((out + err).splitlines())]
    return [mask_credentials(text).rstrip() for text in texts if text.strip()][-lines:]


def _log_block(target: Target, runner: Runner) -> str:
    lines = last_log_lines(target, runner)
    if not lines:
        return " Its log is empty."
    which = "log line" if len(lines) == 1 else count(len(lines), "log line")
    return f" Its last {which}:\n" + "\n".join(f"    {line}" for line in lines)


def _exit(observed: Observed) -> str:
    how = f"exited with code {observed.exit_code}"
    if observed.oom_killed:
        how += " (killed: out of memory)"
    if observed.error:
        how += f" ({observed.error})"
    return how


def crash_message(target: Target, observed: Observed, runner: Runner) -> str:
    times = "once" if observed.restarts == 1 else f"{observed.restarts} times"
    log = _log_block(target, runner)
    whole_log = f"; {target.logs_hint} shows the whole log." if target.logs_hint else "."
    where = f"container {target.label} on {target.where}"
    if observed.status in ("exited", "dead"):  # its restart policy will not start it again
        return (f"{target.what} is not running: {where} {_exit(observed)}, and Docker will not start it again "
                f"(stopped by hand?).{log}\nStart it with `pulumi up --refresh`, or fix what its log says and "
                f"run `pulumi up` again{whole_log}")  # fmt: skip
    if observed.stopped:
        what = f"{_exit(observed)}; Docker has restarted it {times} and it keeps exiting"
    else:
        what = f"exited and was restarted (it is running again, {times} in all: the exit code was not seen)"
    return (
        f"{target.what} crashed at start: {where} {what}.{log}\nFix what it says and run `pulumi up` again{whole_log}"
    )


def timeout_message(target: Target, observed: Observed | None, budget_s: float, runner: Runner) -> str:
    state = "its state unknown" if observed is None else f"still {observed.health or observed.status}"
    check = f" The last health check said: {mask_credentials(observed.health_output)[-500:]}." if (
        observed and observed.health_output) else ""  # fmt: skip
    hint = f" {target.logs_hint} shows the whole log." if target.logs_hint else ""
    return (f"{target.what} was not healthy within {budget_s:.0f} s: container {target.label} on "
            f"{target.where} is {state}.{check}{_log_block(target, runner)}\n"
            f"If it is only slow to load, run `pulumi up` again: the container keeps starting.{hint}")  # fmt: skip


def inspect(target: Target, runner: Runner) -> Observed:
    """One look at the container; raises WaitFailed when it is gone or Docker cannot be asked."""
    code, out, err = runner(target.docker("inspect", "--type", "container", "--format", STATE_FORMAT,
                                          target.container), INSPECT_TIMEOUT_S)  # fmt: skip
    detail = (err or out).strip()[-500:] or f"exit code {code}, no output"
    if code == 0:
        try:
            return Observed.parse(out)
        except (ValueError, TypeError, AttributeError):
            detail = f"unexpected `docker inspect` output: {out.strip()[:200]}"
    elif NO_CONTAINER.search(detail):
        raise WaitFailed(f"{target.what}: container {target.label} on {target.where} no longer exists "
                         f"(removed while it started?): {detail}")  # fmt: skip
    elif code == 127:  # no docker CLI: asking again will not help
        raise WaitFailed(f"{target.what}: cannot watch container {target.label}: {detail}")
    raise Unreachable(f"could not ask the Docker engine on {target.where} about {target.what} "
                      f"(container {target.label}): {detail}")  # fmt: skip


def wait_healthy(
    target: Target,
    runner: Runner,
    budget_s: float,
    *,
    poll_s: float = POLL_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Observed:
    """Poll the container until it is healthy (returned), crashes or outlives `budget_s` (WaitFailed).
    Healthy wins: a container restarted once that then serves is what the wait is for."""
    started = clock()
    observed: Observed | None = None
    failures = 0
    catching_since: float | None = None
    close = False
    restarts_before: int | None = None  # restarts seen at the first look: earlier ones are history
    while True:
        try:
            observed = inspect(target, runner)
            failures = 0
        except Unreachable:
            failures += 1
            if failures >= INSPECT_TRIES:
                raise
        if observed is not None and failures == 0:
            if observed.healthy:
                return observed
            if observed.health is None and observed.status == "running":
                raise WaitFailed(f"{target.what}: container {target.label} has no healthcheck, so nothing "
                                 "says when it is ready (a bug in llmfleet's component: please report it)")  # fmt: skip
            restarts_before = observed.restarts if restarts_before is None else restarts_before
            if observed.status in ("exited", "dead"):
                raise WaitFailed(crash_message(target, observed, runner))  # nothing will start it again
            if observed.restarts > restarts_before:  # it exited while watched
                if observed.status == "restarting":
                    raise WaitFailed(crash_message(target, observed, runner))
                # Running again already: watch closely for the next exit, to say its code.
                catching_since = clock() if catching_since is None else catching_since
                if clock() - catching_since >= CATCH_EXIT_S:
                    raise WaitFailed(crash_message(target, observed, runner))
            # Restarting from an exit before the wait began (a crash on the last `up` whose cause may
            # have been fixed on the host since): the next start decides, watched closely.
            close = catching_since is not None or observed.status == "restarting"
        if clock() - started >= budget_s:
            if failures:
                raise Unreachable(f"could not ask the Docker engine on {target.where} about {target.what} "
                                  f"(container {target.label}) within {budget_s:.0f} s")  # fmt: skip
            raise WaitFailed(timeout_message(target, observed, budget_s, runner))
        sleep(CATCH_POLL_S if close else poll_s)


class ContainerHealthProvider(ResourceProvider):
    """create = wait until the container is healthy, or fail saying why; a new container (its id)
    or endpoint waits again; nothing to read back or delete."""

    def __init__(self, runner: Runner | None = None) -> None:
        self._runner = runner

    @staticmethod
    def target(props: dict[str, Any]) -> Target:
        return Target(container=props["container"], what=props["what"], host=props["host"],
                      docker_host=props.get("docker_host"), logs_hint=props.get("logs_hint") or "",
                      name=props.get("name"))  # fmt: skip

    def create(self, props: dict[str, Any]) -> CreateResult:
        started = time.monotonic()
        observed = wait_healthy(self.target(props), self._runner or run_docker, float(props["budget_s"]))
        outs = {**props, "status": observed.health, "waited_s": round(time.monotonic() - started, 1)}
        return CreateResult(id_=props["container"], outs=outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, props)  # waited for when created; a refresh needs no engine

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # Create-first: the old resource's delete does nothing, and nothing has to go before it.
        changed = [k for k in ("container", "docker_host") if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=changed, delete_before_replace=False)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        pass  # nothing was made


@dataclass
class ContainerHealthArgs:
    container: pulumi.Input[str]  # the container's id: a new container is waited for again
    name: pulumi.Input[str]  # its name, to say which one
    what: str
    host: str
    docker_host: str | None
    budget_s: int
    logs_hint: str = ""


class ContainerHealthy(Resource):
    """Type token `pulumi-python:dynamic:Resource` (fixed by the SDK for dynamic resources)."""

    status: pulumi.Output[str]

    def __init__(self, name: str, args: ContainerHealthArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        props = {
            "container": args.container,
            "name": args.name,
            "what": args.what,
            "host": args.host,
            "docker_host": args.docker_host,
            "budget_s": args.budget_s,
            "logs_hint": args.logs_hint,
            "status": None,
            "waited_s": None,
        }
        super().__init__(ContainerHealthProvider(), name, props, opts)
