"""llama.cpp's native llama-server: one GGUF, always given --alias, -ngl and --port."""

from __future__ import annotations

import pulumi

from llmfleet import LlamaCppProvider

from .gguf import gguf_binds
from .spec import ContainerSpec, Healthcheck, Mount, gpu_request
from .vllm import HF_CACHE


def gpu_layers(p: LlamaCppProvider) -> int:
    """Every layer on the GPU when one is given, none otherwise, unless the catalog says."""
    if p.gpu_layers is not None:
        return p.gpu_layers
    return 999 if p.gpus is not None else 0


def llama_server_command(p: LlamaCppProvider) -> list[str]:
    source = ["-m", p.gguf] if p.gguf else ["-hf", p.hf or ""]
    # --alias always: without it /v1/models reports the file path as the model id.
    # --port always: the default is changing upstream.
    cmd = [*source, "--alias", p.alias, "--host", "0.0.0.0", "--port", str(p.listen_port), "-ngl", str(gpu_layers(p))]
    # llama-server splits -c across its -np slots: each request gets the catalog's context only
    # if the whole is that times the slots (the gateway is told max_input_tokens = context_length).
    # -np always: its default is version-dependent (newer builds choose several slots themselves).
    slots = p.parallel or 1
    if p.context_length:
        cmd += ["-c", str(p.context_length * slots)]
    # The catalog's own options last; validate refuses any that would override the ones above.
    return [*cmd, "-np", str(slots), *p.args]


def llama_server_env(p: LlamaCppProvider) -> dict[str, str]:
    # -hf downloads land in the shared Hugging Face cache volume; the catalog's variables beside them.
    return {**p.env, "LLAMA_CACHE": f"{HF_CACHE}/llama.cpp", "HF_HOME": HF_CACHE}


def llama_server_spec(p: LlamaCppProvider, hf_cache: pulumi.Input[str], gguf: Mount) -> ContainerSpec:
    return ContainerSpec(
        kind="llama_cpp",
        port=p.listen_port,
        command=llama_server_command(p),
        env=llama_server_env(p),
        # /health is 503 while loading and 200 when ready; /v1/models answers 200 even while loading.
        healthcheck=Healthcheck(["CMD", "curl", "-fsS", f"http://127.0.0.1:{p.listen_port}/health"], 900),
        wait_timeout_s=900,
        mounts=[Mount(HF_CACHE, volume=hf_cache), gguf],
        binds=gguf_binds(gguf, p.gguf),
        gpus=gpu_request(p.gpus),
    )
