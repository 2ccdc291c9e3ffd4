"""llama-cpp-python on Docker: its image pulled, or built on the target host from the stack's build
context (docker/llama-cpp-python-cuda), and its container (components/servers/llama_cpp_python.py)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker as docker

from llmfleet import BuildSpec, LlamaCppPythonProvider

from ..servers.llama_cpp_python import llama_cpp_python_spec
from ..servers.spec import Mount
from .container import Placement, ServerComponent, create_timeout, host_key, pulled_image


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
            triggers={**build_triggers(context), **(build_args or {}), **host_key(placement)},
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
