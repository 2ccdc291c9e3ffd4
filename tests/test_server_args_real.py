"""A provider's extra `args` and `env` reach the real servers: llama-server and llama-cpp-python
(built by tests/llama_build.py), started with exactly the components' arguments and environment,
show each one's effect over HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

import llmfleet

from .litellm_proxy import free_port
from .llama_build import LlamaServers, ensure_built
from .real_llama import llama_cpp_python_environment, llama_server_argv, llama_server_environment, running
from .tiny_gguf import write_tiny_gguf

pytestmark = [pytest.mark.real_servers, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def servers() -> LlamaServers:
    return ensure_built()


def _chat(url: str, model: str) -> httpx.Response:
    # No max_tokens: how long the answer is is the server's choice. Greedy: a sampled token of the
    # random model can be its end token, and the answer would then stop before the server's cap.
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "temperature": 0}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)


def test_llama_server_gets_the_catalogs_args_and_env(servers: LlamaServers, tmp_path: Path) -> None:
    gguf = write_tiny_gguf(tmp_path / "tiny.gguf")
    port = free_port()
    provider = llmfleet.LlamaCppProvider(
        kind="llama_cpp", gguf=str(gguf), alias="tiny", port=port,
        args=["--n-predict", "3"], env={"LLAMA_ARG_ENDPOINT_SLOTS": "1"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    argv, env = llama_server_argv(servers, provider), llama_server_environment(provider)
    assert argv[-2:] == ["--n-predict", "3"]
    with running(argv, env, f"{url}/health", tmp_path / "native.log"):
        answer = _chat(url, "tiny").json()
        # --n-predict 3: every answer is cut at 3 tokens.
        assert answer["usage"]["completion_tokens"] == 3 and answer["choices"][0]["finish_reason"] == "length"
        # LLAMA_ARG_ENDPOINT_SLOTS: the /slots endpoint is on (off by default: 501 "Start it with `--slots`").
        assert httpx.get(f"{url}/slots", timeout=10).status_code == 200
        # What llmfleet derives is still what it set.
        assert [m["id"] for m in httpx.get(f"{url}/v1/models", timeout=10).json()["data"]] == ["tiny"]


def test_llama_cpp_python_reads_the_catalogs_env_ignoring_case(servers: LlamaServers, tmp_path: Path) -> None:
    gguf = write_tiny_gguf(tmp_path / "tiny.gguf")
    port = free_port()
    provider = llmfleet.LlamaCppPythonProvider(
        kind="llama_cpp_python", gguf=str(gguf), alias="tiny-python", port=port, env={"Embedding": "true"}
    )
    url = f"http://127.0.0.1:{port}"
    env = llama_cpp_python_environment(provider)
    assert env["Embedding"] == "true"
    with running([str(servers.python), "-m", "llama_cpp.server"], env, f"{url}/v1/models", tmp_path / "py.log"):
        # `embedding` is off by default ("Llama model must be created with embedding=True"); the
        # variable, written in another case, turned it on.
        response = httpx.post(f"{url}/v1/embeddings", json={"input": "hi", "model": "tiny-python"}, timeout=60)
        assert response.status_code == 200, response.text
        assert response.json()["data"][0]["object"] == "embedding"
        assert [m["id"] for m in httpx.get(f"{url}/v1/models", timeout=10).json()["data"]] == ["tiny-python"]


def test_every_spelling_llmfleet_refuses_is_one_the_real_servers_read(servers: LlamaServers) -> None:
    """The refusal tables name real options and variables, not guesses: each llama-server option and
    variable appears in the built binary's --help, each llama-cpp-python variable is a field of its
    settings (or CONFIG_FILE, which its __main__ reads)."""
    import subprocess

    from llmfleet._server_args import LLAMA_CPP_PYTHON_ENV, LLAMA_SERVER_ENV, LLAMA_SERVER_FLAGS

    help_text = subprocess.run([str(servers.llama_server), "--help"], capture_output=True, text=True, timeout=60)
    words = set(help_text.stdout.replace(",", " ").split()) | set(help_text.stderr.replace(",", " ").split())
    assert sorted(f for f in LLAMA_SERVER_FLAGS if f not in words) == []
    # LLAMA_CACHE and HF_HOME are read by the download code, not listed by --help (llama.cpp's README).
    listed = {v.rstrip(")") for v in words if v.isupper() or v.endswith(")")}
    assert sorted(v for v in LLAMA_SERVER_ENV if v not in listed) == ["HF_HOME", "LLAMA_CACHE"]

    code = (
        "import inspect, llama_cpp.server.__main__ as m; from llama_cpp.server.settings import Settings; "
        "print(' '.join(Settings.model_fields)); print('CONFIG_FILE' in inspect.getsource(m))"
    )
    done = subprocess.run([str(servers.python), "-c", code], capture_output=True, text=True, timeout=120, check=True)
    fields, reads_config_file = done.stdout.split("\n")[:2]
    assert reads_config_file == "True"
    assert sorted(v for v in LLAMA_CPP_PYTHON_ENV if v.lower() not in fields.split()) == ["CONFIG_FILE"]
