"""What a SIGTERM does to a generation in flight, per real server: what `docker stop` (and so every
replacement of a server container) sends its first process, here sent to the server's process on
loopback. Measured, so the README and the stop graces say what really happens:

- llama-server and Ollama close every open connection at once: a reply in flight is cut, streamed
  or not, and the process is gone within a second. Their stop grace only bounds a hang.
- llama-cpp-python (uvicorn) finishes a reply that is not streamed, then exits. (Its streams are
  not measured: in 0.3.16 here, a stream of thousands of tokens sent only keep-alive pings for
  minutes, signal or not, so nothing about the signal could be told from it.)

The tiny random model is greedy (temperature 0) with a long token cap, so a reply is still under
way when the signal comes."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import llmfleet
from tests import ollama_build
from tests.litellm_proxy import free_port
from tests.llama_build import LlamaServers, ensure_built
from tests.real_llama import llama_cpp_python_environment, llama_server_argv, running
from tests.real_ollama import serving
from tests.tiny_gguf import write_tiny_gguf

pytestmark = [pytest.mark.real_servers, pytest.mark.real_ollama, pytest.mark.timeout(300)]
LONG = 3000  # tokens: many seconds of the tiny model on one thread
# "At once": well under the 30 s stop grace even on a busy machine (idle: milliseconds).
CUT_AT_ONCE_S = 5.0
CHAT = {"messages": [{"role": "user", "content": "hi"}], "temperature": 0, "max_tokens": LONG}


@pytest.fixture(scope="module")
def servers() -> LlamaServers:
    return ensure_built()


@pytest.fixture
def gguf_dir(tmp_path: Path) -> Path:
    write_tiny_gguf(tmp_path / "tiny.gguf")
    return tmp_path


def stream_until_term(url: str, body: dict, pid: int, after_chunks: int = 5) -> tuple[int, str, float]:
    """Stream a reply, SIGTERM the server after a few chunks; (chunks read, how it ended, seconds
    from the signal to the end of the stream). A stream that sends nothing for 10 s is 'hangs'."""
    chunks, signalled = 0, 0.0
    try:
        with httpx.stream("POST", url, json={**body, "stream": True}, timeout=httpx.Timeout(60, read=10)) as answer:
            for line in answer.iter_lines():
                if not line.strip():
                    continue
                chunks += 1
                if chunks == after_chunks:
                    signalled = time.monotonic()
                    signal_process(pid)
        return chunks, "complete", time.monotonic() - signalled
    except httpx.ReadTimeout:
        return chunks, "hangs", time.monotonic() - signalled
    except httpx.RemoteProtocolError:
        return chunks, "cut", time.monotonic() - signalled


def signal_process(pid: int) -> None:
    os.kill(pid, signal.SIGTERM)


def post_then_term(url: str, body: dict, pid: int) -> tuple[str, float]:
    """A reply not streamed, the server SIGTERMed 0.3 s after the request: how it ended and when."""
    ended: dict[str, object] = {}

    def send() -> None:
        try:
            ended["how"] = f"answered {httpx.post(url, json={**body, 'stream': False}, timeout=60).status_code}"
        except httpx.RemoteProtocolError:
            ended["how"] = "cut"
        ended["at"] = time.monotonic()

    sender = threading.Thread(target=send)
    sender.start()
    time.sleep(0.3)
    signalled = time.monotonic()
    signal_process(pid)
    sender.join(90)
    return str(ended["how"]), float(ended["at"]) - signalled  # type: ignore[arg-type]


def exited_within(proc: subprocess.Popen, seconds: float) -> bool:
    try:
        proc.wait(timeout=seconds)
        return True
    except subprocess.TimeoutExpired:
        return False


@pytest.fixture
def llama_server(servers: LlamaServers, gguf_dir: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    port = free_port()
    p = llmfleet.LlamaCppProvider(kind="llama_cpp", gguf="/models/tiny.gguf", alias="tiny", port=port,
                                  context_length=4096)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with running(llama_server_argv(servers, p, gguf_dir), None, f"{url}/health", gguf_dir / "native.log") as proc:
        yield url, proc


@pytest.fixture
def llama_cpp_python(servers: LlamaServers, gguf_dir: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    port = free_port()
    p = llmfleet.LlamaCppPythonProvider(kind="llama_cpp_python", gguf="/models/tiny.gguf", alias="tiny", port=port,
                                        context_length=4096)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    env = llama_cpp_python_environment(p, gguf_dir)
    with running([str(servers.python), "-m", "llama_cpp.server"], env, f"{url}/v1/models", gguf_dir / "py.log") as proc:
        yield url, proc


def test_llama_server_cuts_a_stream_at_once(llama_server) -> None:
    url, proc = llama_server
    chunks, how, after = stream_until_term(f"{url}/v1/chat/completions", {"model": "tiny", **CHAT}, proc.pid)
    assert (how, chunks >= 5) == ("cut", True) and after < CUT_AT_ONCE_S
    assert exited_within(proc, 5)


def test_llama_server_cuts_a_reply_that_is_not_streamed(llama_server) -> None:
    url, proc = llama_server
    how, after = post_then_term(f"{url}/v1/chat/completions", {"model": "tiny", **CHAT}, proc.pid)
    assert how == "cut" and after < CUT_AT_ONCE_S
    assert exited_within(proc, 5)


def test_llama_cpp_python_finishes_a_reply_that_is_not_streamed_then_exits(llama_cpp_python) -> None:
    url, proc = llama_cpp_python
    how, _ = post_then_term(f"{url}/v1/chat/completions", {"model": "tiny", **CHAT}, proc.pid)
    assert how == "answered 200"
    assert exited_within(proc, 10)


def test_ollama_cuts_a_stream_at_once(tmp_path: Path) -> None:
    gguf = write_tiny_gguf(tmp_path / "tiny.gguf")
    with serving(ollama_build.ensure_built(), tmp_path / "ollama") as ollama:
        modelfile = tmp_path / "Modelfile"
        modelfile.write_text(f"FROM {gguf}\nPARAMETER num_thread 1\nPARAMETER temperature 0\n"
                             f"PARAMETER num_predict {LONG}\nPARAMETER num_ctx 4096\n")  # fmt: skip
        ollama.cli("create", "tiny", "-f", str(modelfile))
        body = {"model": "tiny", "messages": CHAT["messages"]}
        chunks, how, after = stream_until_term(f"{ollama.url}/api/chat", body, ollama.pid)
        assert (how, chunks >= 5) == ("cut", True) and after < CUT_AT_ONCE_S
