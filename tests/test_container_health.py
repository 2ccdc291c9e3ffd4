"""The wait for a container to be healthy (components/docker/container_health.py), called directly with a
fake docker CLI that plays a sequence of `docker inspect` answers and a fake clock: every state a
starting container can be in, and every way asking about it can fail."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence

import pytest
from pulumi.dynamic.dynamic import serialize_provider

from components.docker.container_health import (
    CATCH_EXIT_S,
    STATE_FORMAT,
    ContainerHealthProvider,
    Observed,
    Target,
    Unreachable,
    WaitFailed,
    last_log_lines,
    mask_credentials,
    wait_healthy,
)

from .pulumi_program import PROJECT

TARGET = Target(
    container="0123abcd",
    name="llmfleet-prod-vllm-qwen",
    what="provider 'vllm-qwen' (vllm)",
    host="gpu-1",
    docker_host="ssh://ops@gpu-1",
    logs_hint="`llmfleet logs --stack prod vllm-qwen`",
)
ARGPARSE_LOG = (
    "2026-12-03T14:40:01.100000000Z usage: vllm [-h] [-v] {chat,complete,serve,bench,collect-env,run-batch} ...\n"
    "2026-12-03T14:40:01.200000000Z vllm: error: unrecognized arguments: --bogus-flag\n"
)


def state(status: str = "running", health: str | None = "starting", exit_code: int = 0, restarts: int = 0,
          **extra: object) -> tuple[int, str, str]:  # fmt: skip
    """What `docker inspect --format STATE_FORMAT` prints for a container in that state."""
    body: dict[str, object] = {"Status": status, "Running": status == "running", "ExitCode": exit_code,
                               "OOMKilled": False, "Error": ""}  # fmt: skip
    if health is not None:
        body["Health"] = {"Status": health, "FailingStreak": 0, "Log": extra.pop("checks", [])}
    body.update(extra)
    return 0, json.dumps({"State": body, "RestartCount": restarts}) + "\n", ""


class FakeDocker:
    """Answers `docker inspect` from a script (the last answer repeats) and `docker logs` with
    `logs` (stdout) and `log_err` (stderr), recording every call."""

    def __init__(self, inspects: Sequence[tuple[int, str, str]], logs: str = "", log_err: str = "") -> None:
        self.inspects = list(inspects)
        self.logs = (0, logs, log_err)
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], timeout: float) -> tuple[int, str, str]:
        self.calls.append(list(argv))
        if "logs" in argv:
            return self.logs
        return self.inspects.pop(0) if len(self.inspects) > 1 else self.inspects[0]

    @property
    def inspect_count(self) -> int:
        return sum("inspect" in call for call in self.calls)


class Clock:
    """A monotonic clock that moves only when the wait sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def wait(fake: FakeDocker, budget_s: float = 1800, clock: Clock | None = None) -> Observed:
    clock = clock or Clock()
    return wait_healthy(TARGET, fake, budget_s, poll_s=2, clock=clock, sleep=clock.sleep)


def failure(fake: FakeDocker, budget_s: float = 1800, clock: Clock | None = None) -> str:
    with pytest.raises(WaitFailed) as caught:
        wait(fake, budget_s, clock)
    return str(caught.value)


def test_healthy_at_once_asks_once_through_the_hosts_endpoint_and_reads_only_the_state() -> None:
    fake = FakeDocker([state(health="healthy")])
    assert wait(fake).healthy
    assert fake.calls == [["docker", "--host", "ssh://ops@gpu-1", "inspect", "--type", "container", "--format",
                           STATE_FORMAT, "0123abcd"]]  # fmt: skip
    # The configuration, whose environment holds the secrets, is never asked for.
    assert "Config" not in STATE_FORMAT and "Env" not in STATE_FORMAT


def test_a_slow_server_is_waited_for_until_healthy() -> None:
    clock = Clock()
    fake = FakeDocker([state()] * 600 + [state(health="healthy")])  # 20 minutes of loading
    assert wait(fake, clock=clock).healthy
    assert fake.inspect_count == 601 and clock.now == 1200


def test_unhealthy_is_not_final_the_next_passing_check_makes_it_healthy() -> None:
    fake = FakeDocker([state(), state(health="unhealthy"), state(health="unhealthy"), state(health="healthy")])
    assert wait(fake).healthy


def test_a_server_that_exits_at_start_fails_at_once_with_its_exit_code_and_log() -> None:
    clock = Clock()
    fake = FakeDocker([state(), state("restarting", "starting", exit_code=2, restarts=1)], logs=ARGPARSE_LOG)
    assert failure(fake, clock=clock) == (
        "provider 'vllm-qwen' (vllm) crashed at start: container llmfleet-prod-vllm-qwen on host 'gpu-1' "
        "(ssh://ops@gpu-1) exited with code 2; Docker has restarted it once and it keeps exiting. "
        "Its last 2 log lines:\n"
        "    usage: vllm [-h] [-v] {chat,complete,serve,bench,collect-env,run-batch} ...\n"
        "    vllm: error: unrecognized arguments: --bogus-flag\n"
        "Fix what it says and run `pulumi up` again; `llmfleet logs --stack prod vllm-qwen` shows the whole log."
    )
    assert clock.now == 2  # the second look
    assert ["docker", "--host", "ssh://ops@gpu-1", "logs", "--timestamps", "--tail", "20", "0123abcd"] in fake.calls


def test_first_seen_restarting_it_fails_at_its_next_exit() -> None:
    # Docker counts a restart when the process exits; the next exit while watched is a crash.
    clock = Clock()
    fake = FakeDocker([state("restarting", exit_code=2, restarts=1), state(restarts=1),
                       state("restarting", exit_code=2, restarts=2)], logs=ARGPARSE_LOG)  # fmt: skip
    assert "exited with code 2; Docker has restarted it 2 times and it keeps exiting." in failure(fake, clock=clock)
    assert clock.now == 0.5 + 2  # a closer look while it restarts


def test_restarting_from_an_earlier_crash_then_loading_is_waited_for() -> None:
    # The last `up` failed on a missing file; it was put there; Docker's restart delay runs out.
    fake = FakeDocker([state("restarting", exit_code=1, restarts=9)] * 3 + [state(restarts=9)] * 100
                      + [state(health="healthy", restarts=9)])  # fmt: skip
    assert wait(fake).healthy


def test_an_exited_container_is_not_running_and_says_why_docker_could_not_start_it() -> None:
    error = 'exec: "vllm": executable file not found in $PATH'
    fake = FakeDocker([state("exited", "unhealthy", exit_code=127, Error=error)])
    assert failure(fake) == (
        "provider 'vllm-qwen' (vllm) is not running: container llmfleet-prod-vllm-qwen on host 'gpu-1' "
        f"(ssh://ops@gpu-1) exited with code 127 ({error}), and Docker will not start it again (stopped by hand?). "
        "Its log is empty.\nStart it with `pulumi up --refresh`, or fix what its log says and run `pulumi up` "
        "again; `llmfleet logs --stack prod vllm-qwen` shows the whole log."
    )


def test_out_of_memory_is_named() -> None:
    fake = FakeDocker([state(), state("restarting", "starting", exit_code=137, restarts=4, OOMKilled=True)])
    assert "exited with code 137 (killed: out of memory); Docker has restarted it 4 times" in failure(fake)


def test_a_crash_loop_seen_running_again_waits_for_the_next_exit_to_give_its_code() -> None:
    # Docker resets the exit code when the process starts again: the wait watches for the next exit.
    clock = Clock()
    fake = FakeDocker([state(), state(restarts=1), state(restarts=1), state("restarting", exit_code=1, restarts=1)],
                      logs="2026-12-03T14:40:05.000000000Z torch.OutOfMemoryError: CUDA out of memory.\n")  # fmt: skip
    message = failure(fake, clock=clock)
    assert "exited with code 1; Docker has restarted it once and it keeps exiting." in message
    assert "    torch.OutOfMemoryError: CUDA out of memory." in message
    assert clock.now == 2 + 0.5 + 0.5  # closer looks once it has restarted


def test_a_restarted_container_that_stays_up_still_fails_without_an_exit_code() -> None:
    clock = Clock()
    fake = FakeDocker([state(), state(restarts=2)])
    message = failure(fake, clock=clock)
    assert "exited and was restarted (it is running again, 2 times in all: the exit code was not seen)." in message
    assert clock.now == 2 + CATCH_EXIT_S


def test_restarts_from_before_the_wait_are_history_a_loading_server_is_waited_for() -> None:
    # It crashed on the last `up`; the cause was fixed on the host; now it loads for ten minutes.
    fake = FakeDocker([state(restarts=7)] * 300 + [state(health="healthy", restarts=7)])
    assert wait(fake).healthy


def test_a_restarted_container_that_becomes_healthy_while_watched_is_healthy() -> None:
    # A container that is serving is what the wait is for (an older one, restarted long ago, too).
    assert wait(FakeDocker([state(restarts=3), state(health="healthy", restarts=3)])).healthy


def test_not_healthy_within_the_budget_says_what_the_health_check_said_and_shows_the_log() -> None:
    clock = Clock()
    checks = [{"ExitCode": 1, "Output": "urllib.error.URLError: <urlopen error [Errno 111] Connection refused>\n"}]
    loading = "2026-12-03T14:40:01.000000000Z INFO Loading safetensors checkpoint shards: 3% \n"
    fake = FakeDocker([state(health="unhealthy", checks=checks)], logs=loading)
    message = failure(fake, budget_s=900, clock=clock)
    assert message == (
        "provider 'vllm-qwen' (vllm) was not healthy within 900 s: container llmfleet-prod-vllm-qwen on host "
        "'gpu-1' (ssh://ops@gpu-1) is still unhealthy. The last health check said: urllib.error.URLError: "
        "<urlopen error [Errno 111] Connection refused>. Its last log line:\n"
        "    INFO Loading safetensors checkpoint shards: 3%\n"
        "If it is only slow to load, run `pulumi up` again: the container keeps starting. "
        "`llmfleet logs --stack prod vllm-qwen` shows the whole log."
    )
    assert clock.now == 900


def test_a_container_without_a_healthcheck_is_refused_at_once() -> None:
    assert "has no healthcheck" in failure(FakeDocker([state(health=None)]))


def test_a_container_removed_while_it_starts_fails_at_once() -> None:
    fake = FakeDocker([state(), (1, "", "Error: No such container: 0123abcd\n")])
    assert failure(fake) == (
        "provider 'vllm-qwen' (vllm): container llmfleet-prod-vllm-qwen on host 'gpu-1' (ssh://ops@gpu-1) "
        "no longer exists (removed while it started?): Error: No such container: 0123abcd"
    )


def test_no_docker_cli_fails_at_once() -> None:
    fake = FakeDocker([(127, "", "the docker CLI is not installed where `pulumi up` runs")])
    assert "the docker CLI is not installed" in failure(fake)
    assert fake.inspect_count == 1


def test_an_unreachable_endpoint_is_asked_three_times_then_fails_naming_the_host() -> None:
    unreachable = (255, "", "error during connect: ssh: connect to host gpu-1 port 22: Connection refused\n")
    fake = FakeDocker([unreachable])
    with pytest.raises(Unreachable) as caught:
        wait(fake)
    assert str(caught.value) == (
        "could not ask the Docker engine on host 'gpu-1' (ssh://ops@gpu-1) about provider 'vllm-qwen' (vllm) "
        "(container llmfleet-prod-vllm-qwen): error during connect: ssh: connect to host gpu-1 port 22: "
        "Connection refused"
    )
    assert fake.inspect_count == 3


def test_one_dropped_connection_is_not_a_failure() -> None:
    dropped = (255, "", "error during connect: EOF\n")
    fake = FakeDocker([state(), dropped, dropped, state(health="healthy")])
    assert wait(fake).healthy


def test_output_that_is_not_the_state_is_an_error_of_its_own() -> None:
    fake = FakeDocker([(0, "template: :1: unexpected EOF\n", "")])
    with pytest.raises(Unreachable, match="unexpected `docker inspect` output: template"):
        wait(fake)


def test_the_local_engine_is_asked_without_a_host_flag() -> None:
    fake = FakeDocker([state(health="healthy")])
    local = Target(container="llmfleet-dev-front", what="the front proxy", host="local")
    wait_healthy(local, fake, 120)
    assert fake.calls[0][:3] == ["docker", "inspect", "--type"]


def test_the_log_merges_both_streams_in_order_and_masks_what_looks_like_a_credential() -> None:
    out = ("2026-12-03T14:40:01.000000000Z one\n2026-12-03T14:40:01.500000000Z \n"
           "2026-12-03T14:40:03.000000000Z three HF_TOKEN=hf_abcdefghijklmnop\n")  # fmt: skip
    err = "2026-12-03T14:40:02.000000000Z two: Authorization: Bearer sk-0123456789abcdef\n"
    assert last_log_lines(TARGET, FakeDocker([state()], out, err)) == [
        "one",
        "two: Authorization: Bearer ***",
        "three HF_TOKEN=***",
    ]
    assert mask_credentials("key sk-live-0123456789 and hf_0123456789ab") == "key sk-*** and hf_***"


def test_a_log_that_cannot_be_read_leaves_only_the_state() -> None:
    fake = FakeDocker([state(), state("restarting", exit_code=1, restarts=1)])
    fake.logs = (1, "", "Error response from daemon: configured logging driver does not support reading")
    assert "exited with code 1; Docker has restarted it once and it keeps exiting. Its log is empty." in failure(fake)


PROPS = {"container": "0123abcd", "name": "llmfleet-prod-vllm-qwen", "what": "provider 'vllm-qwen' (vllm)",
         "host": "gpu-1", "docker_host": "ssh://ops@gpu-1", "budget_s": 1800,
         "logs_hint": "`llmfleet logs --stack prod vllm-qwen`", "status": None, "waited_s": None}  # fmt: skip


def test_the_provider_waits_on_create_and_records_the_result() -> None:
    result = ContainerHealthProvider(FakeDocker([state(health="healthy")])).create(PROPS)
    assert (result.id, result.outs["status"]) == ("0123abcd", "healthy")


def test_the_provider_fails_the_create_with_the_message() -> None:
    with pytest.raises(WaitFailed, match="crashed at start"):
        ContainerHealthProvider(FakeDocker([state(), state("restarting", exit_code=2, restarts=1)])).create(PROPS)


def test_a_new_container_waits_again_create_first_and_nothing_else_does() -> None:
    provider = ContainerHealthProvider(FakeDocker([state()]))
    diff = provider.diff("0123abcd", PROPS, {**PROPS, "container": "4567ef01"})
    assert (diff.replaces, diff.delete_before_replace) == (["container"], False)
    assert provider.diff("0123abcd", PROPS, {**PROPS, "docker_host": "ssh://ops@gpu-2"}).replaces == ["docker_host"]
    assert not provider.diff("0123abcd", {**PROPS, "status": "healthy"}, {**PROPS, "budget_s": 900}).changes


def test_the_pickled_provider_loads_as_pulumi_runs_it(tmp_path) -> None:
    """Pulumi runs the pickled provider in a fresh `python -m pulumi.dynamic` in the program's
    directory: it must import, register nothing, and run the docker CLI found on PATH."""
    docker = tmp_path / "docker"
    docker.write_text('#!/bin/sh\necho \'{"State": {"Status": "running", "Health": {"Status": "healthy"}}, '
                      '"RestartCount": 0}\'\n')  # fmt: skip
    docker.chmod(0o755)
    script = (
        "import sys, dill, base64\n"
        "p = dill.loads(base64.b64decode(sys.argv[1]))\n"
        "import pulumi.runtime.settings as s\n"
        "assert s.SETTINGS.monitor is None, 'importing the provider started a Pulumi program'\n"
        "print(p.create(eval(sys.argv[2])).outs['status'])\n"
    )
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", script, serialize_provider(ContainerHealthProvider()), repr(PROPS)],
                          capture_output=True, text=True, timeout=60, cwd=PROJECT, env=env)  # fmt: skip
    assert (done.returncode, done.stdout.strip()) == (0, "healthy"), done.stderr
