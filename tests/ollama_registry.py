"""A model registry for the tests: the part of the OCI distribution protocol that Ollama 0.14.1's
`ollama push --insecure` and `ollama pull --insecure` speak (server/upload.go, server/download.go,
server/images.go), so the real Ollama pulls real models with no ollama.com to reach.

What Ollama sends, and what this answers (read from v0.14.1's source):
- push: `HEAD /v2/<ns>/<model>/blobs/<digest>` (200 = already there, skipped; 404 = upload it);
  `POST /v2/<ns>/<model>/blobs/uploads/` (with `?mount=<digest>&from=<repo>` for a layer of another
  model: 201 when this registry has the blob), answered 202 with an absolute `Location` to upload
  to (Ollama parses it as a URL of its own: a relative one has no host); `PATCH <location>` with
  `Content-Range: <first>-<last>` and the part's bytes, answered 202 with the next `Location`; then
  `PUT <location>?digest=<digest>&etag=...` with no body, which commits the blob (its sha256 is
  checked); last `PUT /v2/<ns>/<model>/manifests/<tag>`.
- pull: `GET /v2/<ns>/<model>/manifests/<tag>`; per blob `HEAD` (its `Content-Length` sizes the
  download) and a `GET` whose response must carry a `Location`: Ollama follows redirects on the
  registry's own host name, stops at the first to another host (ollama.com's CDN) and downloads
  from that `Location` in `Range` parts. A plain 200 without `Location` fails the pull with "http:
  no Location header in response" (ollama/ollama#7244, #9737: Docker's registry:2 on a filesystem
  store does that); with a single address to offer, this registry answers 200 with a `Location`
  naming the blob's own URL, and serves `Range` requests with 206.
- auth: only on a 401 (a bearer challenge); this registry asks for none.
- http: Ollama speaks https unless the request says `insecure`, which switches every registry
  request to http (`makeRequest`); this registry is plain http, so push and pull need --insecure.

Every request is recorded (`requests`), so a test can count the manifests pulled.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

NAME = r"(?P<name>[a-z0-9][\w.-]*(?:/[\w.-]+)*)"
BLOB = re.compile(rf"^/v2/{NAME}/blobs/(?P<digest>sha256:[0-9a-f]{{64}})$")
UPLOADS = re.compile(rf"^/v2/{NAME}/blobs/uploads/(?P<upload>[0-9a-f-]*)$")
MANIFEST = re.compile(rf"^/v2/{NAME}/manifests/(?P<reference>[\w.-]+)$")
MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


@dataclass
class Store:
    blobs: dict[str, bytes] = field(default_factory=dict)  # digest -> content
    manifests: dict[tuple[str, str], tuple[str, bytes]] = field(default_factory=dict)  # (repo, tag) -> (type, body)
    uploads: dict[str, bytearray] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path) as received
    lock: threading.Lock = field(default_factory=threading.Lock)

    def manifest_pulls(self, repo: str, tag: str) -> int:
        """How many times a manifest was fetched: one per `ollama pull` of that model."""
        path = f"/v2/{repo}/manifests/{tag}"
        with self.lock:
            return sum(1 for method, p in self.requests if method == "GET" and p == path)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # Go's client keeps connections: every answer has a Content-Length
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass  # the test reads `requests`, not stderr

    # --- plumbing ---

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
                content_type: str = "application/json") -> None:  # fmt: skip
        self.send_response(status)
        for key, value in {"Content-Type": content_type, "Docker-Distribution-Api-Version": "registry/2.0",
                           **(headers or {})}.items():  # fmt: skip
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str) -> None:
        self._answer(status, json.dumps({"errors": [{"code": code, "message": message}]}).encode())

    def _url(self, path: str) -> str:
        """An absolute URL on the address the client used: Ollama parses upload locations as URLs."""
        host, port = self.server.server_address[:2]
        return f"http://{self.headers.get('Host') or f'{host}:{port}'}{path}"

    def _route(self) -> None:
        store = self.server.store
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        with store.lock:
            store.requests.append((self.command, path))
        body = self._body() if self.command in ("POST", "PUT", "PATCH") else b""
        if path in ("/v2", "/v2/"):
            return self._answer(200, b"{}")
        if match := BLOB.match(path):
            return self._blob(store, match["digest"])
        if match := UPLOADS.match(path):
            return self._upload(store, match["name"], match["upload"], query, body)
        if match := MANIFEST.match(path):
            return self._manifest(store, match["name"], match["reference"], body)
        return self._error(404, "NAME_UNKNOWN", f"no route for {self.command} {path}")

    # --- the protocol ---

    def _blob(self, store: Store, digest: str) -> None:
        if self.command not in ("GET", "HEAD"):
            return self._error(405, "UNSUPPORTED", "blobs are read with GET and HEAD")
        with store.lock:
            data = store.blobs.get(digest)
        if data is None:
            return self._error(404, "BLOB_UNKNOWN", f"blob {digest} unknown")
        headers = {"Docker-Content-Digest": digest, "Accept-Ranges": "bytes", "Location": self._url(self.path)}
        wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if wanted:
            first = int(wanted[1])
            last = min(int(wanted[2]) if wanted[2] else len(data) - 1, len(data) - 1)
            headers["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
            return self._answer(206, data[first : last + 1], headers, "application/octet-stream")
        return self._answer(200, data, headers, "application/octet-stream")

    def _upload(self, store: Store, name: str, upload: str, query: dict[str, list[str]], body: bytes) -> None:
        if self.command == "POST" and not upload:
            mount = query.get("mount", [None])[0]
            with store.lock:
                if mount and mount in store.blobs:
                    return self._answer(201, headers={"Location": self._url(f"/v2/{name}/blobs/{mount}"),
                                                      "Docker-Content-Digest": mount})  # fmt: skip
                upload = str(uuid.uuid4())
                store.uploads[upload] = bytearray()
            location = self._url(f"/v2/{name}/blobs/uploads/{upload}")
            return self._answer(202, headers={"Location": location, "Docker-Upload-UUID": upload, "Range": "0-0"})
        with store.lock:
            data = store.uploads.get(upload)
            if data is None:
                return self._error(404, "BLOB_UPLOAD_UNKNOWN", f"upload {upload} unknown")
            if self.command == "PATCH":
                first = int(re.match(r"(\d+)", self.headers.get("Content-Range", "0")).group(1))
                data[first : first + len(body)] = body
                location = self._url(f"/v2/{name}/blobs/uploads/{upload}")
                return self._answer(202, headers={"Location": location, "Range": f"0-{len(data) - 1}"})
            if self.command == "PUT":
                data += body
                digest = query.get("digest", [""])[0]
                actual = "sha256:" + hashlib.sha256(data).hexdigest()
                if digest != actual:
                    return self._error(400, "DIGEST_INVALID", f"uploaded {actual}, declared {digest!r}")
                store.blobs[digest] = bytes(store.uploads.pop(upload))
                return self._answer(201, headers={"Location": self._url(f"/v2/{name}/blobs/{digest}"),
                                                  "Docker-Content-Digest": digest})  # fmt: skip
        return self._error(405, "UNSUPPORTED", f"{self.command} on an upload")

    def _manifest(self, store: Store, name: str, reference: str, body: bytes) -> None:
        if self.command == "PUT":
            content_type = self.headers.get("Content-Type") or MANIFEST_TYPE
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
            with store.lock:
                missing = [layer["digest"] for layer in _layers(body) if layer["digest"] not in store.blobs]
                if missing:
                    return self._error(400, "BLOB_UNKNOWN", f"manifest names blobs never pushed: {missing}")
                store.manifests[(name, reference)] = (content_type, body)
            return self._answer(201, headers={"Location": self._url(self.path), "Docker-Content-Digest": digest})
        if self.command not in ("GET", "HEAD"):
            return self._error(405, "UNSUPPORTED", f"{self.command} on a manifest")
        with store.lock:
            found = store.manifests.get((name, reference))
        if found is None:
            return self._error(404, "MANIFEST_UNKNOWN", f"manifest {name}:{reference} unknown")
        content_type, manifest = found
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        return self._answer(200, manifest, {"Docker-Content-Digest": digest}, content_type)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _route


def _layers(manifest: bytes) -> list[dict]:
    parsed = json.loads(manifest)
    return [*parsed.get("layers", []), *([parsed["config"]] if parsed.get("config") else [])]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    store: Store

    def handle_error(self, request: object, client_address: object) -> None:
        # Ollama closes the first blob GET once it has the Location, with the body unread: not an error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@dataclass
class Registry:
    url: str  # http://<address>:<port>
    store: Store

    @property
    def host(self) -> str:
        """What goes before /<namespace>/<model> in a model name Ollama pulls from here."""
        return self.url.removeprefix("http://")

    def reference(self, model: str, tag: str = "latest", namespace: str = "library") -> str:
        return f"{self.host}/{namespace}/{model}:{tag}"


@contextlib.contextmanager
def running(address: str = "127.0.0.1", port: int = 0) -> Iterator[Registry]:
    """The registry on `address` (an address of this machine), in a thread; closed on exit."""
    server = _Server((address, port), _Handler)
    server.store = Store()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield Registry(f"http://{address}:{server.server_address[1]}", server.store)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
