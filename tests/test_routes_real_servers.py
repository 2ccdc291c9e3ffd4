"""Every declared name routes, proven with real servers: the real LiteLLM proxy on our rendered
config, in front of a real llama-server and a real llama-cpp-python server (built from the pinned
PyPI sdist, serving a tiny GGUF written here), the real Ollama (0.14.1, built from its Go module,
serving models created from the same GGUF), and a vLLM stand-in that answers its chat API in the
real shape (vLLM cannot run here). Then llama-server is killed: `probe` must name its model and why, and the
model's fallback and its aliases must still answer."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import llmfleet
from llmfleet._cli import main

from .fleetdir import BASE_STACK, write_project
from .litellm_proxy import MASTER_KEY, free_port, running_proxy, stop_process
from .llama_build import LlamaServers, ensure_built
from .ollama_build import ensure_built as ensure_ollama_built
from .real_llama import llama_cpp_python_environment, llama_server_argv, llama_server_environment, running
from .real_ollama import serving
from .standins import serve_vllm, standins
from .tiny_gguf import write_tiny_gguf

pytestmark = [pytest.mark.litellm, pytest.mark.real_servers, pytest.mark.real_ollama, pytest.mark.timeout(300)]

CONTEXT = 512  # per request; llama-server gets 2 slots of it
HF_REF = "hf.co/TinyOrg/Tiny-GGUF:Q4_K_M"
CATALOG = """\
providers:
  ollama:
    kind: ollama
    port: {ollama}
    models:
      - tiny-ollama
      # Ollama lists a Hugging Face pull under its reference: the gateway must ask for that (the
      # model is created under that name here: no pull reaches Hugging Face from this machine).
      - {{name: tiny-hf, pull: "{hf_ref}"}}
  vllm:
    kind: vllm
    port: {vllm}
    model: Qwen/Qwen2.5-0.5B-Instruct
    served_name: tiny-vllm
  native:
    kind: llama_cpp
    port: {native}
    gguf: {gguf}
    alias: tiny-native
    context_length: {context}
    parallel: 2
    env: {{LLAMA_ARG_ENDPOINT_SLOTS: "1"}}  # /slots, where a test sees a request in flight
  python:
    kind: llama_cpp_python
    port: {python}
    gguf: {gguf}
    alias: tiny-python
    context_length: {context}
routes:
  groups:
    pool:
      - {{provider: ollama, model: tiny-hf, weight: 1}}
      - {{provider: vllm, weight: 1}}
  fallbacks:
    tiny-native: [tiny-python]
  aliases:
    chat: tiny-native
    secret-chat: {{model: tiny-native, hidden: true}}
"""
# Every backend on a host whose address is loopback: the gateway then reaches each at
# 127.0.0.1:<port> (on one Docker host it would be the provider's DNS name on the fleet network).
# The vLLM is a stand-in, on CPU: the stack says so of its image. The GGUF directory is the test's:
# the catalog writes the path a container would see (/models/tiny.gguf).
STACK = (
    BASE_STACK.replace(
        "    vllm: vllm/vllm-openai:v0.18.0\n", "    vllm: {image: vllm/vllm-openai:v0.18.0, cpu: true}\n"
    )
    + """\
  llmfleet:hosts:
    gateway-host: {}
    box: {docker: "unix:///var/run/docker.sock", address: 127.0.0.1, gguf_dir: GGUF_DIR}
  llmfleet:gateway: {host: gateway-host, port: GATEWAY_PORT}
  llmfleet:providers:
    ollama: {host: box}
    vllm: {host: box}
    native: {host: box}
    python: {host: box}
"""
)


@dataclass
class Fleet:
    project: Path
    fleet: llmfleet.Fleet
    gateway: str
    native: object  # the llama-server process


@pytest.fixture(scope="module")
def servers() -> LlamaServers:
    return ensure_built()  # seconds when cached; .ci/run builds it before pytest


@pytest.fixture(scope="module")
def ollama_binary() -> Path:
    return ensure_ollama_built()  # seconds when cached; .ci/setup builds it before pytest


@pytest.fixture
def fleet(servers: LlamaServers, ollama_binary: Path, tmp_path: Path) -> Iterator[Fleet]:
    gguf_dir = tmp_path / "models"
    gguf_dir.mkdir()
    # Wider and deeper than the default tiny model: a 400-token reply then lasts long enough (about
    # a second idle, not 60 ms) to be seen under way and cut (test_a_reply_cut_by_a_stopping_server...).
    write_tiny_gguf(gguf_dir / "tiny.gguf", n_embd=384, n_layer=6)
    gguf = "/models/tiny.gguf"
    with standins(1) as (vllm,), serving(ollama_binary, tmp_path / "ollama") as ollama:
        for name in ("tiny-ollama", HF_REF):
            ollama.create(name, gguf_dir / "tiny.gguf")
        serve_vllm(vllm, "tiny-vllm")
        ports = {"ollama": ollama.port, "vllm": vllm.port, "native": free_port(), "python": free_port()}
        catalog = CATALOG.format(**ports, gguf=gguf, context=CONTEXT, hf_ref=HF_REF)
        stack = STACK.replace("GATEWAY_PORT", str(free_port())).replace("GGUF_DIR", str(gguf_dir))
        project = write_project(tmp_path / "project", catalog, stack)
        fleet = llmfleet.load_fleet(project, "test")
        native, python = fleet.catalog.providers["native"], fleet.catalog.providers["python"]
        native_url, python_url = f"http://127.0.0.1:{ports['native']}", f"http://127.0.0.1:{ports['python']}"
        with (
            running(llama_server_argv(servers, native, gguf_dir), llama_server_environment(native),
                    f"{native_url}/health", tmp_path / "native.log") as proc,
            running([str(servers.python), "-m", "llama_cpp.server"], llama_cpp_python_environment(python, gguf_dir),
                    f"{python_url}/v1/models", tmp_path / "python.log"),
            running_proxy(llmfleet.render_gateway_config(fleet), tmp_path) as gateway,
        ):  # fmt: skip
            yield Fleet(project, fleet, gateway, proc)


def probe(fleet: Fleet, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *extra: str) -> tuple:
    monkeypatch.setenv("LITELLM_MASTER_KEY", MASTER_KEY)
    argv = ["--project-dir", str(fleet.project), "probe", "--stack", "test", "--url", fleet.gateway,
            "--format", "json", "--timeout", "30", "--deadline", "120", *extra]  # fmt: skip
    code = main(argv)
    out, err = capsys.readouterr()
    report = json.loads(out)
    return code, {c["target"]: c for c in report["checks"]}, out + err


def chat(url: str, model: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", headers={"Authorization": f"Bearer {MASTER_KEY}"},
                      json={"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1},
                      timeout=60)  # fmt: skip


def test_every_declared_name_answers_then_a_killed_server_is_named(fleet: Fleet, capsys, monkeypatch) -> None:
    code, checks, output = probe(fleet, capsys, monkeypatch, "--backends")
    names = ["chat", "pool", "tiny-hf", "tiny-native", "tiny-ollama", "tiny-python", "tiny-vllm"]
    assert names == llmfleet.declared_models(fleet.fleet.catalog)
    assert {n: checks[n]["verdict"] for n in names} == dict.fromkeys(names, "answers"), output
    assert checks["tiny-native"]["notes"] == ["answered by tiny-native@native"]
    assert checks["chat"]["notes"] == ["answered by tiny-native@native"]
    assert checks["tiny-hf"]["notes"] == ["answered by tiny-hf@ollama"]
    assert {n: checks[n]["verdict"] for n in ("ollama", "vllm", "native", "python")} == dict.fromkeys(
        ("ollama", "vllm", "native", "python"), "answers"
    )
    assert code == 0, output
    assert MASTER_KEY not in output

    stop_process(fleet.native)  # llama-server dies mid-test
    code, checks, output = probe(fleet, capsys, monkeypatch, "--backends")
    assert code == 2, output
    native = checks["tiny-native"]
    assert native["verdict"] == "degraded", output
    assert native["detail"].startswith("answered only through a fallback: by tiny-python@python"), native
    assert any(n.startswith("native:") and "connection refused" in n for n in native["notes"]), native
    assert checks["native"]["verdict"] == "unreachable"
    # The fallback and the aliases still answer: an alias falls back as its model does.
    assert checks["tiny-python"]["verdict"] == "answers"
    assert checks["chat"]["verdict"] == "degraded"
    assert "tiny-python@python" in checks["chat"]["detail"]
    for name in ("tiny-native", "chat", "secret-chat"):
        response = chat(fleet.gateway, name)
        assert response.status_code == 200, (name, response.text[:300])
        assert response.headers["x-litellm-model-id"] == "tiny-python@python"
    assert MASTER_KEY not in output


def test_each_request_gets_the_declared_context(fleet: Fleet) -> None:
    # 2 slots of 512 tokens each: a prompt near 512 fits (with -c 512 each slot had 256).
    native = fleet.fleet.catalog.providers["native"]
    prompt = "a" * (CONTEXT - 80)
    response = httpx.post(f"http://127.0.0.1:{native.listen_port}/v1/chat/completions",
                          json={"messages": [{"role": "user", "content": prompt}], "max_tokens": 1},
                          timeout=60)  # fmt: skip
    assert response.status_code == 200, response.text[:300]
    assert CONTEXT - 80 < response.json()["usage"]["prompt_tokens"] <= CONTEXT


def test_a_reply_cut_by_a_stopping_server_is_answered_by_the_fallback(fleet: Fleet) -> None:
    # What a replaced llama-server does to a request under way (it closes the connection at the
    # signal: tests/test_stop_real.py) and what the gateway then does with it: its fallback answers.
    answer: dict[str, httpx.Response] = {}
    # As long a reply as the fallback's 512-token context holds (a longer one fails there instead).
    body = {"model": "tiny-native", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 400,
            "temperature": 0}  # fmt: skip
    sender = threading.Thread(target=lambda: answer.setdefault("r", httpx.post(
        f"{fleet.gateway}/v1/chat/completions", headers={"Authorization": f"Bearer {MASTER_KEY}"}, json=body,
        timeout=120)))  # fmt: skip
    sender.start()
    native = fleet.fleet.catalog.providers["native"].listen_port
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=f"http://127.0.0.1:{native}") as slots:  # one connection: each look is quick
        while not any(slot.get("is_processing") for slot in slots.get("/slots").json()):
            assert time.monotonic() < deadline, "the request never reached llama-server"
            assert sender.is_alive(), "the reply was over before it was seen under way"
            time.sleep(0.02)
    fleet.native.send_signal(signal.SIGTERM)  # as `docker stop` sends it: the reply is cut mid-way
    sender.join(120)
    response = answer["r"]
    assert response.status_code == 200, response.text[:300]
    assert response.headers["x-litellm-model-id"] == "tiny-python@python"
    assert response.headers["x-litellm-attempted-fallbacks"] == "1"
    assert fleet.native.wait(timeout=10) is not None
