"""vLLM: one model, its served name always passed, shared memory through the host's IPC."""

from __future__ import annotations

import pulumi

from llmfleet import VllmProvider

from .gguf import GGUF_DIR, gguf_binds
from .spec import ContainerSpec, Mount, gpu_request, python_http_check

HF_CACHE = "/root/.cache/huggingface"
VLLM_CACHE = "/root/.cache/vllm"  # torch.compile and CUDA graph caches: minutes saved per restart


def vllm_command(p: VllmProvider) -> list[str]:
    """Arguments to the image's entrypoint (`vllm serve` in current images)."""
    cmd = [
        p.model,
        "--served-model-name", p.served_name,
        "--host", "0.0.0.0",
        "--port", str(p.listen_port),
        "--gpu-memory-utilization", f"{p.gpu_memory_utilization:g}",
        "--tensor-parallel-size", str(p.tensor_parallel_size),
    ]  # fmt: skip
    if p.max_model_len:
        cmd += ["--max-model-len", str(p.max_model_len)]
    if p.max_num_seqs:
        cmd += ["--max-num-seqs", str(p.max_num_seqs)]
    # The catalog's own options last; validate refuses any that would override the ones above.
    return [*cmd, *p.args]


def vllm_spec(
    p: VllmProvider, hf_cache: pulumi.Input[str], vllm_cache: pulumi.Input[str], gguf: Mount | None = None
) -> ContainerSpec:
    """The server's container. vLLM also serves a GGUF file or a model directory: a `model` under
    /models reads the host's GGUF directory, mounted only then, so fleets that serve Hugging Face
    ids keep the container they had."""
    local = gguf is not None and p.model.startswith(f"{GGUF_DIR}/")
    return ContainerSpec(
        kind="vllm",
        port=p.listen_port,
        command=vllm_command(p),
        env={**p.env, "HF_HOME": HF_CACHE},
        # Nothing listens until the weights are downloaded and loaded: allow half an hour.
        healthcheck=python_http_check(f"http://127.0.0.1:{p.listen_port}/health", start_period_s=1800),
        wait_timeout_s=1800,
        mounts=[Mount(HF_CACHE, volume=hf_cache), Mount(VLLM_CACHE, volume=vllm_cache), *([gguf] if local else [])],
        binds=gguf_binds(gguf, p.model) if gguf and local else [],
        gpus=gpu_request(p.gpus),
        ipc_host=True,  # tensor-parallel workers share memory through /dev/shm
    )
