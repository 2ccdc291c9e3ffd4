"""The host's GGUF directory, as every server that reads GGUF files sees it: at /models, read-only,
the operator's directory when the stack names one (`gguf_dir`), else a volume the target creates."""

from __future__ import annotations

import pulumi

from llmfleet import Host

from .spec import FileBind, Mount

GGUF_DIR = "/models"


def gguf_mount(host: Host, volume: pulumi.Input[str] | None) -> Mount:
    """The operator's GGUF directory when the stack names one, else a named volume; read-only."""
    if host.gguf_dir:
        return Mount(GGUF_DIR, host_path=host.gguf_dir, read_only=True)
    return Mount(GGUF_DIR, volume=volume, read_only=True)


def gguf_binds(mount: Mount, gguf: str | None) -> list[FileBind]:
    """The model file itself, bound over its place in the GGUF directory, when that directory is
    the operator's (`gguf_dir`): Docker then refuses to start a server whose file is not on the
    host, naming the file, at once. A file in a named volume cannot be checked that way."""
    if not gguf or not mount.host_path or not gguf.startswith(f"{GGUF_DIR}/"):
        return []
    relative = gguf.removeprefix(f"{GGUF_DIR}/")
    return [FileBind(source=f"{mount.host_path.rstrip('/')}/{relative}", target=gguf)]
