"""The llama-cpp-python server. Its official image is CPU-only, so for a GPU the stack builds
docker/llama-cpp-python-cuda on the target host (no registry needed), or names its own image."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker as docker

from llmfleet import BuildSpec, LlamaCppPythonProvider

from ..docker.host import gguf_binds
from .spec import (
    ContainerSpec,
    Mount,
    Placement,
    ServerComponent,
    create_timeout,
    gpu_request,
    host_triggers,
    pulled_image,
    python_http_check,
)


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


def build_triggers(context: Path) -> dict[str, str]:
    """Rebuild when any file of the build context changes (RemoteImage does not look itself)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        digest.update(path.relative_to(context).as_posix().encode())
        digest.update(path.read_bytes())
    return {"context": digest.hexdigest()}


def built_image(
    name: str, spec: BuildSpec, project_dir: Path, placement: Placement, parent: pulumi.Resource
) -> docker.RemoteImage:
    context = project_dir / spec.build
    build_args = {"CUDA_ARCHITECTURES": spec.cuda_architectures} if spec.cuda_architectures else None
    return docker.RemoteImage(
        f"{name}-image",
        docker.RemoteImageArgs(
            name=spec.tag,
            build=docker.RemoteImageBuildArgs(context=str(context), dockerfile="Dockerfile", build_args=build_args),
            # The context's files and the build arguments: a change to either rebuilds.
            triggers={**build_triggers(context), **(build_args or {}), **host_triggers(placement)},
            keep_locally=True,
        ),
        opts=pulumi.ResourceOptions(
            parent=parent,
            provider=placement.provider,
            # A CUDA compile is the longest create of a fleet: the stack sets its budget.
            custom_timeouts=create_timeout(spec.timeout_minutes * 60),
            depends_on=placement.after_ready(),
        ),
    )


@dataclass
class LlamaCppPythonServerArgs:
    provider: LlamaCppPythonProvider
    image: str | BuildSpec
    placement: Placement
    gguf: Mount
    project_dir: Path


class LlamaCppPythonServer(ServerComponent):
    image: docker.RemoteImage

    def __init__(self, name: str, args: LlamaCppPythonServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llmfleet:index:LlamaCppPythonServer", name, {}, opts)
        if isinstance(args.image, BuildSpec):
            self.image = built_image(name, args.image, args.project_dir, args.placement, self)
        else:
            self.image = pulled_image(name, args.image, args.placement, self)
        spec = llama_cpp_python_spec(args.provider, args.gguf)
        self._serve(name, spec, self.image.image_id, args.placement, args.provider.served_names)
        self._register()
