"""Checks of images: every kind deployed has a pinned image, a built image can be built, and a
server's GPUs fit its image (a GPU image without a GPU, a CPU image given one)."""

from __future__ import annotations

import posixpath
import re

from ._catalog import LocalProvider
from ._checks_context import CheckContext
from ._stack import BuildSpec, ServerImage

# The one kind whose image may also be built from the project (BuildSpec): the hint shows both forms.
_BUILT_HINT = (
    "Set llmfleet:images.llama_cpp_python to a pinned image reference (registry/image:tag), or build it: "
    "`{build: docker/llama-cpp-python-cuda, tag: llmfleet/llama-cpp-python-cuda:0.3.16}` (`build` is a "
    "directory with a Dockerfile, relative to the project)."
)


def images(ctx: CheckContext) -> None:
    images = ctx.stack.images
    kinds = {p.kind for p in ctx.catalog.local_providers().values()}
    for kind in [*sorted(kinds), "litellm", "haproxy"]:
        ref = images.ref(kind)
        written = getattr(images, kind)
        path = ("config", "llmfleet:images", kind, *(("image",) if isinstance(written, ServerImage) else ()))
        if ref is None:
            ctx.error(
                ctx.stk,
                ("config", "llmfleet:images"),
                f"no image for '{kind}' providers",
                "missing-image",
                _BUILT_HINT if kind == "llama_cpp_python" else f"Set llmfleet:images.{kind} to a pinned image tag.",
            )
        elif isinstance(ref, str) and not pinned(ref):
            ctx.error(
                ctx.stk,
                path,
                f"image '{ref}' is not pinned",
                "image-unpinned",
                "Use a version tag or a digest, not `latest` or no tag.",
            )
        elif isinstance(ref, BuildSpec) and not pinned(ref.tag):
            ctx.error(
                ctx.stk,
                (*path, "tag"),
                f"image tag '{ref.tag}' is not pinned",
                "image-unpinned",
                "Give the built image an explicit tag.",
            )
    if isinstance(images.llama_cpp_python, BuildSpec):
        _remote_builds(ctx, images.llama_cpp_python)


# llama.cpp's published server images (ghcr.io/ggml-org/llama.cpp, .devops/*.Dockerfile and
# docs/docker.md): `server` and `server-bNNNN` are the CPU build; the others are built for a GPU
# backend: CUDA 12 and 13, ROCm, MUSA, Intel SYCL, Vulkan.
_LLAMA_CPP_REPO = re.compile(r"^(ghcr\.io/)?(ggml-org|ggerganov)/llama\.cpp$")
_LLAMA_CPP_GPU_TAG = re.compile(r"^server-(cuda13|cuda|rocm|musa|intel|vulkan)(-|$)")
_LLAMA_CPP_CPU_TAG = re.compile(r"^server(-b[0-9]+)?$")
_BACKENDS = {
    "cuda": "CUDA",
    "cuda13": "CUDA 13",
    "rocm": "ROCm",
    "musa": "MUSA",
    "intel": "Intel SYCL",
    "vulkan": "Vulkan",
}
# The project's own CUDA build of llama-cpp-python (docker/llama-cpp-python-cuda).
CUDA_BUILD = "docker/llama-cpp-python-cuda"
CUDA_IMAGE = "llmfleet/llama-cpp-python-cuda"


def _name_and_tag(ref: str) -> tuple[str, str]:
    ref = ref.split("@", 1)[0]
    name, _, tag = ref.rpartition(":")
    return (name, tag) if name and "/" not in tag else (ref, "")


def needs_gpu(kind: str, image: str | BuildSpec) -> str | None:
    """Why the image cannot serve without a GPU, or None when it can (or we cannot tell).

    vLLM: every image, unless the stack says otherwise: vllm/vllm-openai is built for CUDA
    (vLLM's CPU build is a separate image, which the stack marks `cpu: true`). llama.cpp: the
    GPU-backend tags of its published server image. llama-cpp-python: the project's CUDA build.
    Ollama's one image serves on both."""
    if kind == "vllm":
        return "vLLM's images are built for a GPU (its CPU build is a separate image)"
    if kind == "llama_cpp" and isinstance(image, str):
        name, tag = _name_and_tag(image)
        match = _LLAMA_CPP_GPU_TAG.match(tag) if _LLAMA_CPP_REPO.match(name) else None
        if match:
            return f"llama.cpp's `server-{match.group(1)}` images are built for {_BACKENDS[match.group(1)]} GPUs"
    cuda_build = isinstance(image, BuildSpec) and (
        posixpath.normpath(image.build) == CUDA_BUILD or image.cuda_architectures
    )
    if kind == "llama_cpp_python" and isinstance(image, BuildSpec) and cuda_build:
        return f"the image built from {image.build} is llama-cpp-python compiled for CUDA"
    if kind == "llama_cpp_python" and isinstance(image, str) and _name_and_tag(image)[0] == CUDA_IMAGE:
        # The tag the remote-build hint has users build by hand and name.
        return f"{CUDA_IMAGE} is built from {CUDA_BUILD}, llama-cpp-python compiled for CUDA"
    return None


def cpu_only(kind: str, image: str | BuildSpec) -> str | None:
    """Why the image cannot use a GPU, when that is certain from its name."""
    if not isinstance(image, str):
        return None
    name, tag = _name_and_tag(image)
    if kind == "llama_cpp" and _LLAMA_CPP_REPO.match(name) and _LLAMA_CPP_CPU_TAG.match(tag):
        return f"llama.cpp's `{tag}` image is its CPU build (GPU builds are tagged server-cuda, server-rocm, ...)"
    if kind == "llama_cpp_python" and name == "ghcr.io/abetlen/llama-cpp-python":
        return f"the official llama-cpp-python image is CPU-only (for CUDA, build {CUDA_BUILD})"
    return None


def _says_cpu(written: object) -> str:
    """The stack's image entry rewritten to say that the image runs on CPU."""
    if isinstance(written, BuildSpec):
        keys = written.model_dump(exclude_defaults=True)
        return "{" + ", ".join(f"{k}: {v}" for k, v in {**keys, "cpu": "true"}.items()) + "}"
    ref = written.image if isinstance(written, ServerImage) else written
    return f"{{image: {ref}, cpu: true}}"


def gpu_images(ctx: CheckContext) -> None:
    """A server without `gpus` on an image built for a GPU does not start (vLLM) or is not what the
    image is for: deploying it waits out the health check, half an hour for vLLM. An error, unless
    the stack says the image runs on CPU. A GPU given to a CPU-only image is only wasted: a warning."""
    images = ctx.stack.images
    for pname, p in ctx.catalog.local_providers().items():
        image = images.ref(p.kind)
        if image is None:
            continue  # missing-image says so
        if p.gpus is None and not images.runs_on_cpu(p.kind) and (why := needs_gpu(p.kind, image)):
            ctx.error(
                ctx.cat,
                ("providers", pname),
                f"declares no GPU, but its image {_shown(image)} needs one: {why}",
                "gpu-image-without-gpu",
                "Set `gpus: all` or a list of device ids; or, if the image does run on CPU, say so in the stack: "
                f"llmfleet:images.{p.kind}: `{_says_cpu(getattr(images, p.kind))}`.",
            )
        elif p.gpus is not None and (why := cpu_only(p.kind, image)):
            ctx.warn(
                ctx.cat,
                ("providers", pname, "gpus"),
                f"is given GPUs, but its image {_shown(image)} cannot use them: {why}",
                "gpu-with-cpu-image",
                _gpu_image_hint(p, image),
            )


def _shown(image: str | BuildSpec) -> str:
    return f"'{image}'" if isinstance(image, str) else f"'{image.tag}' (built from {image.build})"


def _gpu_image_hint(p: LocalProvider, image: str) -> str:
    if p.kind == "llama_cpp":
        name, tag = _name_and_tag(image)
        gpu_tag = tag.replace("server", "server-cuda", 1)
        return f"Use its GPU build (llmfleet:images.llama_cpp: {name}:{gpu_tag}), or remove `gpus`."
    return (f"Build the CUDA image (llmfleet:images.llama_cpp_python: {{build: {CUDA_BUILD}, "
            "tag: llmfleet/llama-cpp-python-cuda:0.3.16}), or remove `gpus`.")  # fmt: skip


def _remote_builds(ctx: CheckContext, spec: BuildSpec) -> None:
    """Builds through an ssh:// Docker host fail with terraform-provider-docker 4.5.0
    (kreuzwerker/terraform-provider-docker#972, open), which pulumi-docker 5.x wraps: refuse
    them before `pulumi up` starts, and say how to use a prebuilt image instead."""
    hosts = sorted({ctx.stack.host_of(n) for n, p in ctx.catalog.local_providers().items()
                    if p.kind == "llama_cpp_python"})  # fmt: skip
    for host in hosts:
        docker_url = ctx.stack.hosts[host].docker if host in ctx.stack.hosts else None
        if docker_url and docker_url.startswith("ssh://"):
            ctx.error(
                ctx.stk,
                ("config", "llmfleet:images", "llama_cpp_python", "build"),
                f"cannot build '{spec.tag}' on host '{host}' over {docker_url}: image builds through ssh:// "
                "fail in terraform-provider-docker 4.5.0 (kreuzwerker/terraform-provider-docker#972)",
                "remote-build",
                f"Build it on '{host}' (`docker build -t {spec.tag} {spec.build}`) and set "
                f"llmfleet:images.llama_cpp_python to '{spec.tag}': a present image is used, not pulled.",
            )


def pinned(ref: str) -> bool:
    """A tag other than `latest`, or a digest."""
    if "@sha256:" in ref:
        return True
    name, _, tag = ref.rpartition(":")
    if not name or "/" in tag:  # no tag at all (the colon belonged to a registry port)
        return False
    return tag != "latest"
