"""vLLM: one model, its served name always passed, shared memory through the host's IPC."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from llmfleet import VllmProvider

from ..docker.host import GGUF_DIR, gguf_binds
from .spec import (
    ContainerSpec,
    Mount,
    Placement,
    ServerComponent,
    gpu_request,
    pulled_image,
    python_http_check,
    secret_env,
)

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


@dataclass
class VllmServerArgs:
    provider: VllmProvider
    image: str
    placement: Placement
    hf_cache: pulumi.Input[str]
    vllm_cache: pulumi.Input[str]
    hf_token: pulumi.Input[str] | None = None
    gguf: Mount | None = None  # the host's GGUF directory, for a model served from a path under /models


class VllmServer(ServerComponent):
    def __init__(self, name: str, args: VllmServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llmfleet:index:VllmServer", name, {}, opts)
        image = pulled_image(name, args.image, args.placement, self)
        spec = vllm_spec(args.provider, args.hf_cache, args.vllm_cache, args.gguf)
        token = secret_env({"HF_TOKEN": args.hf_token})
        self._serve(name, spec, image.image_id, args.placement, args.provider.served_names, extra_env=token)
        self._register()
