"""The llama-cpp-python server: one GGUF, configured through its environment. Its official image is
CPU-only, so for a GPU the stack builds docker/llama-cpp-python-cuda (components/docker/ builds it
on the target host, no registry needed), or names its own image."""

from __future__ import annotations

from llmfleet import LlamaCppPythonProvider

from .gguf import gguf_binds
from .spec import ContainerSpec, Mount, gpu_request, python_http_check


def n_gpu_layers(p: LlamaCppPythonProvider) -> int:
    # The server's own default is 0 (all on CPU): with a GPU, offload every layer (-1).
    if p.gpu_layers is not None:
        return p.gpu_layers
    return -1 if p.gpus is not None else 0


def llama_cpp_python_env(p: LlamaCppPythonProvider) -> dict[str, str]:
    # The catalog's own settings first, llmfleet's over them (validate refuses any overlap).
    env = {
        **p.env,
        "MODEL": p.gguf,
        "MODEL_ALIAS": p.alias,  # the id /v1/models reports
        "N_GPU_LAYERS": str(n_gpu_layers(p)),
        "HOST": "0.0.0.0",
        "PORT": str(p.listen_port),
    }
    if p.context_length:
        env["N_CTX"] = str(p.context_length)
    return env


def llama_cpp_python_spec(p: LlamaCppPythonProvider, gguf: Mount) -> ContainerSpec:
    return ContainerSpec(
        kind="llama_cpp_python",
        port=p.listen_port,
        env=llama_cpp_python_env(p),
        # No /health endpoint: readiness is /v1/models answering.
        healthcheck=python_http_check(f"http://127.0.0.1:{p.listen_port}/v1/models", start_period_s=600),
        wait_timeout_s=600,
        mounts=[gguf],
        binds=gguf_binds(gguf, p.gguf),
        gpus=gpu_request(p.gpus),
    )
