"""Loopback HTTP servers that answer exactly like Ollama, vLLM, llama-server, llama-cpp-python
and LiteLLM's /v1/models do (shapes from upstream; see ../shared/BRIEF.md), plus the faults the
drift check must survive. Each runs in a daemon thread on 127.0.0.1, port 0, and is closed by
its fixture; a handler that must hang waits on an event that closing sets, never forever."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HANG_LIMIT_S = 30.0


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    delay: float = 0.0
    hang: bool = False
    huge: int = 0  # stream this many bytes of a JSON-ish body
    location: str | None = None


def json_route(payload: Any, status: int = 200, delay: float = 0.0) -> Route:
    return Route(status=status, body=json.dumps(payload).encode(), delay=delay)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("Authorization")))
        route = self.server.route_for(self.path)
        if route is None:
            route = json_route({"detail": "Not Found"}, 404)
        if route.hang:
            self.server.closing.wait(HANG_LIMIT_S)
            return
        if route.delay:
            self.server.closing.wait(route.delay)
        try:
            self.send_response(route.status)
            if route.location:
                self.send_header("Location", route.location)
            self.send_header("Content-Type", route.content_type)
            if route.huge:
                self.send_header("Content-Length", str(route.huge))
                self.end_headers()
                chunk = b" " * 65536
                sent = 0
                while sent < route.huge and not self.server.closing.is_set():
                    self.wfile.write(chunk)
                    sent += len(chunk)
                return
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            self.wfile.write(route.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, Route | Callable[[], Route]] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.closing = threading.Event()

    def route_for(self, path: str) -> Route | None:
        route = self.routes.get(path.split("?")[0])
        return route() if callable(route) else route


class StandIn:
    """One loopback server; `routes` maps a path to a Route (or a callable returning one)."""

    def __init__(self) -> None:
        self._server = _Server()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def routes(self) -> dict[str, Route | Callable[[], Route]]:
        return self._server.routes

    @property
    def requests(self) -> list[tuple[str, str | None]]:
        return self._server.requests

    def close(self) -> None:
        self._server.closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@contextmanager
def standins(count: int) -> Iterator[list[StandIn]]:
    servers = [StandIn() for _ in range(count)]
    try:
        yield servers
    finally:
        for server in servers:
            server.close()


# -- what the real servers answer ------------------------------------------------------------
NOW = int(time.time())


def openai_models(ids: list[str] | None, owned_by: str = "openai") -> dict[str, Any]:
    """LiteLLM, vLLM, llama-server and llama-cpp-python all answer /v1/models in this shape;
    Ollama's /v1/models answers `"data": null` when it has no models."""
    data = None if ids is None else [{"id": i, "object": "model", "created": NOW, "owned_by": owned_by} for i in ids]
    return {"object": "list", "data": data}


def ollama_tags(names: list[str] | None) -> dict[str, Any]:
    models = None if names is None else [
        {"name": n, "model": n, "modified_at": "2026-11-20T10:00:00Z", "size": 397821319,
         "digest": "a8b0c51577010a279d933d14c2a8ab4b268079d44c5c8830c0a93900f1827c67",
         "details": {"format": "gguf", "family": "qwen2", "parameter_size": "494.03M", "quantization_level": "Q4_K_M"}}
        for n in names
    ]  # fmt: skip
    return {"models": models}


def serve_ollama(server: StandIn, tags: list[str]) -> None:
    server.routes["/api/tags"] = json_route(ollama_tags(tags))
    server.routes["/v1/models"] = json_route(openai_models(tags or None, "library"))


def serve_vllm(server: StandIn, served: str) -> None:
    server.routes["/health"] = Route(status=200, body=b"", content_type="text/plain")
    models = openai_models([served], "vllm")
    models["data"][0].update(root="Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", parent=None, max_model_len=4096)
    server.routes["/v1/models"] = json_route(models)


def serve_llama_server(server: StandIn, alias: str, loading: bool = False) -> None:
    if loading:
        server.routes["/health"] = json_route(
            {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}, 503
        )
    else:
        server.routes["/health"] = json_route({"status": "ok"})
    # /v1/models answers 200 even while loading: readiness is /health.
    server.routes["/v1/models"] = json_route(openai_models([alias], "llamacpp"))


def serve_llama_cpp_python(server: StandIn, alias: str) -> None:
    models = openai_models([alias], "me")
    models["data"][0]["permissions"] = []
    server.routes["/v1/models"] = json_route(models)
