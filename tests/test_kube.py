"""llmfleet._kube without a cluster: what `load_kubeconfig` makes of a kubeconfig and the one-line
KubeError for each way one can be wrong (never a traceback, never a secret in the message); which
pod `pick_ready_pod` picks and how `target_port` resolves a Service port, as kubectl does. The real
API server and port-forward are in tests/test_kube_real.py."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from websockets.exceptions import ConnectionClosed

from llmfleet import LlmfleetError, _kube
from llmfleet._kube import (
    PORT_FORWARD_PROTOCOL,
    KubeAccess,
    KubeError,
    forwarded,
    get_json,
    kubeconfig_path,
    load_kubeconfig,
    pick_ready_pod,
    target_port,
)

from .kube_standin import serving
from .kubernetes_cluster import write_kubeconfig, write_pki
from .litellm_proxy import free_port

CONTEXT = "llmfleet-test"
SERVER = "https://127.0.0.1:6443"
TOKEN = "sEcReT-token-0123456789"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pki")
    write_pki(path)
    return path


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def kubeconfig(tmp_path: Path, cluster: dict[str, Any], user: dict[str, Any] | None, **extra: Any) -> Path:
    """A kubeconfig with one context CONTEXT (cluster `c`, user `u`) and an `other` context."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": SERVER, **cluster}}],
        "users": [] if user is None else [{"name": "u", "user": user}],
        "contexts": [
            {"name": CONTEXT, "context": {"cluster": "c", "user": "u", "namespace": "llm"}},
            {"name": "other", "context": {"cluster": "c", "user": "u"}},
        ],
        "current-context": "other",
        **extra,
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def error(path: Path | str | None, context: str = CONTEXT) -> str:
    with pytest.raises(KubeError) as caught:
        load_kubeconfig(None if path is None else str(path), context)
    message = str(caught.value)
    assert "\n" not in message and TOKEN not in message and "PRIVATE KEY" not in message
    assert isinstance(caught.value, LlmfleetError)
    return message


def test_the_tests_kubeconfig_with_inline_data_gives_a_verifying_context_with_the_client_pair(
    tmp_path: Path, pki: Path
) -> None:
    path = tmp_path / "kubeconfig"
    write_kubeconfig(path, SERVER, pki)
    access = load_kubeconfig(str(path), CONTEXT)
    assert (access.server, access.token, access.namespace) == (SERVER, None, None)
    assert access.source == f"{path}, context 'llmfleet-test'"
    context = access.ssl_context
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    [authority] = context.get_ca_certs()
    assert authority["subject"] == ((("commonName", "llmfleet-test-ca"),),)
    assert access.httpx_options() == {"base_url": SERVER, "headers": {}, "timeout": 10.0, "verify": context}


def test_the_client_key_leaves_no_file_behind(tmp_path: Path, pki: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "kubeconfig"
    write_kubeconfig(path, SERVER, pki)
    spool = tmp_path / "tmp"
    spool.mkdir()
    monkeypatch.setenv("TMPDIR", str(spool))
    monkeypatch.setattr("tempfile.tempdir", None)
    descriptors = len(os.listdir("/proc/self/fd"))
    load_kubeconfig(str(path), CONTEXT)
    assert list(spool.iterdir()) == []
    assert len(os.listdir("/proc/self/fd")) == descriptors  # the in-memory file is closed too


def test_files_are_read_relative_to_the_kubeconfig_and_the_token_file_is_stripped(tmp_path: Path, pki: Path) -> None:
    (tmp_path / "token").write_text(TOKEN + "\n")
    cluster = {"certificate-authority": str(pki / "ca.crt"), "tls-server-name": "kubernetes"}
    user = {"client-certificate": str(pki / "admin.crt"), "client-key": str(pki / "admin.key"), "tokenFile": "token"}
    access = load_kubeconfig(str(kubeconfig(tmp_path, cluster, user)), CONTEXT)
    assert (access.token, access.tls_server_name, access.namespace) == (TOKEN, "kubernetes", "llm")
    assert access.headers() == {"Authorization": f"Bearer {TOKEN}"}
    assert access.request_extensions() == {"sni_hostname": "kubernetes"}
    assert TOKEN not in repr(access)
    assert access.ssl_context is not None and len(access.ssl_context.get_ca_certs()) == 1


def test_an_inline_token_and_insecure_skip_tls_verify(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path, {"insecure-skip-tls-verify": True}, {"token": TOKEN})
    access = load_kubeconfig(str(path), CONTEXT)
    assert access.token == TOKEN
    assert access.ssl_context is not None and access.ssl_context.verify_mode == ssl.CERT_NONE
    assert not access.ssl_context.check_hostname


def test_a_plain_http_server_needs_no_ssl_context(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path, {"server": "http://127.0.0.1:8080/"}, {})
    access = load_kubeconfig(str(path), CONTEXT)
    assert (access.server, access.ssl_context) == ("http://127.0.0.1:8080", None)
    assert "verify" not in access.httpx_options()


def test_a_proxy_url_goes_to_the_clients_and_must_be_http(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path, {"proxy-url": "http://proxy.example:3128"}, {})
    access = load_kubeconfig(str(path), CONTEXT)
    assert access.httpx_options()["proxy"] == access.proxy_url == "http://proxy.example:3128"
    path = kubeconfig(tmp_path, {"proxy-url": "socks5://proxy.example:1080"}, {})
    assert error(path) == (
        f"kubeconfig {path}, context 'llmfleet-test': cluster 'c' has a proxy-url that is not http:// or https://"
    )


def test_the_path_is_given_else_kubeconfigs_first_entry_else_home() -> None:
    assert kubeconfig_path("/a/b", {"KUBECONFIG": "/x"}) == Path("/a/b")
    assert kubeconfig_path(None, {"KUBECONFIG": f"/x{os.pathsep}/y", "HOME": "/h"}) == Path("/x")
    assert kubeconfig_path(None, {"KUBECONFIG": "", "HOME": "/h"}) == Path("/h/.kube/config")


def test_the_named_context_is_used_never_the_current_one(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path, {}, {})
    assert load_kubeconfig(str(path), CONTEXT).namespace == "llm"
    assert load_kubeconfig(str(path), "other").namespace is None


def test_a_missing_file_names_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope"
    expected = (f"kubeconfig {missing}: no such file (looking for the context '{CONTEXT}'); pass the kubeconfig's "
                "path or set KUBECONFIG")  # fmt: skip
    assert error(missing) == expected
    monkeypatch.setenv("KUBECONFIG", f"{missing}{os.pathsep}{tmp_path / 'second'}")
    assert error(None) == expected
    monkeypatch.delenv("KUBECONFIG")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert error(None).startswith(f"kubeconfig {tmp_path / '.kube' / 'config'}: no such file")


def test_an_unknown_context_lists_the_contexts_it_has(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path, {}, {})
    assert error(path, "prod") == (
        f"kubeconfig {path}: no context 'prod' (it has: 'llmfleet-test', 'other'); name one of those in the stack"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: Config\nclusters: x: y\n", "not valid YAML at line 2"),
        ("just text", "not a kubeconfig (expected a mapping with clusters, users and contexts)"),
        ("contexts: {a: b}", "`contexts` is not a list"),
        ("{}", "no context 'llmfleet-test' (it has: none); name one of those in the stack"),
    ],
)
def test_a_file_that_is_not_a_kubeconfig(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(text)
    assert error(path) == f"kubeconfig {path}: {message}"


def test_a_file_that_is_not_utf8_or_not_readable(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_bytes(b"\xff\xfe\x00")
    assert error(path) == f"kubeconfig {path}: cannot be read (UnicodeDecodeError)"
    assert error(tmp_path) == f"kubeconfig {tmp_path}: cannot be read (Is a directory)"


def test_a_context_whose_cluster_or_user_is_missing(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path, {}, None)
    at = f"kubeconfig {path}, context 'llmfleet-test'"
    assert error(path) == f"{at}: its user 'u' is not in the file's users"
    path = kubeconfig(tmp_path, {}, {})
    config = yaml.safe_load(path.read_text())
    config["clusters"] = []
    path.write_text(yaml.safe_dump(config))
    assert error(path) == f"{at}: its cluster 'c' is not in the file's clusters"
    config["clusters"] = [{"name": "c", "cluster": {"server": "127.0.0.1:6443"}}]
    path.write_text(yaml.safe_dump(config))
    assert error(path) == f"{at}: cluster 'c' has no https:// server URL"


INSTEAD = (
    "llmfleet runs no credential plugin: give this context a user with a `token` (for example from "
    "`kubectl create token <service-account> -n <namespace>`) or a client certificate"
)


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ({"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws", "args": ["eks"]}},
         f"its user authenticates with an exec plugin (aws); {INSTEAD}"),
        ({"auth-provider": {"name": "oidc", "config": {"id-token": TOKEN}}},
         f"its user authenticates with the 'oidc' auth-provider; {INSTEAD}"),
        ({"username": "admin", "password": TOKEN},
         f"its user has a username and password, which llmfleet does not send; {INSTEAD}"),
    ],
)  # fmt: skip
def test_a_credential_plugin_user_is_refused_saying_what_to_use(
    tmp_path: Path, user: dict[str, Any], message: str
) -> None:
    path = kubeconfig(tmp_path, {}, user)
    assert error(path) == f"kubeconfig {path}, context 'llmfleet-test': {message}"


def test_bad_certificates_keys_and_tokens(tmp_path: Path, pki: Path) -> None:
    def case(cluster: dict[str, Any], user: dict[str, Any]) -> str:
        path = kubeconfig(tmp_path, cluster, user)
        message = error(path)
        at = f"kubeconfig {path}, context 'llmfleet-test': "
        assert message.startswith(at), message
        return message.removeprefix(at)

    pair = {"client-certificate-data": b64(pki / "admin.crt"), "client-key-data": b64(pki / "admin.key")}
    assert case({"certificate-authority-data": "not base64!"}, {}) == "`certificate-authority-data` is not base64"
    not_pem = base64.b64encode(b"hello").decode()
    assert case({"certificate-authority-data": not_pem}, {}) == (
        "the cluster's certificate-authority is not a PEM certificate"
    )
    missing = tmp_path / "missing.crt"
    assert (
        case({"certificate-authority": str(missing)}, {})
        == f"`certificate-authority` {missing}: No such file or directory"
    )
    assert case({}, {"client-certificate-data": pair["client-certificate-data"]}) == (
        "its user has a client-certificate but no client-key"
    )
    assert (
        case({}, {"client-key-data": pair["client-key-data"]}) == "its user has a client-key but no client-certificate"
    )
    mismatched = {**pair, "client-key-data": b64(pki / "kwok.key")}
    assert case({}, mismatched) == "the user's client certificate and key are not a matching PEM pair"
    assert case({}, {"tokenFile": "absent"}) == f"`tokenFile` {tmp_path / 'absent'}: No such file or directory"
    (tmp_path / "empty").write_text("\n")
    assert case({}, {"tokenFile": "empty"}) == "`tokenFile` empty is empty"
    assert case({}, {"token": f"{TOKEN}\x00x"}) == "the user's token holds a character an HTTP header cannot carry"


def test_an_unreachable_api_server_is_a_kube_error_naming_it(tmp_path: Path) -> None:
    port = free_port()
    path = kubeconfig(tmp_path, {"server": f"http://127.0.0.1:{port}"}, {"token": TOKEN})
    access = load_kubeconfig(str(path), CONTEXT)
    with pytest.raises(KubeError) as caught:
        get_json(access, "/version", what="the version")
    assert str(caught.value).startswith(f"the version: cannot reach the API server http://127.0.0.1:{port} (")
    assert str(caught.value).endswith(f"; {path}, context 'llmfleet-test')")


def pod(name: str, phase: str = "Running", ready: bool = True, created: str = "2026-12-03T10:00:00Z",
        deleting: bool = False) -> dict[str, Any]:  # fmt: skip
    metadata: dict[str, Any] = {"name": name, "creationTimestamp": created}
    if deleting:
        metadata["deletionTimestamp"] = "2026-12-03T11:00:00Z"
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    return {"metadata": metadata, "status": {"phase": phase, "conditions": conditions}}


def test_the_newest_ready_pod_is_picked_never_a_terminating_one() -> None:
    pods = [
        pod("a"),
        pod("b", created="2026-12-03T10:05:00Z"),
        pod("c", created="2026-12-03T10:09:00Z", deleting=True),
        pod("d", ready=False, created="2026-12-03T10:09:00Z"),
    ]
    assert pick_ready_pod(pods, "svc")["metadata"]["name"] == "b"
    assert pick_ready_pod([pod("z"), pod("y")], "svc")["metadata"]["name"] == "y"  # same age: by name


def test_no_ready_pod_says_what_it_saw() -> None:
    with pytest.raises(KubeError, match=r"^svc: no pods match its selector; is the workload deployed"):
        pick_ready_pod([], "svc")
    pods = [pod("c", deleting=True), pod("a", phase="Pending", ready=False), pod("b", ready=False)]
    with pytest.raises(KubeError) as caught:
        pick_ready_pod(pods, "svc")
    assert str(caught.value) == "svc: none of its 3 pods is ready (a Pending, b Running, not Ready, c terminating)"
    many = [pod(f"p{i}", phase="Pending") for i in range(7)]
    with pytest.raises(KubeError, match=r"\(p0 Pending, p1 Pending, p2 Pending, p3 Pending, p4 Pending and 2 more\)$"):
        pick_ready_pod(many, "svc")


SPEC = {
    "ports": [
        {"name": "named", "port": 80, "targetPort": "http"},
        {"name": "numbered", "port": 8080, "targetPort": 8000},
        {"name": "string-number", "port": 81, "targetPort": "9000"},
        {"name": "same", "port": 4000},
    ]
}
POD = {"metadata": {"name": "web-0"}, "spec": {"containers": [
    {"name": "side", "ports": [{"name": "metrics", "containerPort": 9100}]},
    {"name": "server", "ports": [{"name": "http", "containerPort": 8001}]},
]}}  # fmt: skip


@pytest.mark.parametrize(("port", "expected"), [(80, 8001), (8080, 8000), (81, 9000), (4000, 4000)])
def test_a_service_port_resolves_to_the_pods_target_port(port: int, expected: int) -> None:
    assert target_port(SPEC, POD, port, "svc") == expected


def test_a_service_port_that_cannot_be_resolved() -> None:
    with pytest.raises(KubeError, match=r"^svc: has no port 90 \(its ports: 80, 8080, 81, 4000\)$"):
        target_port(SPEC, POD, 90, "svc")
    spec = {"ports": [{"port": 80, "targetPort": "grpc"}]}
    with pytest.raises(KubeError, match=r"^svc: port 80 targets the port named 'grpc', which pod web-0 does not"):
        target_port(spec, POD, 80, "svc")


def test_importing_the_module_loads_neither_pulumi_nor_websockets() -> None:
    code = "import sys, llmfleet._kube; print(sorted(m for m in ('pulumi', 'websockets', 'yaml') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr


# --- forwarded() against a stand-in API server -----------------------------------------------------
# A websockets server on loopback answering the three GETs `forwarded` makes (the Service, its pods)
# and the port-forward upgrade: each channel opened with the port, then channel 0 echoed upper-cased.
# The real API server and kwok are in tests/test_kube_real.py; this covers what they will not do
# on demand: a handshake that gets no answer, a 403 on the upgrade, channels that never open.


class StandIn:
    def __init__(self) -> None:
        self.stall_handshakes = 0  # the next N upgrades get no answer for STALL seconds
        self.upgrade_status: int | None = None  # answer the upgrade with this status instead
        self.open_channels = True
        self.upgrades = 0
        self.lock = threading.Lock()

    def process_request(self, connection: Any, request: Any) -> Any:
        path = request.path.split("?")[0]
        if path == "/api/v1/namespaces/ns/services/web":
            body = {"spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]}}
            return connection.respond(200, json.dumps(body))
        if path == "/api/v1/namespaces/ns/pods":
            ready = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
            ports = [{"name": "http", "containerPort": 8000}]
            body = {"items": [{"metadata": {"name": "web-0"}, "status": ready,
                               "spec": {"containers": [{"name": "s", "ports": ports}]}}]}  # fmt: skip
            return connection.respond(200, json.dumps(body))
        assert path == "/api/v1/namespaces/ns/pods/web-0/portforward" and "ports=8000" in request.path, request.path
        with self.lock:
            self.upgrades += 1
            stall = self.stall_handshakes > 0
            self.stall_handshakes -= stall
        if stall:
            time.sleep(STALL)
        if self.upgrade_status:
            return connection.respond(self.upgrade_status, json.dumps({"message": 'pods "web-0" is forbidden'}))
        return None

    def handler(self, connection: Any) -> None:
        if self.open_channels:
            connection.send(b"\x00" + (8000).to_bytes(2, "little"))
            connection.send(b"\x01" + (8000).to_bytes(2, "little"))
        with contextlib.suppress(ConnectionClosed):
            for frame in connection:
                connection.send(b"\x00" + frame[1:].upper())


STALL = 1.5


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[StandIn, KubeAccess]]:
    monkeypatch.setattr(_kube, "OPEN_ATTEMPT_TIMEOUT", 0.5)
    monkeypatch.setattr(_kube, "OPEN_TIMEOUT", 1.0)
    state = StandIn()
    with serving(state, PORT_FORWARD_PROTOCOL) as access:
        yield state, access
    assert [t.name for t in threading.enumerate() if t.name.startswith("llmfleet-forward")] == []


def exchange(url: str, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=10) as conn:
        conn.sendall(data)
        received = b""
        while len(received) < len(data):
            chunk = conn.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def test_a_forward_echoes_through_the_stand_in(stand_in: tuple[StandIn, KubeAccess]) -> None:
    state, access = stand_in
    with forwarded(access, "ns", "web", 80) as url:
        assert (url.pod, url.pod_port) == ("web-0", 8000)
        assert exchange(url, b"hello") == b"HELLO"
        assert exchange(url, b"again") == b"AGAIN"
    assert (url.errors, state.upgrades) == ([], 2)


def test_an_unanswered_handshake_is_tried_again(stand_in: tuple[StandIn, KubeAccess]) -> None:
    state, access = stand_in
    state.stall_handshakes = 2
    with forwarded(access, "ns", "web", 80) as url:
        assert exchange(url, b"third time") == b"THIRD TIME"
    assert (url.errors, state.upgrades) == ([], 3)


def test_handshakes_unanswered_every_time_give_up_saying_so(stand_in: tuple[StandIn, KubeAccess]) -> None:
    state, access = stand_in
    state.stall_handshakes = 3
    with forwarded(access, "ns", "web", 80) as url:
        assert exchange(url, b"x") == b""  # closed: nothing to forward to
    assert state.upgrades == 3
    assert url.errors == [f"port-forward to pod ns/web-0 port 8000: cannot open the websocket to {access.server} "
                          "in 3 tries (timed out while waiting for handshake response)"]  # fmt: skip


def test_a_refused_upgrade_is_not_retried_and_says_why(stand_in: tuple[StandIn, KubeAccess]) -> None:
    state, access = stand_in
    state.upgrade_status = 403
    with forwarded(access, "ns", "web", 80) as url:
        assert exchange(url, b"x") == b""
    assert state.upgrades == 1
    assert url.errors == ['port-forward to pod ns/web-0 port 8000: forbidden for the user of stand-in (403): '
                          'pods "web-0" is forbidden']  # fmt: skip


def test_channels_that_never_open_close_the_connection(stand_in: tuple[StandIn, KubeAccess]) -> None:
    state, access = stand_in
    state.open_channels = False
    with forwarded(access, "ns", "web", 80) as url:
        assert exchange(url, b"x") == b""
    assert url.errors == ["port-forward to pod ns/web-0 port 8000: its channels did not open within 1 s"]
