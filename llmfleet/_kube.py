"""Reaching a Kubernetes cluster from pure Python, as kubectl does: a kubeconfig's named context, the
API server's JSON, and `kubectl port-forward` to a Service through the API server.

    access = load_kubeconfig(None, "prod")            # $KUBECONFIG's first entry, else ~/.kube/config
    with forwarded(access, "llm", "gateway", 4000) as url:   # "http://127.0.0.1:<free port>"
        httpx.get(f"{url}/health/liveliness")

`load_kubeconfig` reads one file and the context it is told (never `current-context`: a stack names
its context, so the ambient one is never used by accident). It supports what a kubeconfig holds
inline or by path: the cluster's `certificate-authority(-data)` (trusted alone, not beside the
system's roots), `insecure-skip-tls-verify`, `tls-server-name` and `proxy-url` (else HTTPS_PROXY
and NO_PROXY, as kubectl); the user's `client-certificate(-data)` / `client-key(-data)`, `token`
or `tokenFile`. Relative paths are read from the kubeconfig's folder, as kubectl does. The client key
is loaded into the SSL context through an in-memory file (`memfd`, or where there is none a 0600
temporary file deleted at once): nothing holding it outlives the call. `exec` and `auth-provider`
users (cloud plugins such as `aws eks get-token`, `gke-gcloud-auth-plugin`, `kubelogin`) are
refused with what to use instead: llmfleet runs no plugin.

`get_json(access, path)` GETs from the API server; `access.httpx_options()` gives the same
settings to an `httpx.Client` or `httpx.AsyncClient`. `ready_pod` finds a Ready pod behind a
Service, `deployment_ready_pod` one of a Deployment (NoReadyPod when there is none), `target_port`
the pod port a Service port sends to (a number, or a named container port).

`exec_in_pod(access, namespace, pod, container, argv, timeout)` runs a command in a pod as
`kubectl exec` does (the `exec` subresource's websocket, `v4.channel.k8s.io`) and returns its
`ExecResult(exit_code, stdout, stderr)`; it needs `get` and `create` on `pods/exec` (Kubernetes
1.37 checks both for an exec over a websocket).

`forwarded(access, namespace, service, port)` listens on a free loopback port in a background
thread. Each accepted connection opens its own websocket to the pod's `portforward` subresource
(subprotocol `v4.channel.k8s.io`: channel 0 carries data, channel 1 errors, and the first frame of
each carries the port, little-endian) and shuttles bytes both ways until either side closes, so
HTTP keep-alive and concurrent connections work as through kubectl. Text on the error channel
closes that connection and is kept in the yielded URL's `errors`, for the caller's message. On
exit the listener is closed, every connection is closed and every thread joined, within
`CLOSE_TIMEOUT` seconds (a websocket still opening then is a daemon thread that ends by its
`OPEN_ATTEMPT_TIMEOUT` at the latest).

Every failure is a `KubeError` (an `LlmfleetError`) with a one-line message naming the kubeconfig
file and context, or the namespace and object, and what to do. No message carries a token or key.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import select
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from ._errors import LlmfleetError

PORT_FORWARD_PROTOCOL = "v4.channel.k8s.io"
DATA_CHANNEL, ERROR_CHANNEL = 0, 1
OPEN_ATTEMPTS, OPEN_ATTEMPT_TIMEOUT = 3, 4.0  # tries to open one port-forward websocket, seconds each
OPEN_TIMEOUT = 10.0  # seconds from the websocket's opening to both its channels' first frames
CLOSE_TIMEOUT = 5.0  # seconds for `forwarded` to close every connection and join every thread
REQUEST_TIMEOUT = 10.0  # seconds per API request
CHUNK = 64 * 1024
MAX_FRAME = 16 * 1024 * 1024


class KubeError(LlmfleetError):
    """A cluster could not be reached or lacks what was asked for; the message says which and why."""


class NotFound(KubeError):
    """The API server answered 404: the object asked for does not exist."""


class NoReadyPod(KubeError):
    """The workload has no pod that is Running and Ready (none at all, none ready, or no workload)."""


@dataclass(frozen=True)
class KubeAccess:
    """What it takes to talk to one API server: from `load_kubeconfig`."""

    server: str  # https://host:port[/path], no trailing slash
    ssl_context: ssl.SSLContext | None = field(repr=False)  # None for an http:// server
    token: str | None = field(default=None, repr=False)
    tls_server_name: str | None = None
    source: str = ""  # "<kubeconfig file>, context <name>", for messages
    namespace: str | None = None  # the context's namespace, if it names one
    proxy_url: str | None = field(default=None, repr=False)  # the cluster's `proxy-url`; else the environment's

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def httpx_options(self, timeout: float = REQUEST_TIMEOUT) -> dict[str, Any]:
        """Keyword arguments for `httpx.Client(...)` or `httpx.AsyncClient(...)` to this API server."""
        options: dict[str, Any] = {"base_url": self.server, "headers": self.headers(), "timeout": timeout}
        if self.ssl_context is not None:
            options["verify"] = self.ssl_context
        if self.proxy_url:
            options["proxy"] = self.proxy_url
        return options

    def request_extensions(self) -> dict[str, Any]:
        """Per-request httpx extensions: the TLS server name when the kubeconfig sets one."""
        return {"sni_hostname": self.tls_server_name} if self.tls_server_name else {}


# --- the kubeconfig ------------------------------------------------------------------------------


def kubeconfig_path(path: str | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """`path`, else the first entry of $KUBECONFIG, else ~/.kube/config."""
    if path:
        return Path(path).expanduser()
    environ = os.environ if environ is None else environ
    entries = [entry for entry in environ.get("KUBECONFIG", "").split(os.pathsep) if entry]
    if entries:
        return Path(entries[0]).expanduser()
    return Path(environ.get("HOME") or Path.home()) / ".kube" / "config"


def load_kubeconfig(path: str | None, context: str) -> KubeAccess:
    """The API server, TLS settings and credentials of `context` in the kubeconfig at `path` (else
    $KUBECONFIG's first entry, else ~/.kube/config); a KubeError saying what is wrong otherwise."""
    file = kubeconfig_path(path)
    where = f"kubeconfig {file}"
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KubeError(f"{where}: no such file (looking for the context '{context}'); pass the kubeconfig's path "
                        "or set KUBECONFIG") from None  # fmt: skip
    except (OSError, UnicodeDecodeError) as exc:
        raise KubeError(f"{where}: cannot be read ({_reason(exc)})") from None
    config = _parse_yaml(text, where)
    at = f"{where}, context {context!r}"
    contexts = _named(config, "contexts", where)
    if context not in contexts:
        names = ", ".join(repr(name) for name in contexts) or "none"
        raise KubeError(f"{where}: no context {context!r} (it has: {names}); name one of those in the stack")
    entry = contexts[context]
    cluster_name, user_name = entry.get("cluster"), entry.get("user")
    clusters = _named(config, "clusters", where)
    if not cluster_name or cluster_name not in clusters:
        raise KubeError(f"{at}: its cluster {cluster_name!r} is not in the file's clusters")
    cluster = clusters[cluster_name]
    users = _named(config, "users", where)
    if user_name and user_name not in users:
        raise KubeError(f"{at}: its user {user_name!r} is not in the file's users")
    user = users.get(user_name, {}) if user_name else {}
    base = file.parent
    server = cluster.get("server")
    if not isinstance(server, str) or urlsplit(server).scheme not in ("https", "http") or not urlsplit(server).hostname:
        raise KubeError(f"{at}: cluster {cluster_name!r} has no https:// server URL")
    _refuse_plugins(user, at)
    token = _token(user, base, at)
    namespace = entry.get("namespace") if isinstance(entry.get("namespace"), str) else None
    source = f"{file}, context {context!r}"
    proxy_url = cluster.get("proxy-url") or None
    if proxy_url is not None and urlsplit(str(proxy_url)).scheme not in ("http", "https"):
        raise KubeError(f"{at}: cluster {cluster_name!r} has a proxy-url that is not http:// or https://")
    if urlsplit(server).scheme == "http":
        return KubeAccess(server.rstrip("/"), None, token, None, source, namespace, proxy_url)
    ssl_context = _ssl_context(cluster, user, base, at)
    tls_server_name = cluster.get("tls-server-name") or None
    return KubeAccess(server.rstrip("/"), ssl_context, token, tls_server_name, source, namespace, proxy_url)


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or exc.__class__.__name__


def _parse_yaml(text: str, where: str) -> dict[str, Any]:
    import yaml  # loaded only here: `import llmfleet` stays light

    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise KubeError(f"{where}: not valid YAML{line}") from None
    if not isinstance(config, dict):
        raise KubeError(f"{where}: not a kubeconfig (expected a mapping with clusters, users and contexts)")
    return config


def _named(config: dict[str, Any], key: str, where: str) -> dict[str, dict[str, Any]]:
    """`clusters`/`users`/`contexts` as name -> its inner mapping (`cluster`, `user`, `context`)."""
    items = config.get(key) or []
    inner = key[:-1]
    if not isinstance(items, list):
        raise KubeError(f"{where}: `{key}` is not a list")
    named: dict[str, dict[str, Any]] = {}
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            value = item.get(inner)
            named[item["name"]] = value if isinstance(value, dict) else {}
    return named


def _refuse_plugins(user: dict[str, Any], at: str) -> None:
    instead = ("llmfleet runs no credential plugin: give this context a user with a `token` (for example "
               "from `kubectl create token <service-account> -n <namespace>`) or a client certificate")  # fmt: skip
    if isinstance(user.get("exec"), dict):
        command = user["exec"].get("command") or "?"
        raise KubeError(f"{at}: its user authenticates with an exec plugin ({command}); {instead}")
    if isinstance(user.get("auth-provider"), dict):
        provider = user["auth-provider"].get("name") or "?"
        raise KubeError(f"{at}: its user authenticates with the {provider!r} auth-provider; {instead}")
    if user.get("username") or user.get("password"):
        raise KubeError(f"{at}: its user has a username and password, which llmfleet does not send; {instead}")


def _read(base: Path, name: str, value: Any, at: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise KubeError(f"{at}: `{name}` is not a file path")
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base / path
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KubeError(f"{at}: `{name}` {path}: {_reason(exc)}") from None


def _material(section: dict[str, Any], key: str, base: Path, at: str) -> bytes | None:
    """`<key>-data` (base64) or the file `<key>` names; None when neither is set."""
    data = section.get(f"{key}-data")
    if data:
        try:
            return base64.b64decode(str(data), validate=True)
        except (binascii.Error, ValueError):
            raise KubeError(f"{at}: `{key}-data` is not base64") from None
    if section.get(key):
        return _read(base, key, section[key], at)
    return None


def _token(user: dict[str, Any], base: Path, at: str) -> str | None:
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = _read(base, "tokenFile", user["tokenFile"], at).decode("utf-8", "replace").strip()
        if not token:
            raise KubeError(f"{at}: `tokenFile` {user['tokenFile']} is empty")
    if not token:
        return None
    token = str(token).strip()
    if not (token.isascii() and token.isprintable()):
        raise KubeError(f"{at}: the user's token holds a character an HTTP header cannot carry")
    return token


def _ssl_context(cluster: dict[str, Any], user: dict[str, Any], base: Path, at: str) -> ssl.SSLContext:
    skip_verify = cluster.get("insecure-skip-tls-verify") is True
    authority = None if skip_verify else _material(cluster, "certificate-authority", base, at)
    if authority is None:  # the system's roots, as kubectl trusts without a certificate-authority
        context = ssl.create_default_context()
    else:  # that authority alone, as kubectl trusts it: not the system's roots beside it
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            context.load_verify_locations(cadata=authority.decode("ascii", "replace"))
        except (ssl.SSLError, ValueError):
            raise KubeError(f"{at}: the cluster's certificate-authority is not a PEM certificate") from None
    if skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    certificate = _material(user, "client-certificate", base, at)
    key = _material(user, "client-key", base, at)
    if (certificate is None) != (key is None):
        have, lack = ("client-certificate", "client-key") if key is None else ("client-key", "client-certificate")
        raise KubeError(f"{at}: its user has a {have} but no {lack}")
    if certificate is not None and key is not None:
        _load_client_pair(context, certificate, key, at)
    return context


def _load_client_pair(context: ssl.SSLContext, certificate: bytes, key: bytes, at: str) -> None:
    """`load_cert_chain` reads files only: hand it an anonymous in-memory file (Linux `memfd`), or
    a private temporary file removed before this returns."""
    pem = certificate.rstrip(b"\n") + b"\n" + key
    try:
        if hasattr(os, "memfd_create"):
            fd = os.memfd_create("llmfleet-kube-client", 0)
            try:
                os.write(fd, pem)
                context.load_cert_chain(f"/proc/self/fd/{fd}")
            finally:
                os.close(fd)
        else:  # pragma: no cover - not Linux
            fd, name = tempfile.mkstemp(prefix="llmfleet-kube-")
            try:
                os.write(fd, pem)
                os.close(fd)
                context.load_cert_chain(name)
            finally:
                os.unlink(name)
    except ssl.SSLError:
        raise KubeError(f"{at}: the user's client certificate and key are not a matching PEM pair") from None


# --- the API server ------------------------------------------------------------------------------


def api_error(access: KubeAccess, what: str, exc: Exception) -> KubeError:
    """A KubeError for an API request that failed to connect or timed out."""
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return KubeError(f"{what}: the API server {access.server} did not answer in time ({access.source})")
    reason = str(exc) or type(exc).__name__
    return KubeError(f"{what}: cannot reach the API server {access.server} ({reason}; {access.source})")


def get_json(access: KubeAccess, path: str, params: Mapping[str, str] | None = None, what: str = "") -> Any:
    """The JSON the API server answers to GET `path`; a KubeError naming `what` (default: the path)
    on any failure. A 404 is a KubeError too: callers say which object was missing."""
    import httpx

    what = what or path
    try:
        with httpx.Client(**access.httpx_options()) as client:
            response = client.get(path, params=params, extensions=access.request_extensions())
    except httpx.HTTPError as exc:
        raise api_error(access, what, exc) from None
    raise_for_answer(access, response.status_code, response.content, what)
    try:
        return response.json()
    except ValueError:
        raise KubeError(f"{what}: the API server {access.server} answered something other than JSON") from None


def raise_for_answer(access: KubeAccess, status: int, body: bytes, what: str) -> None:
    """A KubeError for an API server's error answer, with the Status message it gave."""
    if status < 400:
        return
    import json

    message = ""
    with contextlib.suppress(ValueError, AttributeError):
        message = str(json.loads(body).get("message") or "")
    detail = f": {message}" if message else ""
    if status == 404:
        raise NotFound(f"{what}: not found{detail}")
    if status == 401:
        raise KubeError(f"{what}: the API server refused the credentials of {access.source} (401){detail}")
    if status == 403:
        raise KubeError(f"{what}: forbidden for the user of {access.source} (403){detail}")
    raise KubeError(f"{what}: the API server answered {status}{detail}")


def _service(access: KubeAccess, namespace: str, service: str) -> dict[str, Any]:
    path = f"/api/v1/namespaces/{quote(namespace, safe='')}/services/{quote(service, safe='')}"
    return get_json(access, path, what=f"service {namespace}/{service}")


def pod_ready(pod: dict[str, Any]) -> bool:
    """Running, Ready and not being deleted."""
    status = pod.get("status") or {}
    if pod.get("metadata", {}).get("deletionTimestamp") or status.get("phase") != "Running":
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def pick_ready_pod(pods: list[dict[str, Any]], what: str) -> dict[str, Any]:
    """The newest ready pod of `pods` (then by name, so the choice is stable), or a KubeError
    saying what was seen. kubectl takes the oldest; the newest is the one most likely to run the
    last applied config, which is what drift checks."""
    if not pods:
        raise NoReadyPod(f"{what}: no pods match its selector; is the workload deployed and scaled above 0?")
    ready = [pod for pod in pods if pod_ready(pod)]
    if not ready:
        seen = ", ".join(f"{_name_of(p)} {_state(p)}" for p in sorted(pods, key=_name_of)[:5])
        more = f" and {len(pods) - 5} more" if len(pods) > 5 else ""
        raise NoReadyPod(f"{what}: none of its {len(pods)} pods is ready ({seen}{more})")
    ready.sort(key=_name_of)
    ready.sort(key=lambda p: p.get("metadata", {}).get("creationTimestamp") or "", reverse=True)
    return ready[0]


def _name_of(pod: dict[str, Any]) -> str:
    return str(pod.get("metadata", {}).get("name", "?"))


def _state(pod: dict[str, Any]) -> str:
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return "terminating"
    phase = (pod.get("status") or {}).get("phase") or "Unknown"
    return phase if phase != "Running" else "Running, not Ready"


def _ready_pod_object(access: KubeAccess, namespace: str, service: str) -> tuple[dict[str, Any], dict[str, Any]]:
    what = f"service {namespace}/{service}"
    spec = _service(access, namespace, service).get("spec") or {}
    selector = spec.get("selector") or {}
    if not selector:
        raise KubeError(f"{what}: has no selector, so no pod to forward to")
    labels = ",".join(f"{key}={value}" for key, value in sorted(selector.items()))
    pods = get_json(access, f"/api/v1/namespaces/{quote(namespace, safe='')}/pods", {"labelSelector": labels},
                    what=f"pods of {what}")  # fmt: skip
    return spec, pick_ready_pod(pods.get("items") or [], f"{what} (selector {labels})")


def ready_pod(access: KubeAccess, namespace: str, service: str) -> str:
    """The name of a pod behind `service` that is Running, Ready and not terminating; a KubeError
    naming the namespace/service and what was seen (no such service, no pods, none ready)."""
    return _name_of(_ready_pod_object(access, namespace, service)[1])


def deployment_ready_pod(access: KubeAccess, namespace: str, deployment: str) -> str:
    """The name of the newest Ready pod of `deployment` (the pods its selector matches); NoReadyPod
    when the Deployment does not exist or has no such pod, naming the namespace/deployment."""
    what = f"deployment {namespace}/{deployment}"
    base = f"/apis/apps/v1/namespaces/{quote(namespace, safe='')}/deployments/{quote(deployment, safe='')}"
    try:
        spec = get_json(access, base, what=what).get("spec") or {}
    except NotFound:
        raise NoReadyPod(f"{what}: not found; is it deployed?") from None
    match = (spec.get("selector") or {}).get("matchLabels") or {}
    if not match:
        raise KubeError(f"{what}: its selector has no matchLabels, so no pod to find")
    labels = ",".join(f"{key}={value}" for key, value in sorted(match.items()))
    pods = get_json(access, f"/api/v1/namespaces/{quote(namespace, safe='')}/pods", {"labelSelector": labels},
                    what=f"pods of {what}")  # fmt: skip
    return _name_of(pick_ready_pod(pods.get("items") or [], f"{what} (selector {labels})"))


def target_port(spec: dict[str, Any], pod: dict[str, Any], port: int, what: str) -> int:
    """The pod port that Service port `port` sends to, as kubectl resolves it: the Service port's
    `targetPort` as a number, or the container port of that name (the port itself when unset)."""
    ports = spec.get("ports") or []
    entry = next((p for p in ports if p.get("port") == port), None)
    if entry is None:
        have = ", ".join(str(p.get("port")) for p in ports) or "none"
        raise KubeError(f"{what}: has no port {port} (its ports: {have})")
    target = entry.get("targetPort", port)
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    for container in (pod.get("spec") or {}).get("containers") or []:
        for container_port in container.get("ports") or []:
            if container_port.get("name") == target:
                return int(container_port["containerPort"])
    pod_name = _name_of(pod)
    raise KubeError(f"{what}: port {port} targets the port named {target!r}, which pod {pod_name} does not declare")


# --- port-forward --------------------------------------------------------------------------------


class ForwardedUrl(str):
    """`http://127.0.0.1:<port>`, with `errors`: what the API server or the node said on the
    error channel of any forwarded connection, or why a connection's websocket did not open."""

    errors: list[str]
    pod: str
    pod_port: int


@contextlib.contextmanager
def forwarded(access: KubeAccess, namespace: str, service: str, port: int) -> Iterator[ForwardedUrl]:
    """`kubectl port-forward service/<service> <local>:<port> -n <namespace>`: a loopback URL whose
    connections reach Service port `port`'s target port on one ready pod behind it."""
    what = f"service {namespace}/{service}"
    spec, pod = _ready_pod_object(access, namespace, service)
    forward = _Forward(access, namespace, _name_of(pod), target_port(spec, pod, port, what))
    forward.start()
    try:
        yield forward.url
    finally:
        forward.stop()


class _Forward:
    def __init__(self, access: KubeAccess, namespace: str, pod: str, pod_port: int) -> None:
        self.access, self.pod, self.pod_port = access, pod, pod_port
        ws_base = "wss" + access.server[5:] if access.server.startswith("https") else "ws" + access.server[4:]
        self.ws_url = (f"{ws_base}/api/v1/namespaces/{quote(namespace, safe='')}/pods/{quote(pod, safe='')}"
                       f"/portforward?ports={pod_port}")  # fmt: skip
        self.what = f"port-forward to pod {namespace}/{pod} port {pod_port}"
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.url = ForwardedUrl(f"http://127.0.0.1:{self.listener.getsockname()[1]}")
        self.url.errors, self.url.pod, self.url.pod_port = [], pod, pod_port
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.connections: list[_Connection] = []

    def start(self) -> None:
        self._spawn(self._accept, "accept")

    def _spawn(self, target: Any, name: str, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=f"llmfleet-forward-{name}", daemon=True)
        with self.lock:  # dropping the finished ones (started: an ident; no longer alive)
            self.threads = [t for t in self.threads if t.ident is None or t.is_alive()] + [thread]
            self.connections = [c for c in self.connections if not c.closed.is_set()]
        thread.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # the listener was closed
            client.settimeout(None)
            connection = _Connection(self, client)
            with self.lock:
                if self.stopping.is_set():
                    client.close()
                    return
                self.connections.append(connection)
            self._spawn(connection.run, "conn")

    def error(self, text: str) -> None:
        with self.lock:
            self.url.errors.append(f"{self.what}: {text}")

    def stop(self) -> None:
        self.stopping.set()
        self.listener.close()
        with self.lock:
            connections = list(self.connections)
        for connection in connections:
            connection.close()
        deadline = time.monotonic() + CLOSE_TIMEOUT
        while True:  # a connection thread may start its pump thread while others are joined
            with self.lock:
                alive = [t for t in self.threads if t.is_alive()]
            if not alive or time.monotonic() > deadline:
                break
            alive[0].join(max(0.0, deadline - time.monotonic()))


class _Connection:
    """One accepted local connection and its own port-forward websocket."""

    def __init__(self, forward: _Forward, client: socket.socket) -> None:
        self.forward, self.client = forward, client
        self.ws: Any = None
        self.channels_open = threading.Event()  # both channels' port frames seen: data may go out
        self.closed = threading.Event()
        self.lock = threading.Lock()

    def run(self) -> None:
        try:
            self.ws = self._open()
            if self.ws is None:
                return
            if self.closed.is_set():  # stop() ran while the websocket opened
                return
            self.forward._spawn(self._pump_to_pod, "send")
            self._pump_to_client()
        finally:
            self.close()

    def _open(self) -> Any:
        """The websocket, or None with the reason kept. A handshake that gets no answer, or whose
        connection drops, is tried again (OPEN_ATTEMPTS in all, OPEN_ATTEMPT_TIMEOUT each): nothing
        has been sent yet, and kwok 0.8.0 drops a few handshakes in a hundred when several open at
        once. An HTTP answer (401, 403, 404...) or a refused connection is not retried."""
        from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatus, WebSocketException
        from websockets.sync.client import connect

        forward, access = self.forward, self.forward.access
        for attempt in range(1, OPEN_ATTEMPTS + 1):
            try:
                ws = connect(forward.ws_url, ssl=access.ssl_context if forward.ws_url.startswith("wss") else None,
                             server_hostname=access.tls_server_name, subprotocols=[PORT_FORWARD_PROTOCOL],
                             additional_headers=access.headers(), compression=None,
                             open_timeout=OPEN_ATTEMPT_TIMEOUT, close_timeout=1, ping_interval=None,
                             max_size=MAX_FRAME, proxy=access.proxy_url or True)  # fmt: skip
                break
            except InvalidStatus as exc:
                response = exc.response
                try:
                    raise_for_answer(access, response.status_code, response.body or b"", forward.what)
                    forward.error(f"the API server answered {response.status_code}")
                except KubeError as error:
                    forward.error(str(error).removeprefix(f"{forward.what}: "))
                return None
            except (TimeoutError, ConnectionClosed, InvalidMessage) as exc:
                if attempt == OPEN_ATTEMPTS or self.closed.is_set():
                    forward.error(f"cannot open the websocket to {access.server} in {attempt} tries ({exc})")
                    return None
            except (OSError, WebSocketException) as exc:
                forward.error(f"cannot open the websocket to {access.server} ({_reason(exc)}: {exc})")
                return None
        with self.lock:
            if self.closed.is_set():
                ws.close()
                return None
            self.ws = ws
        return ws

    def _pump_to_client(self) -> None:
        """Websocket -> local socket; the error channel's text closes the connection."""
        from websockets.exceptions import ConnectionClosed

        opened: set[int] = set()
        errors = b""
        try:
            for frame in self.ws:
                if not isinstance(frame, bytes) or not frame:
                    continue
                channel, payload = frame[0], frame[1:]
                if channel not in opened:  # the first frame of each channel: the port, little-endian
                    opened.add(channel)
                    payload = payload[2:]
                    if opened >= {DATA_CHANNEL, ERROR_CHANNEL}:
                        self.channels_open.set()
                if channel == DATA_CHANNEL and payload:
                    self.client.sendall(payload)
                elif channel == ERROR_CHANNEL and payload:
                    errors += payload
                    break
        except (ConnectionClosed, OSError):
            pass
        if errors:
            self.forward.error(errors.decode("utf-8", "replace").strip())

    def _pump_to_pod(self) -> None:
        """Local socket -> websocket, channel 0; the local side closing closes the websocket."""
        from websockets.exceptions import ConnectionClosed

        deadline = time.monotonic() + OPEN_TIMEOUT
        while not self.channels_open.wait(0.2):
            if self.closed.is_set():
                return
            if time.monotonic() > deadline:
                self.forward.error(f"its channels did not open within {OPEN_TIMEOUT:.0f} s")
                self.close()
                return
        try:
            while not self.closed.is_set():
                readable, _, _ = select.select([self.client], [], [], 0.2)
                if not readable:
                    continue
                data = self.client.recv(CHUNK)
                if not data:
                    break
                self.ws.send(bytes([DATA_CHANNEL]) + data)
        except (ConnectionClosed, OSError, ValueError):
            pass
        finally:
            self.close()

    def close(self) -> None:
        with self.lock:
            if self.closed.is_set():
                return
            self.closed.set()
            ws = self.ws
        with contextlib.suppress(OSError):
            self.client.shutdown(socket.SHUT_RDWR)
        self.client.close()
        if ws is not None:
            with contextlib.suppress(Exception):
                ws.close()


# --- exec ----------------------------------------------------------------------------------------

EXEC_PROTOCOL = "v4.channel.k8s.io"
STDOUT_CHANNEL, STDERR_CHANNEL, STATUS_CHANNEL = 1, 2, 3
MAX_OUTPUT = 4 * 1024 * 1024  # bytes kept of each of stdout and stderr: the last ones


@dataclass(frozen=True)
class ExecResult:
    """What a command run by `exec_in_pod` gave: its exit code and its output (decoded as UTF-8)."""

    exit_code: int
    stdout: str
    stderr: str


def exec_in_pod(
    access: KubeAccess, namespace: str, pod: str, container: str, argv: Sequence[str], timeout: float
) -> ExecResult:
    """`kubectl exec <pod> -c <container> -n <namespace> -- <argv>`, without stdin or a terminal:
    the pod's `exec` subresource over a websocket (subprotocol `v4.channel.k8s.io`; each binary
    frame's first byte is its channel: 1 stdout, 2 stderr, 3 the Status that ends the command).
    The Status gives the exit code: `Success` is 0, and a `NonZeroExitCode` failure carries it in
    `details.causes[reason=ExitCode]`. Any other failure (no such container, a command that could
    not start, the node's own error) is a KubeError with the Status message and the end of what the
    command wrote to stderr, as is an API error
    (404, 403 without the `pods/exec` right, ...), a connection lost before the Status, or a
    command still running after `timeout` seconds (its websocket is then closed, which ends the
    exec for kubelets that stop a command whose client went away)."""
    from websockets.exceptions import ConnectionClosed

    if not argv:
        raise ValueError("exec_in_pod needs a command")
    what = f"exec of `{argv[0]}` in pod {namespace}/{pod} container {container}"
    ws_base = "wss" + access.server[5:] if access.server.startswith("https") else "ws" + access.server[4:]
    query = urlencode([("container", container), *(("command", arg) for arg in argv), ("stdout", "true"),
                       ("stderr", "true")])  # fmt: skip
    url = f"{ws_base}/api/v1/namespaces/{quote(namespace, safe='')}/pods/{quote(pod, safe='')}/exec?{query}"
    deadline = time.monotonic() + timeout
    ws = _open_exec(access, url, what)
    output = {STDOUT_CHANNEL: bytearray(), STDERR_CHANNEL: bytearray()}
    status = b""
    try:
        with ws:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise KubeError(f"{what}: still running after {timeout:.0f} s; its connection was closed")
                try:
                    frame = ws.recv(timeout=remaining)
                except TimeoutError:
                    continue
                except ConnectionClosed:
                    break
                if not isinstance(frame, bytes) or not frame:
                    continue
                channel, payload = frame[0], frame[1:]
                if channel in output:
                    kept = output[channel]
                    kept += payload
                    del kept[: max(0, len(kept) - MAX_OUTPUT)]
                elif channel == STATUS_CHANNEL:
                    status += payload
    except OSError as exc:
        raise KubeError(f"{what}: the connection to {access.server} failed ({_reason(exc)})") from None
    stdout, stderr = (output[c].decode("utf-8", "replace") for c in (STDOUT_CHANNEL, STDERR_CHANNEL))
    try:
        return ExecResult(exit_code_of(status, what), stdout, stderr)
    except KubeError as exc:
        if not stderr.strip():
            raise
        raise KubeError(f"{exc}; its stderr: {stderr.strip()[-500:]}") from None


def _open_exec(access: KubeAccess, url: str, what: str) -> Any:
    """The exec's websocket. A handshake that gets no answer, or whose connection drops, is tried
    again (OPEN_ATTEMPTS in all, OPEN_ATTEMPT_TIMEOUT each), as port-forward's is: kwok 0.8.0 drops
    a few handshakes when several open at once. A handshake answered after its attempt gave up may
    still start the command on the node, so a command can run twice: only idempotent commands belong
    here (all llmfleet runs are: `ollama list`, `pull`, `create`, `rm`, whose retry checks the list).
    An HTTP answer (401, 403, 404...) or a refused connection is not retried."""
    from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatus, WebSocketException
    from websockets.sync.client import connect

    for attempt in range(1, OPEN_ATTEMPTS + 1):
        try:
            return connect(url, ssl=access.ssl_context if url.startswith("wss") else None,
                           server_hostname=access.tls_server_name, subprotocols=[EXEC_PROTOCOL],
                           additional_headers=access.headers(), compression=None, open_timeout=OPEN_ATTEMPT_TIMEOUT,
                           close_timeout=1, ping_interval=None, max_size=MAX_FRAME,
                           proxy=access.proxy_url or True)  # fmt: skip
        except InvalidStatus as exc:
            response = exc.response
            raise_for_answer(access, response.status_code, response.body or b"", what)
            raise KubeError(f"{what}: the API server answered {response.status_code}") from None
        except (TimeoutError, ConnectionClosed, InvalidMessage) as exc:
            if attempt == OPEN_ATTEMPTS:
                raise KubeError(f"{what}: cannot open the websocket to {access.server} in {attempt} tries ({exc}; "
                                f"{access.source})") from None  # fmt: skip
        except (OSError, WebSocketException) as exc:
            raise KubeError(f"{what}: cannot open the websocket to {access.server} ({_reason(exc)}: {exc})") from None
    raise AssertionError("unreachable")  # pragma: no cover


def exit_code_of(status: bytes, what: str) -> int:
    """The exit code the exec's Status (channel 3) gives; a KubeError when it gives none."""
    import json

    if not status.strip():
        raise KubeError(f"{what}: the connection closed before the command's exit status came")
    try:
        answer = json.loads(status)
    except ValueError:
        raise KubeError(f"{what}: its status is not JSON: {status[:200].decode('utf-8', 'replace')}") from None
    if not isinstance(answer, dict):
        raise KubeError(f"{what}: its status is not a Status object")
    if answer.get("status") == "Success":
        return 0
    causes = (answer.get("details") or {}).get("causes") or []
    for cause in causes:
        if isinstance(cause, dict) and cause.get("reason") == "ExitCode":
            with contextlib.suppress(TypeError, ValueError):
                return int(cause.get("message"))
    message = str(answer.get("message") or answer.get("reason") or "no message").strip()
    raise KubeError(f"{what}: failed without an exit code: {message[-500:]}")
