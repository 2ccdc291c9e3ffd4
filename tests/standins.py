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
from dataclasses import dataclass, field
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
    headers: dict[str, str] = field(default_factory=dict)


def json_route(payload: Any, status: int = 200, delay: float = 0.0) -> Route:
    return Route(status=status, body=json.dumps(payload).encode(), delay=delay)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:
        self._answer_body(self.server.posts)

    def do_DELETE(self) -> None:  # Ollama's DELETE /api/delete carries a JSON body
        self._answer_body(self.server.deletes)

    def _answer_body(self, handlers: dict[str, Callable[[Any], Route]]) -> None:
        self.server.requests.append((self.path, self.headers.get("Authorization")))
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        handler = handlers.get(self.path.split("?")[0])
        route = handler(json.loads(body or b"{}")) if handler else self.server.not_found
        self._answer(route)

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("Authorization")))
        route = self.server.route_for(self.path)
        if route is None:
            route = self.server.not_found
        self._answer(route)

    def _answer(self, route: Route) -> None:
        if route.hang:
            self.server.closing.wait(HANG_LIMIT_S)
            return
        if route.delay:
            self.server.closing.wait(route.delay)
        try:
            self.send_response(route.status)
            if route.location:
                self.send_header("Location", route.location)
            for name, value in route.headers.items():
                self.send_header(name, value)
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
    request_queue_size = 256  # a real gateway takes a hundred connections at once; socketserver's default is 5

    def __init__(self, address: tuple[str, int] = ("127.0.0.1", 0)) -> None:
        super().__init__(address, _Handler)
        self.routes: dict[str, Route | Callable[[], Route]] = {}
        self.posts: dict[str, Callable[[Any], Route]] = {}  # path -> the JSON body -> the answer
        self.deletes: dict[str, Callable[[Any], Route]] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.closing = threading.Event()
        self.not_found = json_route({"detail": "Not Found"}, 404)  # FastAPI's (vLLM, LiteLLM, llama-cpp-python)

    def route_for(self, path: str) -> Route | None:
        route = self.routes.get(path.split("?")[0])
        return route() if callable(route) else route


class StandIn:
    """One loopback server; `routes` maps a path to a Route (or a callable returning one)."""

    def __init__(self, address: tuple[str, int] = ("127.0.0.1", 0)) -> None:
        # Tests keep the default, loopback on a free port; the stand-in images (tests/images/)
        # listen on the container's own port on every interface, as the real servers do.
        self._server = _Server(address)
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
    def posts(self) -> dict[str, Callable[[Any], Route]]:
        return self._server.posts

    @property
    def deletes(self) -> dict[str, Callable[[Any], Route]]:
        return self._server.deletes

    @property
    def requests(self) -> list[tuple[str, str | None]]:
        return self._server.requests

    def answer_unknown_paths(self, route: Route) -> None:
        self._server.not_found = route

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


def ollama_namespace(name: str) -> str:
    """Ollama's /v1/models `owned_by`: the name's namespace, `library` when it has none
    (`hf.co/TinyOrg/Tiny-GGUF:Q4_K_M` is TinyOrg's; checked on 0.14.1 in test_ollama_real.py)."""
    parts = name.split(":", 1)[0].split("/")
    return parts[-2] if len(parts) > 1 else "library"


def serve_ollama(server: StandIn, tags: list[str]) -> None:
    """Ollama 0.14.1 listing `tags` (names as Ollama lists them: `name:latest`, case kept)."""
    server.routes["/api/tags"] = json_route(ollama_tags(tags))
    server.posts["/api/chat"] = _ollama_chat(tags)
    models = openai_models(tags or None)
    for entry in models["data"] or []:
        entry["owned_by"] = ollama_namespace(entry["id"])
    server.routes["/v1/models"] = json_route(models)
    # Go's mux, as in 0.14.1: an unknown path is plain text, not JSON.
    server.answer_unknown_paths(Route(status=404, body=b"404 page not found", content_type="text/plain"))


def serve_vllm(server: StandIn, served: str) -> None:
    server.routes["/health"] = Route(status=200, body=b"", content_type="text/plain")
    models = openai_models([served], "vllm")
    models["data"][0].update(root="Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", parent=None, max_model_len=4096)
    server.routes["/v1/models"] = json_route(models)
    server.posts["/v1/chat/completions"] = _vllm_chat(served)


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


# -- the chat APIs LiteLLM calls: `ollama_chat/` -> Ollama's /api/chat, `hosted_vllm/` -> vLLM's
# OpenAI /v1/chat/completions, in the real servers' shapes (Ollama's docs/api.md; vLLM's
# protocol.py ChatCompletionResponse). Each answers one token, "pong".
def _ollama_chat(tags: list[str]) -> Callable[[Any], Route]:
    def answer(body: Any) -> Route:
        model = body.get("model")
        if model not in tags:
            return json_route({"error": f"model '{model}' not found"}, 404)  # as 0.14.1 words it
        stamp = "2026-11-27T10:00:00.000000Z"
        final = {"model": model, "created_at": stamp, "message": {"role": "assistant", "content": ""},
                 "done_reason": "length", "done": True, "total_duration": 5_000_000, "load_duration": 1_000_000,
                 "prompt_eval_count": 12, "prompt_eval_duration": 2_000_000, "eval_count": 1,
                 "eval_duration": 1_000_000}  # fmt: skip
        if body.get("stream", True) is False:  # Ollama streams unless told not to
            return json_route({**final, "message": {"role": "assistant", "content": "pong"}})
        chunk = {
            "model": model,
            "created_at": stamp,
            "message": {"role": "assistant", "content": "pong"},
            "done": False,
        }
        lines = "".join(json.dumps(part) + "\n" for part in (chunk, final)).encode()
        return Route(body=lines, content_type="application/x-ndjson")

    return answer


def _vllm_chat(served: str) -> Callable[[Any], Route]:
    def answer(body: Any) -> Route:
        model = body.get("model")
        if model != served:
            error = {"object": "error", "message": f"The model `{model}` does not exist.", "type": "NotFoundError",
                     "param": None, "code": 404}  # fmt: skip
            return json_route(error, 404)
        usage = {"prompt_tokens": 12, "total_tokens": 13, "completion_tokens": 1, "prompt_tokens_details": None}
        if body.get("stream"):

            def chunk(delta: dict, finish: str | None) -> str:
                payload = {
                    "id": "chatcmpl-7f3a",
                    "object": "chat.completion.chunk",
                    "created": NOW,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
                }
                return f"data: {json.dumps(payload)}\n\n"

            events = chunk({"role": "assistant", "content": "pong"}, None) + chunk({}, "length") + "data: [DONE]\n\n"
            return Route(body=events.encode(), content_type="text/event-stream")
        return json_route({
            "id": "chatcmpl-7f3a", "object": "chat.completion", "created": NOW, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "pong", "refusal": None,
                                                 "tool_calls": [], "reasoning_content": None},
                         "logprobs": None, "finish_reason": "length", "stop_reason": None}],
            "usage": usage, "prompt_logprobs": None,
        })  # fmt: skip

    return answer


def serve_openai_chat(
    server: StandIn, delays: dict[str, float] | None = None, fields: dict[str, Any] | None = None
) -> None:
    """An OpenAI-compatible API answering any model (vLLM's shapes), each after its delay: an
    external provider's endpoint as LiteLLM's `openai/` prefix calls it. `fields` are added to
    every non-streamed answer (Groq's carry `service_tier`, which LiteLLM's groq/ reads)."""

    def answer(body: Any) -> Route:
        route = _vllm_chat(str(body.get("model")))(body)
        if fields and route.content_type == "application/json":
            route = Route(**{**route.__dict__, "body": json.dumps({**json.loads(route.body), **fields}).encode()})
        return Route(**{**route.__dict__, "delay": (delays or {}).get(str(body.get("model")), 0.0)})

    server.posts["/v1/chat/completions"] = answer
    server.routes["/v1/models"] = json_route(openai_models([]))
