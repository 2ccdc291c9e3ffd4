"""llmfleet._kube against the real control plane (tests/kubernetes_cluster.py): the kubeconfig the
cluster writes (certificates inline) and one naming files, a ServiceAccount's bearer token, a Ready
pod found behind a Service, and `forwarded` reaching a loopback HTTP server through the API server's
port-forward websocket (kwok dials the server for the pod's port): sequential requests over one
kept-alive connection, concurrent ones from threads and from asyncio, a large streamed body each
way; a port nothing answers on gives the error channel's text; and nothing is left running after."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import http.server
import os
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from llmfleet._kube import KubeAccess, KubeError, forwarded, get_json, load_kubeconfig, ready_pod

from .kubernetes_build import ensure_built
from .kubernetes_cluster import Cluster, GpuPool, PortForward, running_cluster
from .litellm_proxy import free_port

pytestmark = [pytest.mark.real_kubernetes, pytest.mark.timeout(300)]

CONTEXT = "llmfleet-test"  # write_kubeconfig's
NAMESPACE = "default"
SERVED_PORT = 8000  # kwok forwards this pod port to the test's server
DEAD_PORT = 9000  # no forward: kwok answers on the error channel
IDLE_TIMEOUT = 2.0
BIG = 16 * 1024 * 1024
BIG_BODY = (hashlib.sha256(b"llmfleet").digest() * (BIG // 32 + 1))[:BIG]


class Upstream(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False


class Handler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive. `/` answers which upstream connection served it (kwok dials one
    per forwarded connection); `/big` streams BIG_BODY; POST answers the sha256 of what it read.
    An idle connection is closed after IDLE_TIMEOUT, as servers do: kwok keeps its side of a
    forwarded connection open until the target closes it, even after the websocket has closed
    (`utils/net.Tunnel` waits for both directions), so without it each would linger."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT

    def do_GET(self) -> None:
        if self.path == "/big":
            self._answer(BIG_BODY, chunked=True)
        else:
            self._answer(f"peer {self.client_address[1]}".encode())

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        digest = hashlib.sha256()
        while length:
            chunk = self.rfile.read(min(length, 65536))
            digest.update(chunk)
            length -= len(chunk)
        self._answer(digest.hexdigest().encode())

    def _answer(self, body: bytes, chunked: bool = False) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if chunked:
            for start in range(0, len(body), 256 * 1024):
                self.wfile.write(body[start : start + 256 * 1024])
        else:
            self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def upstream() -> Iterator[int]:
    server = Upstream(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(10)


def pod(name: str, labels: dict[str, str], spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [
                {
                    "name": "server",
                    "image": "example.invalid/server:none",  # never pulled: kwok runs no container
                    "ports": [
                        {"name": "http", "containerPort": SERVED_PORT},
                        {"name": "dead", "containerPort": DEAD_PORT},
                    ],
                }
            ],
            **(spec or {}),
        },
    }


def service(name: str, selector: dict[str, str] | None, ports: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {**({"selector": selector} if selector else {}), "ports": ports},
    }


def running(cluster: Cluster, name: str) -> bool:
    return cluster.get(f"/api/v1/namespaces/{NAMESPACE}/pods/{name}")["status"].get("phase") == "Running"


@pytest.fixture(scope="module")
def cluster(upstream: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("kube")
    forwards = [PortForward(SERVED_PORT, upstream)]
    with running_cluster(ensure_built(), workdir, [GpuPool("gpu-a")], forwards) as started:
        create = started.create
        create(f"/api/v1/namespaces/{NAMESPACE}/pods", pod("web-0", {"app": "web"}))
        # Never scheduled: no node has this pool label.
        create(f"/api/v1/namespaces/{NAMESPACE}/pods",
               pod("stuck-0", {"app": "stuck"}, {"nodeSelector": {"llmfleet.dev/pool": "none"}}))  # fmt: skip
        ports = [
            {"name": "named", "port": 80, "targetPort": "http"},
            {"name": "numbered", "port": 8080, "targetPort": SERVED_PORT},
            {"name": "dead", "port": 90, "targetPort": DEAD_PORT},
        ]
        create(f"/api/v1/namespaces/{NAMESPACE}/services", service("web", {"app": "web"}, ports))
        create(f"/api/v1/namespaces/{NAMESPACE}/services", service("stuck", {"app": "stuck"}, ports[:1]))
        create(f"/api/v1/namespaces/{NAMESPACE}/services", service("nobody", {"app": "nobody"}, ports[:1]))
        create(f"/api/v1/namespaces/{NAMESPACE}/services", service("external", None, ports[:1]))
        started.wait_for("pod web-0 Running", lambda: running(started, "web-0"))
        yield started


@pytest.fixture(scope="module")
def file_kubeconfig(cluster: Cluster) -> Path:
    """The cluster's kubeconfig with the CA and the client pair as relative file paths."""
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["clusters"][0]["cluster"] = {"server": cluster.url, "certificate-authority": "pki/ca.crt"}
    config["users"][0]["user"] = {"client-certificate": "pki/admin.crt", "client-key": "pki/admin.key"}
    path = cluster.workdir / "kubeconfig-files"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module", params=["inline", "files"])
def access(request: pytest.FixtureRequest, cluster: Cluster, file_kubeconfig: Path) -> KubeAccess:
    path = cluster.kubeconfig if request.param == "inline" else file_kubeconfig
    return load_kubeconfig(str(path), CONTEXT)


@pytest.fixture(scope="module")
def token_kubeconfig(cluster: Cluster) -> Path:
    """A kubeconfig whose user is a ServiceAccount's bearer token (a TokenRequest), allowed to read
    services and pods and to port-forward in NAMESPACE, and nothing else."""
    base = f"/api/v1/namespaces/{NAMESPACE}"
    cluster.create(f"{base}/serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount",
                                               "metadata": {"name": "forwarder"}})  # fmt: skip
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NAMESPACE}"
    cluster.create(f"{rbac}/roles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "forwarder"},
        "rules": [
            {"apiGroups": [""], "resources": ["services", "pods"], "verbs": ["get", "list"]},
            {"apiGroups": [""], "resources": ["pods/portforward"], "verbs": ["get", "create"]},
        ],
    })  # fmt: skip
    cluster.create(f"{rbac}/rolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "forwarder"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "forwarder"},
        "subjects": [{"kind": "ServiceAccount", "name": "forwarder", "namespace": NAMESPACE}],
    })  # fmt: skip
    token = cluster.create(f"{base}/serviceaccounts/forwarder/token", {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 3600},
    })["status"]["token"]  # fmt: skip
    (cluster.workdir / "sa-token").write_text(token + "\n")
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"][0]["user"] = {"tokenFile": "sa-token"}
    path = cluster.workdir / "kubeconfig-token"
    path.write_text(yaml.safe_dump(config))
    return path


def sockets_open() -> int:
    """The sockets this process holds open."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):  # the listing's own descriptor, closed by now
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return count


@contextlib.contextmanager
def leaves_nothing_behind() -> Iterator[None]:
    """Asserts that the threads and sockets of the block are all gone when it ends. The upstream
    server's handler threads end once kwok closes its side, which follows the websocket's close:
    they are given a few seconds, so an upstream connection left open fails the test too."""
    gc.collect()  # sockets of earlier tests' tracebacks close when collected, not when counted
    threads, sockets = set(threading.enumerate()), sockets_open()
    yield
    deadline = time.monotonic() + 10
    for thread in [t for t in threading.enumerate() if t not in threads and "process_request" in t.name]:
        thread.join(max(0.0, deadline - time.monotonic()))
    left = [t.name for t in threading.enumerate() if t not in threads]
    gc.collect()
    assert not left, f"threads left running: {left}"
    assert sockets_open() == sockets


def test_ready_pod_finds_the_running_pod_behind_the_service(access: KubeAccess) -> None:
    assert ready_pod(access, NAMESPACE, "web") == "web-0"
    assert get_json(access, "/version")["gitVersion"] == "v1.37.2"


def test_the_same_settings_serve_a_sync_and_an_async_client(access: KubeAccess) -> None:
    path = f"/api/v1/namespaces/{NAMESPACE}/services/web"
    with httpx.Client(**access.httpx_options()) as client:
        synced = client.get(path).raise_for_status().json()

    async def fetch() -> dict[str, Any]:
        async with httpx.AsyncClient(**access.httpx_options()) as client:
            return (await client.get(path)).raise_for_status().json()

    assert asyncio.run(fetch())["spec"]["selector"] == synced["spec"]["selector"] == {"app": "web"}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nobody", "service default/nobody (selector app=nobody): no pods match its selector"),
        ("stuck", "service default/stuck (selector app=stuck): none of its 1 pods is ready (stuck-0 Pending)"),
        ("external", "service default/external: has no selector, so no pod to forward to"),
        ("missing", 'service default/missing: not found: services "missing" not found'),
    ],
)
def test_no_ready_pod_is_an_error_naming_the_service_and_what_it_saw(
    access: KubeAccess, name: str, message: str
) -> None:
    with pytest.raises(KubeError) as caught, leaves_nothing_behind(), forwarded(access, NAMESPACE, name, 80):
        pass  # not reached
    assert str(caught.value).startswith(message), caught.value


def test_a_service_port_it_does_not_have_is_an_error_listing_its_ports(access: KubeAccess) -> None:
    with pytest.raises(KubeError, match=r"^service default/web: has no port 81 \(its ports: 80, 8080, 90\)$"):
        forwarded(access, NAMESPACE, "web", 81).__enter__()


@pytest.mark.parametrize("port", [80, 8080], ids=["named-target", "numbered-target"])
def test_sequential_requests_share_one_forwarded_connection(access: KubeAccess, port: int) -> None:
    with leaves_nothing_behind():
        with forwarded(access, NAMESPACE, "web", port) as url, httpx.Client(base_url=url, timeout=10) as client:
            assert url.startswith("http://127.0.0.1:") and (url.pod, url.pod_port) == ("web-0", SERVED_PORT)
            answers = [client.get("/") for _ in range(5)]
        assert [a.status_code for a in answers] == [200] * 5
        # One upstream connection (one websocket) served all five: keep-alive held through the forward.
        assert len({a.text for a in answers}) == 1, [a.text for a in answers]
        assert url.errors == []


def test_concurrent_connections_from_threads_and_from_asyncio(access: KubeAccess) -> None:
    def three_gets(_: int) -> list[str]:
        with httpx.Client(base_url=url, timeout=20) as client:
            return [client.get("/").raise_for_status().text for _ in range(3)]

    async def gathered() -> list[str]:
        limits = httpx.Limits(max_connections=8)
        async with httpx.AsyncClient(base_url=url, timeout=20, limits=limits) as client:
            answers = await asyncio.gather(*(client.get("/") for _ in range(16)))
        return [a.raise_for_status().text for a in answers]

    with leaves_nothing_behind(), forwarded(access, NAMESPACE, "web", 80) as url:
        try:
            with ThreadPoolExecutor(8) as pool:
                by_thread = list(pool.map(three_gets, range(8)))
            from_asyncio = asyncio.run(gathered())
        except httpx.HTTPError as exc:
            raise AssertionError(f"{exc!r}; port-forward errors: {url.errors}") from exc
    assert all(len(set(answers)) == 1 for answers in by_thread), by_thread  # each client kept its connection
    assert len({answers[0] for answers in by_thread}) == 8  # eight clients, eight upstream connections
    assert len(from_asyncio) == 16 and 1 < len(set(from_asyncio)) <= 8, from_asyncio
    assert url.errors == []


def test_a_large_body_streams_both_ways(access: KubeAccess) -> None:
    with leaves_nothing_behind():
        with forwarded(access, NAMESPACE, "web", 80) as url, httpx.Client(base_url=url, timeout=60) as client:
            started = time.monotonic()
            digest, size = hashlib.sha256(), 0
            with client.stream("GET", "/big") as response:
                for chunk in response.iter_bytes():
                    digest.update(chunk)
                    size += len(chunk)
            down = time.monotonic() - started
            posted = client.post("/", content=BIG_BODY)
        assert (size, digest.hexdigest()) == (BIG, hashlib.sha256(BIG_BODY).hexdigest())
        assert posted.text == hashlib.sha256(BIG_BODY).hexdigest()
        assert down < 30, f"16 MiB took {down:.1f} s"


def test_leaving_mid_body_on_an_exception_closes_everything_promptly(access: KubeAccess) -> None:
    class Leave(Exception):
        pass

    with (
        leaves_nothing_behind(),
        pytest.raises(Leave),
        forwarded(access, NAMESPACE, "web", 80) as url,
        httpx.Client(base_url=url, timeout=10) as client,
        client.stream("GET", "/big") as response,
    ):
        next(response.iter_bytes())
        started = time.monotonic()
        raise Leave  # the body mostly unread, the upstream still writing
    assert time.monotonic() - started < 5.0  # CLOSE_TIMEOUT, and the upstream's side closed too


def test_the_error_channel_closes_the_connection_and_is_kept(access: KubeAccess) -> None:
    with leaves_nothing_behind():
        with (
            forwarded(access, NAMESPACE, "web", 90) as url,
            httpx.Client(base_url=url, timeout=10) as client,
            pytest.raises(httpx.RemoteProtocolError),
        ):
            client.get("/")
        assert url.pod_port == DEAD_PORT
        assert url.errors, "no error-channel text kept"
        # kwok's own words for a port it has no forward for, after the port-forward's name
        assert url.errors[0].startswith(f"port-forward to pod default/web-0 port {DEAD_PORT}: error forwarding port "
                                        f"{DEAD_PORT} to pod web-0/default"), url.errors  # fmt: skip
        assert f"no forward found for port {DEAD_PORT}" in url.errors[0], url.errors


def test_a_service_account_token_reads_and_forwards(token_kubeconfig: Path) -> None:
    access = load_kubeconfig(str(token_kubeconfig), CONTEXT)
    assert access.token and access.ssl_context is not None
    assert ready_pod(access, NAMESPACE, "web") == "web-0"
    with leaves_nothing_behind(), forwarded(access, NAMESPACE, "web", 80) as url:
        assert httpx.get(f"{url}/", timeout=10).status_code == 200
    with pytest.raises(KubeError, match=r"^nodes: forbidden for the user of .*kubeconfig-token, context "):
        get_json(access, "/api/v1/nodes", what="nodes")


def test_a_stale_token_is_refused_without_showing_it(cluster: Cluster, token_kubeconfig: Path) -> None:
    bad = cluster.workdir / "kubeconfig-bad-token"
    config = yaml.safe_load(token_kubeconfig.read_text())
    config["users"][0]["user"] = {"token": "not-a-real-token-abc123"}
    bad.write_text(yaml.safe_dump(config))
    access = load_kubeconfig(str(bad), CONTEXT)
    with pytest.raises(KubeError) as caught:
        ready_pod(access, NAMESPACE, "web")
    assert "refused the credentials" in str(caught.value) and "(401)" in str(caught.value)
    assert "abc123" not in str(caught.value)


def test_an_api_server_that_is_not_there_is_an_error_naming_it(cluster: Cluster) -> None:
    port = free_port()
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    gone = cluster.workdir / "kubeconfig-gone"
    gone.write_text(yaml.safe_dump(config))
    with pytest.raises(
        KubeError, match=rf"^service default/web: cannot reach the API server https://127.0.0.1:{port} "
    ):
        ready_pod(load_kubeconfig(str(gone), CONTEXT), NAMESPACE, "web")


def test_after_exit_the_local_port_is_closed(access: KubeAccess) -> None:
    with forwarded(access, NAMESPACE, "web", 80) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
