"""The pure spec builders of each server kind: arguments, environment, healthchecks, GPUs."""

from __future__ import annotations

from pathlib import Path

import pytest

import llmfleet
from components.docker.container import bind_args, gpu_args
from components.docker.llama_cpp_python import build_triggers
from components.servers.gateway import gateway_spec
from components.servers.llama_cpp import llama_server_command, llama_server_spec
from components.servers.llama_cpp_python import llama_cpp_python_env
from components.servers.ollama import GpuMemory, gpu_overhead, ollama_spec
from components.servers.spec import FileBind, Mount, go_duration, gpu_request
from components.servers.vllm import HF_CACHE, VLLM_CACHE, vllm_command, vllm_spec
from llmfleet._front_proxy import DRAIN_S, READY_FOR_S


def test_vllm_command_passes_every_knob_and_the_served_name() -> None:
    p = llmfleet.VllmProvider(
        kind="vllm", model="Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", served_name="qwen-coder-vllm", port=8001,
        max_model_len=4096, gpu_memory_utilization=0.45, tensor_parallel_size=2, max_num_seqs=64, gpus=[0, 1],
    )  # fmt: skip
    assert vllm_command(p) == [
        "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", "--served-model-name", "qwen-coder-vllm", "--host", "0.0.0.0",
        "--port", "8001", "--gpu-memory-utilization", "0.45", "--tensor-parallel-size", "2",
        "--max-model-len", "4096", "--max-num-seqs", "64",
    ]  # fmt: skip
    spec = vllm_spec(p, "hf", "vc")
    assert spec.ipc_host and spec.wait_timeout_s >= 900
    assert spec.envs() == ["HF_HOME=/root/.cache/huggingface", "NVIDIA_VISIBLE_DEVICES=0,1"]
    assert "http://127.0.0.1:8001/health" in spec.healthcheck.tests[1]


def test_vllm_serves_a_model_directory_or_gguf_from_the_operators_directory() -> None:
    operators = Mount("/models", host_path="/srv/models", read_only=True)
    local = llmfleet.VllmProvider(kind="vllm", model="/models/Qwen2.5-7B-AWQ", served_name="q", gpus="all")
    spec = vllm_spec(local, "hf", "vc", operators)
    assert vllm_command(local)[0] == "/models/Qwen2.5-7B-AWQ"
    assert spec.mounts == [Mount(HF_CACHE, volume="hf"), Mount(VLLM_CACHE, volume="vc"), operators]
    # The directory itself is bound too: Docker refuses a missing source at create time, by name.
    assert spec.binds == [FileBind(source="/srv/models/Qwen2.5-7B-AWQ", target="/models/Qwen2.5-7B-AWQ")]
    # A Hugging Face id keeps the container it had: no GGUF directory mounted.
    hub = llmfleet.VllmProvider(kind="vllm", model="Qwen/Qwen2.5-7B-Instruct", served_name="q", gpus="all")
    spec = vllm_spec(hub, "hf", "vc", operators)
    assert [m.container_path for m in spec.mounts] == [HF_CACHE, VLLM_CACHE]
    assert spec.binds == []


def test_llama_server_always_gets_alias_port_and_layers() -> None:
    cpu = llmfleet.LlamaCppProvider(kind="llama_cpp", hf="ggml-org/gemma-3-1b-it-GGUF:Q4_K_M", alias="gemma")
    assert llama_server_command(cpu) == [
        "-hf", "ggml-org/gemma-3-1b-it-GGUF:Q4_K_M", "--alias", "gemma", "--host", "0.0.0.0", "--port", "8080",
        "-ngl", "0", "-np", "1",
    ]  # fmt: skip
    gpu = llmfleet.LlamaCppProvider(
        kind="llama_cpp", gguf="/models/m.gguf", alias="m", gpus="all", context_length=8192, parallel=4
    )
    assert llama_server_command(gpu) == [
        "-m", "/models/m.gguf", "--alias", "m", "--host", "0.0.0.0", "--port", "8080", "-ngl", "999",
        "-c", "32768", "-np", "4",  # each of the 4 slots gets the declared 8192
    ]  # fmt: skip


def test_llama_cpp_python_offloads_every_layer_on_a_gpu() -> None:
    p = llmfleet.LlamaCppPythonProvider(
        kind="llama_cpp_python", gguf="/models/m.gguf", alias="d", gpus=[1], context_length=8192
    )
    assert llama_cpp_python_env(p) == {
        "MODEL": "/models/m.gguf", "MODEL_ALIAS": "d", "N_GPU_LAYERS": "-1", "HOST": "0.0.0.0", "PORT": "8000",
        "N_CTX": "8192",
    }  # fmt: skip
    cpu = llmfleet.LlamaCppPythonProvider(kind="llama_cpp_python", gguf="/models/m.gguf", alias="d")
    assert llama_cpp_python_env(cpu)["N_GPU_LAYERS"] == "0"


def test_ollama_healthcheck_needs_no_curl() -> None:
    p = llmfleet.OllamaProvider(kind="ollama", models=["a"], context_length=8192, parallel=2)
    spec = ollama_spec(p, "vol")
    assert spec.healthcheck.tests == ["CMD", "ollama", "list"]
    assert spec.envs() == ["OLLAMA_CONTEXT_LENGTH=8192", "OLLAMA_HOST=0.0.0.0:11434", "OLLAMA_NUM_PARALLEL=2"]
    assert spec.gpus is None


def test_ollama_mounts_the_gguf_directory_only_for_models_created_from_a_file() -> None:
    operators = Mount("/models", host_path="/srv/gguf", read_only=True)
    pulled = llmfleet.OllamaProvider(kind="ollama", models=["a", {"name": "b", "pull": "hf.co/u/r:Q4_K_M"}])
    spec = ollama_spec(pulled, "vol", operators)
    assert [m.container_path for m in spec.mounts] == ["/root/.ollama"]
    assert spec.binds == []
    created = llmfleet.OllamaProvider(kind="ollama", models=["a", {"name": "c", "gguf": "/models/sub/c.gguf"}])
    spec = ollama_spec(created, "vol", operators)
    assert spec.mounts == [Mount("/root/.ollama", volume="vol"), operators]
    # The file itself is bound too, so a file missing on the host fails the deploy at once.
    assert spec.binds == [FileBind(source="/srv/gguf/sub/c.gguf", target="/models/sub/c.gguf")]


def test_an_ollama_budget_becomes_the_memory_ollama_leaves_alone_on_each_gpu() -> None:
    p = llmfleet.OllamaProvider(kind="ollama", models=["a"], gpus=[0], gpu_memory_budget=0.3)
    # Alone on an 80 GiB GPU: it leaves 70% of it, 56 GiB; Ollama then places at most 24 GiB.
    assert gpu_overhead(0.3, GpuMemory(80)) == 56 * 2**30
    # Beside a vLLM holding 0.45: free memory already lacks vLLM's 36 GiB, so it leaves only what no
    # declared share claims, 0.25 x 80 = 20 GiB; free 44 - 20 = 24 GiB, its budget again.
    spec = ollama_spec(p, "vol", memory=GpuMemory(80, beside=0.45))
    assert f"OLLAMA_GPU_OVERHEAD={20 * 2**30}" in spec.envs()
    # Declared shares over the whole GPU leave nothing to reserve (the gpu-budget check refuses
    # that sum where vLLM is involved); never a negative number Ollama would misread.
    assert gpu_overhead(0.6, GpuMemory(24, beside=0.6)) == 0
    # A fractional GiB and a fraction that is not exact in binary still give whole bytes.
    assert gpu_overhead(0.1, GpuMemory(23.5)) == round(0.9 * 23.5 * 2**30)


@pytest.mark.parametrize(
    ("provider", "memory"),
    [
        ({"gpus": [0], "gpu_memory_budget": 0.3}, None),  # the host does not say what its GPUs hold
        ({"gpus": [0]}, GpuMemory(80)),  # no budget: Ollama keeps its own default (no overhead)
        ({"gpu_memory_budget": 0.3}, GpuMemory(80)),  # no GPU: nothing to hold it to
    ],
)
def test_without_a_budget_a_gpu_and_the_hosts_gpu_memory_ollama_is_told_nothing(provider, memory) -> None:
    p = llmfleet.OllamaProvider(kind="ollama", models=["a"], **provider)
    assert not [e for e in ollama_spec(p, "vol", memory=memory).envs() if e.startswith("OLLAMA_GPU_OVERHEAD=")]


def test_gpu_request_shapes() -> None:
    assert gpu_request(None) is None
    assert gpu_args(gpu_request("all")) == {"gpus": "all"}
    assert gpu_request("all").visible_devices == "all"
    # A list is a device request, never gpus="device=0,2" (docker/cli would read "2" as a count).
    [request] = gpu_args(gpu_request([0, 2]))["device_requests"]
    assert (request.driver, request.device_ids, request.capabilities) == ("nvidia", ["0", "2"], ["gpu"])
    assert gpu_request([0, 2]).visible_devices == "0,2"
    assert gpu_request([1, 1]).device_ids == ("1",)


def test_gateway_is_healthy_once_ready_for_long_enough_never_through_health() -> None:
    # /health would send a completion to every backend; readiness answers 503 while shutting down.
    spec = gateway_spec()
    # LiteLLM runs under the entrypoint that drains it before it stops (components/servers/gateway_entrypoint.py).
    assert spec.entrypoint == ["python3", "/app/llmfleet_gateway_entrypoint.py"]
    assert spec.command == ["litellm", "--config", "/app/config.yaml", "--port", "4000"]
    # Starts with no network; re-resolves backends each second (a replaced backend has a new address).
    assert spec.envs() == [
        "AIOHTTP_TTL_DNS_CACHE=1",
        "LITELLM_LOCAL_MODEL_COST_MAP=True",
        f"LLMFLEET_DRAIN_S={DRAIN_S}",
        "LLMFLEET_READINESS_URL=http://127.0.0.1:4000/health/readiness",
        "LLMFLEET_READY_LISTEN=0.0.0.0:4001",
    ]
    # Docker asks the entrypoint, as the front proxy does: healthy means the proxy would route to it.
    check = spec.healthcheck.tests[1]
    assert check.count("u.urlopen('http://127.0.0.1:4001/health/readiness', timeout=1.5)") == 4  # python3 || python
    assert f"time.sleep({READY_FOR_S})" in check and "/health'" not in check
    assert spec.healthcheck.timeout_s > READY_FOR_S + 2 * 1.5  # room for both probes and the wait


def test_image_build_rebuilds_when_the_context_changes(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM x\n")
    before = build_triggers(tmp_path)
    assert build_triggers(tmp_path) == before
    (tmp_path / "Dockerfile").write_text("FROM y\n")
    assert build_triggers(tmp_path) != before


@pytest.mark.parametrize(
    ("seconds", "printed"),
    [(5, "5s"), (60, "1m0s"), (90, "1m30s"), (900, "15m0s"), (1800, "30m0s"), (3600, "1h0m0s"), (3725, "1h2m5s")],
)
def test_healthcheck_durations_are_spelled_as_the_provider_reads_them_back(seconds, printed):
    # Go's time.Duration.String(), which the Docker provider stores: any other spelling is a diff forever.
    assert go_duration(seconds) == printed


def test_a_gguf_from_the_operators_directory_is_also_bound_as_a_file():
    from components.servers.gguf import gguf_binds
    from components.servers.spec import FileBind, Mount

    host_dir = Mount("/models", host_path="/srv/gguf/", read_only=True)
    # Docker refuses a missing bind source by name, at create time: the deploy fails in seconds.
    assert gguf_binds(host_dir, "/models/qwen/q4.gguf") == [FileBind("/srv/gguf/qwen/q4.gguf", "/models/qwen/q4.gguf")]
    assert bind_args(gguf_binds(host_dir, "/models/qwen/q4.gguf")[0]).type == "bind"
    # Nothing to bind: a named volume, a Hugging Face download, a path outside /models.
    assert gguf_binds(Mount("/models", volume="llmfleet-dev-gguf", read_only=True), "/models/q4.gguf") == []
    assert gguf_binds(host_dir, None) == []
    assert gguf_binds(host_dir, "/elsewhere/q4.gguf") == []


def test_extra_args_come_after_llmfleets_own_and_env_reaches_every_kind() -> None:
    vllm = llmfleet.VllmProvider(
        kind="vllm", model="org/m", served_name="m", gpus="all",
        args=["--enable-auto-tool-choice", "--tool-call-parser", "hermes"], env={"VLLM_LOGGING_LEVEL": "DEBUG"},
    )  # fmt: skip
    assert vllm_command(vllm)[-3:] == ["--enable-auto-tool-choice", "--tool-call-parser", "hermes"]
    assert vllm_command(vllm)[:2] == ["org/m", "--served-model-name"]  # the model stays the positional
    assert "VLLM_LOGGING_LEVEL=DEBUG" in vllm_spec(vllm, "hf", "vc").envs()
    cpp = llmfleet.LlamaCppProvider(
        kind="llama_cpp", hf="org/r", alias="a", args=["--jinja", "-fa", "on"], env={"LLAMA_ARG_N_PREDICT": "8"}
    )
    assert llama_server_command(cpp)[-5:] == ["-np", "1", "--jinja", "-fa", "on"]
    assert "LLAMA_ARG_N_PREDICT=8" in llama_server_spec(cpp, "hf", Mount("/models", volume="g")).envs()
    py = llmfleet.LlamaCppPythonProvider(kind="llama_cpp_python", gguf="/models/m.gguf", alias="d",
                                         env={"CHAT_FORMAT": "chatml"})  # fmt: skip
    assert llama_cpp_python_env(py)["CHAT_FORMAT"] == "chatml"
    ollama = llmfleet.OllamaProvider(kind="ollama", models=["a"], env={"OLLAMA_KEEP_ALIVE": "24h"})
    assert ollama_spec(ollama, "vol").envs() == ["OLLAMA_HOST=0.0.0.0:11434", "OLLAMA_KEEP_ALIVE=24h"]


def test_llmfleets_own_settings_win_even_if_the_checks_were_bypassed() -> None:
    # validate refuses these; a program that built providers itself still cannot move the port.
    ollama = llmfleet.OllamaProvider(kind="ollama", models=["a"], env={"OLLAMA_HOST": "0.0.0.0:1"})
    assert ollama_spec(ollama, "vol").envs() == ["OLLAMA_HOST=0.0.0.0:11434"]
    py = llmfleet.LlamaCppPythonProvider(kind="llama_cpp_python", gguf="/models/m.gguf", alias="d", env={"PORT": "1"})
    assert llama_cpp_python_env(py)["PORT"] == "8000"


@pytest.mark.parametrize(
    ("kind", "token", "flag"),
    [
        ("llama_cpp", "-a", "-a"), ("llama_cpp", "--alias", "--alias"), ("llama_cpp", "-ngl", "-ngl"),
        ("llama_cpp", "--n-gpu-layers", "--n-gpu-layers"), ("llama_cpp", "-hfr", "-hfr"),
        ("vllm", "--port=9", "--port"), ("vllm", "--max_model_len", "--max-model-len"),
        ("vllm", "--served-model", "--served-model-name"), ("vllm", "-tp", "-tp"), ("vllm", "--api_key=x", "--api-key"),
        ("vllm", "--uds", "--uds"),
    ],
)  # fmt: skip
def test_every_spelling_of_a_derived_option_is_caught(kind: str, token: str, flag: str) -> None:
    from llmfleet._server_args import derived_flag

    found = derived_flag(kind, token)
    assert found is not None and found[0] == flag


@pytest.mark.parametrize(
    ("kind", "token"),
    [("llama_cpp", "--jinja"), ("llama_cpp", "-1"), ("llama_cpp", "-fa"), ("vllm", "--max-num-batched-tokens"),
     ("vllm", "--max"), ("vllm", "--quantization=awq"), ("vllm", "--trust-remote-code"), ("llama_cpp", "--mmproj")],
)  # fmt: skip
def test_options_llmfleet_does_not_set_pass(kind: str, token: str) -> None:
    from llmfleet._server_args import derived_flag

    # `--max` is a prefix of several options: argparse calls it ambiguous, it overrides nothing.
    assert derived_flag(kind, token) is None
