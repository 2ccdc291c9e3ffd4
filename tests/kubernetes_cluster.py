"""Start a real Kubernetes control plane on loopback for a test, with fake GPU nodes, and always stop
it: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok, built once by
`tests/kubernetes_build.py`.

kwok plays the kubelets: it manages the nodes annotated `kwok.x-k8s.io/node: fake`, marks them Ready
and keeps their heartbeat, and moves the pods the real scheduler binds to them through the stages
the build joined from kwok's module zip (Running and Ready at once; no container runs). Scheduling,
Deployments, ReplicaSets, Services and EndpointSlices are the real controllers'. A `ClusterPortForward`
sends a pod port's port-forward to a loopback address, so a client can reach a server of the test's
through the API server as `kubectl port-forward` does; a `ClusterExec` runs an exec's command on this
host (`LocalExec`), so a client's `kubectl exec` reaches a program of the test's.

Every port is a free loopback port and every file (PKI, etcd's data, logs, the kubeconfig) is under
the test's directory. The PKI is made with `cryptography`: a CA, the API server's serving certificate,
an admin client certificate in `system:masters`, kwok's serving certificate and the service-account
signing key. Each start is bounded in time; on exit, or when a start fails, the processes stop in
the reverse of their start order (kwok, scheduler, controller manager, API server, etcd: etcd last,
or the API server retries it for half a minute) and each is waited for.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import ipaddress
import json
import os
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .litellm_proxy import free_port, stop_process

START_DEADLINE = 60.0  # per process; idle: etcd 0.4 s, the API server 5 s, a Ready node 1 s
STOP_GRACE = 15.0  # each stops in 1.5-3 s on SIGTERM
GPU_RESOURCE = "nvidia.com/gpu"
POOL_LABEL = "llmfleet.dev/pool"
SERVICE_CIDR = "10.0.0.0/24"
POD_CIDR = "10.244.0.0/16"


@dataclass(frozen=True)
class GpuPool:
    """Fake nodes of one pool: each labelled `llmfleet.dev/pool: <name>`; with `gpus`, tainted
    `nvidia.com/gpu=present:NoSchedule` and that many nvidia.com/gpu in capacity and allocatable."""

    name: str
    nodes: int = 1
    gpus: int = 2
    cpu: str = "32"
    memory: str = "256Gi"

    def node_names(self) -> list[str]:
        return [f"{self.name}-{i}" for i in range(self.nodes)]

    def taints(self) -> list[dict[str, str]]:
        """GPU nodes are tainted, as GPU pools usually are; a pool of no GPUs (CPU nodes) is not."""
        return [{"key": GPU_RESOURCE, "value": "present", "effect": "NoSchedule"}] if self.gpus else []

    def manifests(self) -> list[dict[str, Any]]:
        resources = {
            "cpu": self.cpu,
            "memory": self.memory,
            "pods": "110",
            **({GPU_RESOURCE: str(self.gpus)} if self.gpus else {}),
        }
        return [
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                    "labels": {
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "type": "kwok",
                        POOL_LABEL: self.name,
                    },
                },
                "spec": {"taints": self.taints()},
                # Kept on create for a Node (a kubelet registers so): kwok then adds the conditions.
                "status": {"capacity": resources, "allocatable": resources},
            }
            for name in self.node_names()
        ]


@dataclass(frozen=True)
class PortForward:
    """kwok answers a port-forward to pod port `pod_port` (of any pod) by dialling `target`."""

    pod_port: int
    target_port: int
    target_address: str = "127.0.0.1"


@dataclass(frozen=True)
class LocalExec:
    """kwok answers an exec in `containers` (of any pod) by running the command on this host, in
    `work_dir` with `envs` added to its own environment. kwok resolves the command's name on its own
    PATH (Go's exec.Command looks it up before the environment applies), so `path` is put in front
    of kwok's PATH; put it first in `envs`' PATH too for what the command itself starts."""

    containers: tuple[str, ...]
    work_dir: Path
    envs: tuple[tuple[str, str], ...] = ()
    path: tuple[Path, ...] = ()


@dataclass
class Cluster:
    url: str  # https://127.0.0.1:<port>
    kubeconfig: Path
    workdir: Path
    ssl_context: ssl.SSLContext
    pids: dict[str, int] = field(default_factory=dict)  # name -> pid, in start order
    stopped: list[str] = field(default_factory=list)  # names, in the order each stopped and was waited for

    def client(self, timeout: float = 30.0) -> httpx.Client:
        """An httpx client to the API server as the admin (`system:masters`)."""
        return httpx.Client(base_url=self.url, verify=self.ssl_context, timeout=timeout)

    def get(self, path: str, **params: str) -> dict[str, Any]:
        with self.client() as client:
            response = client.get(path, params=params)
        _raise_for_status(response)
        return response.json()

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.client() as client:
            response = client.post(path, json=body)
        _raise_for_status(response)
        return response.json()

    def wait_for(self, what: str, check: Callable[[], Any], deadline_s: float = START_DEADLINE) -> Any:
        """`check()`'s first truthy value, polled, or an AssertionError naming `what` after `deadline_s`."""
        deadline = time.monotonic() + deadline_s
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if found := check():
                    return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {deadline_s:.0f} s{self._log_tails()}")
            time.sleep(0.2)

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def _log_tails(self) -> str:
        return "".join(f"\n--- {name}.log ---\n{self.log(name)[-1500:]}" for name in self.pids)


def _raise_for_status(response: httpx.Response) -> None:
    if response.is_error:
        raise httpx.HTTPStatusError(
            f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text[:2000]}",
            request=response.request,
            response=response,
        )


# --- PKI -----------------------------------------------------------------------------------------


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: Any) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)


def _certificate(
    subject: x509.Name,
    key: Any,
    issuer: tuple[x509.Name, Any] | None,
    usage: Sequence[x509.ObjectIdentifier] = (),
    names: Sequence[x509.GeneralName] = (),
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is None:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        ).add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usage)), critical=False)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def write_pki(pki: Path) -> None:
    """ca.crt; apiserver.crt/.key (serving 127.0.0.1 and the in-cluster names); admin.crt/.key (a
    `system:masters` client); kwok.crt/.key (serving 127.0.0.1); sa.key/sa.pub (service-account tokens)."""
    pki.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca_name = _name("llmfleet-test-ca")
    ca = _certificate(ca_name, ca_key, None)
    (pki / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    loopback = [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    in_cluster = [x509.IPAddress(ipaddress.ip_address("10.0.0.1"))] + [
        x509.DNSName(n) for n in ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc")
    ]
    for stem, subject, usage, names in (
        ("apiserver", _name("kube-apiserver"), [ExtendedKeyUsageOID.SERVER_AUTH], loopback + in_cluster),
        ("admin", _name("admin", "system:masters"), [ExtendedKeyUsageOID.CLIENT_AUTH], []),
        ("kwok", _name("kwok"), [ExtendedKeyUsageOID.SERVER_AUTH], loopback),
    ):
        key = _key()
        _write_key(pki / f"{stem}.key", key)
        certificate = _certificate(subject, key, (ca_name, ca_key), usage, names)
        (pki / f"{stem}.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_key(pki / "sa.key", sa_key)
    (pki / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def write_kubeconfig(path: Path, url: str, pki: Path, context: str = "llmfleet-test") -> None:
    """A kubeconfig whose one context is the admin at `url`, with the CA and the client pair inline."""

    def inline(name: str) -> str:
        return base64.b64encode((pki / name).read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": url, "certificate-authority-data": inline("ca.crt")}}],
        "users": [
            {
                "name": f"{context}-admin",
                "user": {"client-certificate-data": inline("admin.crt"), "client-key-data": inline("admin.key")},
            }
        ],
        "contexts": [{"name": context, "context": {"cluster": context, "user": f"{context}-admin"}}],
        "current-context": context,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)


def admin_ssl_context(pki: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return context


# --- processes -----------------------------------------------------------------------------------


def _start(stack: contextlib.ExitStack, cluster: Cluster, name: str, argv: list[str],
           path: Sequence[Path] = ()) -> subprocess.Popen:  # fmt: skip
    """Start `argv` in a session of its own, logging to <name>.log; stopped (and waited for) when the
    stack unwinds, so the last started is the first stopped. `path`: directories before its PATH."""
    log = cluster.workdir / f"{name}.log"
    env = {"PATH": os.pathsep.join([*map(str, path), "/usr/bin", "/bin"]),
           "HOME": str(cluster.workdir)}  # no KUBECONFIG or proxy of the runner's  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                cwd=cluster.workdir)  # fmt: skip
    stack.callback(_stop, cluster, name, proc)
    cluster.pids[name] = proc.pid
    (cluster.workdir / f"{name}.pid").write_text(str(proc.pid))  # for a caller whose start failed
    return proc


def _stop(cluster: Cluster, name: str, proc: subprocess.Popen) -> None:
    stop_process(proc, STOP_GRACE)  # SIGTERM its session, SIGKILL after the grace, then wait for it
    cluster.stopped.append(name)


def _wait_until(cluster: Cluster, name: str, proc: subprocess.Popen, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + START_DEADLINE
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{cluster.log(name)}")
        with contextlib.suppress(httpx.HTTPError, OSError):
            if ready():
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} not ready within {START_DEADLINE:.0f} s:\n{cluster.log(name)}")
        time.sleep(0.1)


def _kwok_config(stages: Path, forwards: Sequence[PortForward], execs: Sequence[LocalExec] = ()) -> str:
    documents = [stages.read_text()]
    if execs:
        documents.append(
            yaml.safe_dump(
                {
                    "apiVersion": "kwok.x-k8s.io/v1alpha1",
                    "kind": "ClusterExec",
                    "metadata": {"name": "llmfleet-test"},
                    "spec": {
                        "execs": [
                            {
                                "containers": list(e.containers),
                                "local": {
                                    "workDir": str(e.work_dir),
                                    "envs": [{"name": k, "value": v} for k, v in e.envs],
                                },
                            }
                            for e in execs
                        ]
                    },
                },
                sort_keys=False,
            )
        )
    if forwards:
        documents.append(
            yaml.safe_dump(
                {
                    "apiVersion": "kwok.x-k8s.io/v1alpha1",
                    "kind": "ClusterPortForward",
                    "metadata": {"name": "llmfleet-test"},
                    "spec": {
                        "forwards": [
                            {"ports": [f.pod_port], "target": {"port": f.target_port, "address": f.target_address}}
                            for f in forwards
                        ]
                    },
                },
                sort_keys=False,
            )
        )
    return "---\n".join(documents)


def node_ready(node: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node.get("status", {}).get("conditions", []))


@contextlib.contextmanager
def running_cluster(
    bin_dir: Path,
    workdir: Path,
    pools: Sequence[GpuPool] = (GpuPool("gpu-a"),),
    forwards: Sequence[PortForward] = (),
    execs: Sequence[LocalExec] = (),
) -> Iterator[Cluster]:
    """A control plane on free loopback ports with `pools`' nodes Ready and schedulable and the
    `default` ServiceAccount made, or a RuntimeError with the failing process's log tail; every process stopped
    and waited for on exit, in the reverse of the start order."""
    workdir.mkdir(parents=True, exist_ok=True)
    pki = workdir / "pki"
    write_pki(pki)
    etcd_port, peer_port, metrics_port, api_port, kwok_port = (free_port() for _ in range(5))
    url = f"https://127.0.0.1:{api_port}"
    kubeconfig = workdir / "kubeconfig"
    write_kubeconfig(kubeconfig, url, pki)
    cluster = Cluster(url, kubeconfig, workdir, admin_ssl_context(pki))
    etcd_url = f"http://127.0.0.1:{etcd_port}"
    peer_url = f"http://127.0.0.1:{peer_port}"
    kubeconfig_flags = [f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
                        f"--authorization-kubeconfig={kubeconfig}"]  # fmt: skip
    quiet = ["--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0", "--profiling=false"]
    kwok_config = workdir / "kwok.yaml"
    kwok_config.write_text(_kwok_config(bin_dir / "kwok-stages.yaml", forwards, execs))

    with contextlib.ExitStack() as stack:
        etcd = _start(stack, cluster, "etcd", [
            str(bin_dir / "etcd"), "--name=r1", f"--data-dir={workdir / 'etcd'}",
            f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=r1={peer_url}", f"--listen-metrics-urls=http://127.0.0.1:{metrics_port}",
            "--unsafe-no-fsync",
        ])  # fmt: skip
        _wait_until(cluster, "etcd", etcd, lambda: httpx.get(f"{etcd_url}/health", timeout=1).status_code == 200)

        apiserver = _start(stack, cluster, "kube-apiserver", [
            str(bin_dir / "kube-apiserver"), f"--etcd-servers={etcd_url}", "--bind-address=127.0.0.1",
            f"--secure-port={api_port}", f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}", f"--client-ca-file={pki / 'ca.crt'}",
            "--authorization-mode=Node,RBAC", "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}", f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--allow-privileged=true",
            # port-forward dials the node's InternalIP (kwok's), as a fake node's name resolves nowhere
            "--kubelet-preferred-address-types=InternalIP", f"--kubelet-client-certificate={pki / 'admin.crt'}",
            f"--kubelet-client-key={pki / 'admin.key'}", "--profiling=false",
        ])  # fmt: skip

        def api_ready() -> bool:
            with cluster.client(timeout=2) as client:
                return client.get("/readyz").status_code == 200

        _wait_until(cluster, "kube-apiserver", apiserver, api_ready)

        controllers = _start(stack, cluster, "kube-controller-manager", [
            str(bin_dir / "kube-controller-manager"), *kubeconfig_flags, *quiet, f"--root-ca-file={pki / 'ca.crt'}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
        ])  # fmt: skip
        scheduler = _start(
            stack, cluster, "kube-scheduler", [str(bin_dir / "kube-scheduler"), *kubeconfig_flags, *quiet]
        )
        kwok = _start(stack, cluster, "kwok", [
            str(bin_dir / "kwok"), f"--kubeconfig={kubeconfig}", f"--config={kwok_config}",
            "--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--cidr={POD_CIDR}", "--node-ip=127.0.0.1", f"--node-port={kwok_port}",
            f"--server-address=127.0.0.1:{kwok_port}", f"--tls-cert-file={pki / 'kwok.crt'}",
            f"--tls-private-key-file={pki / 'kwok.key'}",
        ], path=[p for e in execs for p in e.path])  # fmt: skip

        def default_service_account() -> bool:
            with cluster.client(timeout=2) as client:
                return client.get("/api/v1/namespaces/default/serviceaccounts/default").status_code == 200

        # The controller manager makes it; pods cannot be created in `default` before it exists.
        _wait_until(cluster, "kube-controller-manager", controllers, default_service_account)
        for pool in pools:
            for node in pool.manifests():
                cluster.create("/api/v1/nodes", node)
        declared = {node["metadata"]["name"]: node["spec"]["taints"] for pool in pools for node in pool.manifests()}

        def nodes_schedulable() -> bool:
            # Ready, and untainted by the node lifecycle controller: it taints a new node
            # `node.kubernetes.io/not-ready` until it sees it Ready, and the scheduler honours that.
            listed = {n["metadata"]["name"]: n for n in cluster.get("/api/v1/nodes")["items"]}
            return all(
                name in listed and node_ready(listed[name]) and (listed[name]["spec"].get("taints") or []) == taints
                for name, taints in declared.items()
            )

        _wait_until(cluster, "kwok", kwok, nodes_schedulable)
        if scheduler.poll() is not None:
            raise RuntimeError(f"kube-scheduler exited with {scheduler.returncode}:\n{cluster.log('kube-scheduler')}")
        yield cluster


def pid_alive(pid: int) -> bool:
    """Whether `pid`, or any process of the session it led, still exists (a zombie counts)."""
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


def events_for(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    """The core events about object `name` in `namespace`."""
    selector = f"involvedObject.name={name}"
    return cluster.get(f"/api/v1/namespaces/{namespace}/events", fieldSelector=selector)["items"]


def dumps(value: Any) -> str:
    return json.dumps(value, indent=1)[:3000]
