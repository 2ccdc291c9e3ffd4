"""The real Kubernetes control plane the Kubernetes target is tested against (v1.37.2, built by
tests/kubernetes_build.py, started on loopback by tests/kubernetes_cluster.py) does what those tests
rely on: it reports its version; the fake GPU nodes are Ready with their `nvidia.com/gpu`; the real
scheduler places a GPU Deployment on the pool's nodes and leaves one that asks for more GPUs than a
node has Pending, saying why in an event; a port-forward through the API server reaches a loopback
server (kwok forwards the pod's port); and every process is gone once the cluster stops, also when
a start fails."""

from __future__ import annotations

import http.server
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from .kubernetes_build import KUBE_VERSION, ensure_built
from .kubernetes_cluster import (
    GPU_RESOURCE,
    POOL_LABEL,
    Cluster,
    GpuPool,
    PortForward,
    dumps,
    events_for,
    node_ready,
    pid_alive,
    running_cluster,
)
from .litellm_proxy import free_port

pytestmark = [pytest.mark.real_kubernetes, pytest.mark.timeout(300)]

POOL = GpuPool("gpu-a", nodes=2, gpus=2)
FORWARDED_PORT = 8000  # the pod port whose port-forward kwok sends to the test's loopback server
BODY = b"served on loopback, reached through the API server\n"
NAMESPACE = "default"


@pytest.fixture(scope="module")
def bin_dir() -> Path:
    return ensure_built()  # seconds when cached; .ci/setup builds it before pytest


@pytest.fixture(scope="module")
def loopback_server() -> Iterator[int]:
    """An HTTP server on a free loopback port answering every GET with BODY."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def cluster(bin_dir: Path, loopback_server: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("kubernetes")
    with running_cluster(bin_dir, workdir, [POOL], [PortForward(FORWARDED_PORT, loopback_server)]) as started:
        yield started
    survivors = {name: pid for name, pid in started.pids.items() if pid_alive(pid)}
    assert not survivors, f"processes left running after the cluster stopped: {survivors}"
    assert started.stopped == ["kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"]


def gpu_pod_spec(gpus: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A pod spec for the GPU pool: its node selector and taint toleration, `gpus` whole GPUs."""
    return {
        "nodeSelector": {POOL_LABEL: POOL.name},
        "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
        "containers": [
            {
                "name": "server",
                "image": "example.invalid/server:none",  # never pulled: kwok runs no container
                "ports": [{"containerPort": FORWARDED_PORT}],
                "resources": {"limits": {GPU_RESOURCE: str(gpus)}},
            }
        ],
        **(extra or {}),
    }


def create_deployment(cluster: Cluster, name: str, gpus: int) -> None:
    labels = {"app.kubernetes.io/name": name}
    cluster.create(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": gpu_pod_spec(gpus)},
        },
    })  # fmt: skip


def pods_of(cluster: Cluster, name: str) -> list[dict[str, Any]]:
    selector = f"app.kubernetes.io/name={name}"
    return cluster.get(f"/api/v1/namespaces/{NAMESPACE}/pods", labelSelector=selector)["items"]


def condition(obj: dict[str, Any], kind: str) -> str | None:
    return next((c["status"] for c in obj.get("status", {}).get("conditions", []) if c["type"] == kind), None)


def test_the_api_server_reports_the_pinned_version(cluster: Cluster) -> None:
    version = cluster.get("/version")
    assert version["gitVersion"] == KUBE_VERSION == "v1.37.2", dumps(version)
    assert (version["major"], version["minor"]) == ("1", "37")


def test_the_fake_gpu_nodes_are_ready_with_their_gpus(cluster: Cluster) -> None:
    nodes = cluster.get("/api/v1/nodes", labelSelector=f"{POOL_LABEL}={POOL.name}")["items"]
    assert sorted(n["metadata"]["name"] for n in nodes) == POOL.node_names()
    for node in nodes:
        assert node_ready(node), dumps(node["status"])
        assert node["status"]["allocatable"][GPU_RESOURCE] == str(POOL.gpus)
        assert node["status"]["capacity"][GPU_RESOURCE] == str(POOL.gpus)
        assert {"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"} in node["spec"]["taints"]
        assert {"type": "InternalIP", "address": "127.0.0.1"} in node["status"]["addresses"]


def test_a_gpu_deployment_becomes_available_on_a_gpu_node(cluster: Cluster) -> None:
    create_deployment(cluster, "gpu-fits", gpus=POOL.gpus)
    path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/gpu-fits"
    cluster.wait_for("Deployment gpu-fits Available", lambda: condition(cluster.get(path), "Available") == "True")
    deployment = cluster.get(path)
    assert deployment["status"]["availableReplicas"] == 1, dumps(deployment["status"])
    [pod] = pods_of(cluster, "gpu-fits")
    assert pod["spec"]["nodeName"] in POOL.node_names(), dumps(pod["spec"])
    assert pod["status"]["phase"] == "Running" and condition(pod, "Ready") == "True", dumps(pod["status"])
    assert pod["spec"]["containers"][0]["resources"]["limits"][GPU_RESOURCE] == str(POOL.gpus)


def test_a_deployment_wanting_more_gpus_than_a_node_has_stays_pending_saying_why(cluster: Cluster) -> None:
    create_deployment(cluster, "gpu-too-big", gpus=POOL.gpus + 1)
    [pod] = cluster.wait_for("a pod of gpu-too-big", lambda: pods_of(cluster, "gpu-too-big"))
    name = pod["metadata"]["name"]

    def failed_scheduling() -> list[dict[str, Any]]:
        return [e for e in events_for(cluster, NAMESPACE, name) if e["reason"] == "FailedScheduling"]

    [event, *_] = cluster.wait_for(f"a FailedScheduling event for {name}", failed_scheduling)
    assert f"Insufficient {GPU_RESOURCE}" in event["message"], dumps(event)
    # Written through events.k8s.io/v1, which names its reporter there rather than in `source`.
    reporters = (event.get("reportingComponent"), event.get("source", {}).get("component"))
    assert "default-scheduler" in reporters, dumps(event)
    [pod] = pods_of(cluster, "gpu-too-big")
    assert pod["status"]["phase"] == "Pending" and not pod["spec"].get("nodeName"), dumps(pod)
    assert condition(pod, "PodScheduled") == "False", dumps(pod["status"])


def port_forward_get(cluster: Cluster, pod: str, port: int, deadline_s: float = 30.0) -> bytes:
    """GET / on `port` of `pod` through the API server's port-forward (the websocket
    `v4.channel.k8s.io` protocol: channel 0 data, channel 1 errors, each opened by the port number),
    as `kubectl port-forward` reaches it; the bytes received until the response is whole."""
    url = cluster.url.replace("https://", "wss://") + f"/api/v1/namespaces/{NAMESPACE}/pods/{pod}/portforward"
    received = b""
    errors = b""
    with connect(f"{url}?ports={port}", ssl=cluster.ssl_context, subprotocols=["v4.channel.k8s.io"],
                 open_timeout=10, close_timeout=5) as ws:  # fmt: skip
        opened = set()
        deadline = time.monotonic() + deadline_s
        sent = False
        while BODY not in received:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no whole response within {deadline_s} s: {received!r}, errors {errors!r}")
            frame = ws.recv(timeout=remaining)
            assert isinstance(frame, bytes), frame
            channel, payload = frame[0], frame[1:]
            if channel not in opened:  # each channel's first frame is the port, little-endian
                assert int.from_bytes(payload[:2], "little") == port, frame
                opened.add(channel)
                payload = payload[2:]
            if channel == 0:
                received += payload
            else:
                errors += payload
                assert not errors, f"port-forward error: {errors!r}"
            if opened == {0, 1} and not sent:
                ws.send(b"\x00GET / HTTP/1.0\r\nHost: loopback\r\n\r\n")
                sent = True
    return received


def test_a_port_forward_through_the_api_server_reaches_a_loopback_server(cluster: Cluster) -> None:
    name = f"forwarded-{uuid.uuid4().hex[:6]}"
    spec = gpu_pod_spec(0)
    spec["containers"][0]["resources"] = {}
    cluster.create(f"/api/v1/namespaces/{NAMESPACE}/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec,
    })  # fmt: skip
    path = f"/api/v1/namespaces/{NAMESPACE}/pods/{name}"
    cluster.wait_for(f"pod {name} Running", lambda: cluster.get(path)["status"].get("phase") == "Running")
    response = port_forward_get(cluster, name, FORWARDED_PORT)
    assert response.startswith(b"HTTP/1.0 200 "), response
    assert response.endswith(BODY), response


def test_a_failed_start_stops_what_had_started(bin_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "bin"
    broken.mkdir()
    for binary in bin_dir.iterdir():
        (broken / binary.name).symlink_to(binary)
    (broken / "kube-apiserver").unlink()
    (broken / "kube-apiserver").symlink_to(shutil.which("false") or "/bin/false")
    with pytest.raises(RuntimeError, match="kube-apiserver exited with 1"), running_cluster(broken, tmp_path / "c"):
        pass  # not reached: the API server never starts
    # A failed start hands back no Cluster: each start leaves <name>.pid beside its log.
    started = {path.stem: int(path.read_text()) for path in (tmp_path / "c").glob("*.pid")}
    assert set(started) == {"etcd", "kube-apiserver"}, started
    assert not [pid for pid in started.values() if pid_alive(pid)], started
