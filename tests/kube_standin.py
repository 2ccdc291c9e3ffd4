"""A stand-in Kubernetes API server for the `llmfleet._kube` unit tests: a websockets server on
loopback whose HTTP requests and websocket sessions a test's own state object answers (its
`process_request` and `handler`), and the KubeAccess that reaches it over plain http."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from websockets.sync.server import serve

from llmfleet._kube import KubeAccess


@contextlib.contextmanager
def serving(state: Any, subprotocol: str) -> Iterator[KubeAccess]:
    """`state` serving on a free loopback port; stopped, and its thread joined, on exit."""
    server = serve(state.handler, "127.0.0.1", 0, process_request=state.process_request,
                   subprotocols=[subprotocol], compression=None)  # fmt: skip
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield KubeAccess(f"http://127.0.0.1:{server.socket.getsockname()[1]}", None, source="stand-in")
    finally:
        server.shutdown()
        thread.join(10)
    assert not thread.is_alive()
