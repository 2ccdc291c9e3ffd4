"""Checks of images: every kind deployed has a pinned image, and a built image can be built."""

from __future__ import annotations

from ._checks_context import CheckContext
from ._stack import BuildSpec

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
        ref = getattr(images, kind)
        path = ("config", "llmfleet:images", kind)
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
