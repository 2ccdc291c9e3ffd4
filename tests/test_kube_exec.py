"""`exec_in_pod` and `deployment_ready_pod` against a stand-in API server: a websockets server on
loopback that answers the Deployment and pod GETs and the `exec` upgrade as the API server does
(channel 1 stdout, 2 stderr, 3 the closing Status). The real API server with kwok running the
command on the host is in tests/test_kubernetes_ollama_real.py; this covers what it will not do on
demand: a refused upgrade, a Status without an exit code, a connection dropped before the Status, a
command that outlives its timeout."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from websockets.exceptions import ConnectionClosed

from llmfleet import _kube
from llmfleet._kube import (
    EXEC_PROTOCOL,
    ExecResult,
    KubeAccess,
    KubeError,
    NoReadyPod,
    NotFound,
    deployment_ready_pod,
    exec_in_pod,
)

from .kube_standin import serving

pytestmark = pytest.mark.timeout(60)

READY = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
SUCCESS = {"kind": "Status", "apiVersion": "v1", "status": "Success", "metadata": {}}


def exit_status(code: int) -> dict[str, Any]:
    """What the kubelet writes for a command that exited with `code` (cri-streaming remotecommand)."""
    return {"status": "Failure", "reason": "NonZeroExitCode", "message": f"command terminated with exit code {code}",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}  # fmt: skip


class StandIn:
    def __init__(self) -> None:
        self.upgrade_status: int | None = None
        self.pods: list[dict[str, Any]] = [{"metadata": {"name": "ollama-7f9-abc"}, "status": READY}]
        self.queries: list[dict[str, list[str]]] = []
        self.stall_handshakes = 0  # the next N upgrades get no answer for STALL seconds
        self.upgrades = 0
        self.subprotocols: list[str | None] = []

    def process_request(self, connection: Any, request: Any) -> Any:
        path = urlsplit(request.path).path
        if path == "/apis/apps/v1/namespaces/llm/deployments/ollama":
            body = {"spec": {"selector": {"matchLabels": {"app.kubernetes.io/instance": "ollama"}}}}
            return connection.respond(200, json.dumps(body))
        if path.startswith("/apis/apps/v1/namespaces/llm/deployments/"):
            return connection.respond(404, json.dumps({"message": 'deployments.apps "gone" not found'}))
        if path == "/api/v1/namespaces/llm/pods":
            assert parse_qs(urlsplit(request.path).query) == {"labelSelector": ["app.kubernetes.io/instance=ollama"]}
            return connection.respond(200, json.dumps({"items": self.pods}))
        if path == "/api/v1/namespaces/llm/pods/missing/exec":
            return connection.respond(404, json.dumps({"message": 'pods "missing" not found'}))
        assert path == "/api/v1/namespaces/llm/pods/ollama-7f9-abc/exec", request.path
        self.upgrades += 1
        if self.stall_handshakes > 0:
            self.stall_handshakes -= 1
            time.sleep(STALL)
        if self.upgrade_status:
            return connection.respond(self.upgrade_status, json.dumps({"message": 'pods "ollama-7f9-abc" is forbidden: '
                                      'User "dev" cannot create resource "pods/exec"'}))  # fmt: skip
        return None

    def handler(self, connection: Any) -> None:
        query = parse_qs(urlsplit(connection.request.path).query)
        self.queries.append(query)
        self.subprotocols.append(connection.subprotocol)
        command = query["command"]
        with contextlib.suppress(ConnectionClosed):
            if command[0] == "echo":
                connection.send(b"\x01" + " ".join(command[1:]).encode() + b"\n")
                connection.send(b"\x02" + b"to stderr\n")
                connection.send(b"\x01" + "ünïcode\n".encode())
                connection.send(b"\x03" + json.dumps(SUCCESS).encode())
            elif command[0] == "fail":
                connection.send(b"\x02" + b"Error: model 'x' not found\n")
                connection.send(b"\x03" + json.dumps(exit_status(int(command[1]))).encode())
            elif command[0] == "internal":  # what kwok 0.8.0 writes when a local command exits non-zero
                status = {"status": "Failure", "reason": "InternalError", "message": "error executing command in "
                          "container: cmd wait: internal: exit status 1"}  # fmt: skip
                if command[1:]:
                    connection.send(b"\x02" + command[1].encode())
                connection.send(b"\x03" + json.dumps(status).encode())
            elif command[0] == "drop":
                connection.send(b"\x01partial")
            elif command[0] == "hang":
                for _ in connection:
                    pass


STALL = 1.5


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[StandIn, KubeAccess]]:
    monkeypatch.setattr(_kube, "OPEN_ATTEMPT_TIMEOUT", 0.5)
    state = StandIn()
    with serving(state, EXEC_PROTOCOL) as access:
        yield state, access


def run(access: KubeAccess, *argv: str, pod: str = "ollama-7f9-abc", timeout: float = 10) -> ExecResult:
    return exec_in_pod(access, "llm", pod, "ollama", list(argv), timeout)


def test_stdout_and_stderr_come_apart_and_success_is_exit_code_0(stand_in: tuple[StandIn, KubeAccess]) -> None:
    state, access = stand_in
    argv = ["echo", "a b", "$HOME", "--flag=x&y"]
    assert run(access, *argv) == ExecResult(0, "a b $HOME --flag=x&y\nünïcode\n", "to stderr\n")
    # Each argument is its own `command` parameter, in order, never joined or run through a shell.
    assert state.queries == [{"container": ["ollama"], "command": argv, "stdout": ["true"], "stderr": ["true"]}]
    assert state.subprotocols == [EXEC_PROTOCOL]


def test_a_non_zero_exit_gives_its_code_and_stderr(stand_in: tuple[StandIn, KubeAccess]) -> None:
    _, access = stand_in
    assert run(access, "fail", "3") == ExecResult(3, "", "Error: model 'x' not found\n")


def test_a_failure_without_an_exit_code_is_a_kube_error_with_its_message(stand_in: tuple[StandIn, KubeAccess]) -> None:
    _, access = stand_in
    with pytest.raises(KubeError) as caught:
        run(access, "internal")
    assert str(caught.value) == ("exec of `internal` in pod llm/ollama-7f9-abc container ollama: failed without "
                                 "an exit code: error executing command in container: cmd wait: internal: exit "
                                 "status 1")  # fmt: skip
    with pytest.raises(KubeError, match=r": exit status 1; its stderr: Error: no such file$"):
        run(access, "internal", "Error: no such file\n")


def test_a_connection_dropped_before_the_status_is_a_kube_error(stand_in: tuple[StandIn, KubeAccess]) -> None:
    _, access = stand_in
    with pytest.raises(KubeError, match=r"^exec of `drop` in pod llm/ollama-7f9-abc container ollama: the "
                                        r"connection closed before the command's exit status came$"):  # fmt: skip
        run(access, "drop")


def test_a_command_still_running_at_its_timeout_is_cut_off(stand_in: tuple[StandIn, KubeAccess]) -> None:
    _, access = stand_in
    started = time.monotonic()
    with pytest.raises(KubeError, match=r"^exec of `hang` in pod .*: still running after 1 s; its connection was"):
        run(access, "hang", timeout=1)
    assert time.monotonic() - started < 5


def test_an_unanswered_handshake_is_tried_again_and_given_up_after_three(stand_in: tuple[StandIn, KubeAccess]) -> None:
    state, access = stand_in
    state.stall_handshakes = 2
    assert run(access, "echo", "third").stdout.startswith("third\n")
    assert state.upgrades == 3  # the late answers to the first two may run it too: only idempotent commands
    state.stall_handshakes, state.upgrades = 3, 0
    with pytest.raises(KubeError, match=r"^exec of `echo` in pod llm/ollama-7f9-abc container ollama: cannot open "
                                        r"the websocket to http://127.0.0.1:\d+ in 3 tries \(timed out while waiting "
                                        r"for handshake response; stand-in\)$"):  # fmt: skip
        run(access, "echo")
    assert state.upgrades == 3


def test_a_refused_exec_says_who_lacks_the_right(stand_in: tuple[StandIn, KubeAccess]) -> None:
    state, access = stand_in
    state.upgrade_status = 403
    with pytest.raises(KubeError) as caught:
        run(access, "echo")
    assert str(caught.value) == ('exec of `echo` in pod llm/ollama-7f9-abc container ollama: forbidden for the user '
                                 'of stand-in (403): pods "ollama-7f9-abc" is forbidden: User "dev" cannot create '
                                 'resource "pods/exec"')  # fmt: skip
    with pytest.raises(NotFound, match=r'^exec of `echo` in pod llm/missing container ollama: not found: pods "miss'):
        run(access, "echo", pod="missing")


def test_an_unreachable_api_server_is_a_kube_error() -> None:
    access = KubeAccess("http://127.0.0.1:1", None, source="stand-in")
    with pytest.raises(KubeError, match=r"^exec of `ls` in pod llm/p container c: cannot open the websocket to http"):
        exec_in_pod(access, "llm", "p", "c", ["ls"], 5)


def test_the_ready_pod_of_a_deployment(stand_in: tuple[StandIn, KubeAccess]) -> None:
    state, access = stand_in
    assert deployment_ready_pod(access, "llm", "ollama") == "ollama-7f9-abc"
    with pytest.raises(NoReadyPod, match=r"^deployment llm/gone: not found; is it deployed\?$"):
        deployment_ready_pod(access, "llm", "gone")
    state.pods = [{"metadata": {"name": "ollama-7f9-abc"}, "status": {"phase": "Pending"}}]
    with pytest.raises(NoReadyPod, match=r"^deployment llm/ollama \(selector app.kubernetes.io/instance=ollama\): "
                                         r"none of its 1 pods is ready \(ollama-7f9-abc Pending\)$"):  # fmt: skip
        deployment_ready_pod(access, "llm", "ollama")
    state.pods = []
    with pytest.raises(NoReadyPod, match=r"no pods match its selector"):
        deployment_ready_pod(access, "llm", "ollama")
