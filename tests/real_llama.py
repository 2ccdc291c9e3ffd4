"""Start the real llama.cpp servers (built by tests/llama_build.py) exactly as the components
configure them: the argument list of `llama_server_command` and the environment of
`llama_cpp_python_env`, called here, never copied. Two things differ, on purpose: the listen
address (a container listens on 0.0.0.0 inside its own network namespace; a test listens on
loopback only), and where the GGUF file is read (a container sees the host's gguf_dir at /models,
the path the catalog writes; a test process reads the host's directory itself)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from components.servers.gguf import GGUF_DIR
from components.servers.llama_cpp import llama_server_command, llama_server_env
from components.servers.llama_cpp_python import llama_cpp_python_env
from llmfleet import LlamaCppProvider, LlamaCppPythonProvider

from .litellm_proxy import stop_process
from .llama_build import LlamaServers

STARTUP_DEADLINE = 60.0  # the tiny GGUF loads in under a second; the Python server imports for a few


def _loopback(args: list[str]) -> list[str]:
    i = args.index("--host")
    assert args[i + 1] == "0.0.0.0", args
    return [*args[: i + 1], "127.0.0.1", *args[i + 2 :]]


def _on_host(path: str, gguf_dir: Path | None) -> str:
    """The host file a container would see at `path` (under /models), for a process on the host."""
    if gguf_dir is None or not path.startswith(f"{GGUF_DIR}/"):
        return path
    return str(gguf_dir / path.removeprefix(f"{GGUF_DIR}/"))


def llama_server_argv(servers: LlamaServers, p: LlamaCppProvider, gguf_dir: Path | None = None) -> list[str]:
    args = _loopback(llama_server_command(p))
    return [str(servers.llama_server), *(_on_host(a, gguf_dir) if a == p.gguf else a for a in args)]


def llama_server_environment(p: LlamaCppProvider) -> dict[str, str]:
    # A clean environment too: llama-server reads LLAMA_ARG_* variables.
    return {**llama_server_env(p), "PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}


def llama_cpp_python_environment(p: LlamaCppPythonProvider, gguf_dir: Path | None = None) -> dict[str, str]:
    # A clean environment: llama-cpp-python's settings read every variable named like a setting
    # (MODEL, PORT, HOST, N_CTX, ...), unprefixed, so nothing of the test runner's may leak in.
    env = {**llama_cpp_python_env(p), "HOST": "127.0.0.1"}
    env["MODEL"] = _on_host(env["MODEL"], gguf_dir)
    return {**env, "PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}


@contextlib.contextmanager
def running(argv: list[str], env: dict[str, str] | None, ready_url: str, log: Path) -> Iterator[subprocess.Popen]:
    """Start a server, wait until `ready_url` answers 200, and always stop it."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + STARTUP_DEADLINE
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(ready_url, timeout=1.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{argv[0]} not ready within {STARTUP_DEADLINE} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield proc
    finally:
        stop_process(proc)
