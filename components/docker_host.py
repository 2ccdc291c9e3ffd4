"""One Docker host of the fleet: its provider, the fleet's private network on it, and the
volumes servers share there (Hugging Face cache, vLLM compile cache, GGUF files)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from llmfleet import Host

from .server_container import Mount

GGUF_DIR = "/models"


def gguf_mount(host: Host, volume: pulumi.Input[str] | None) -> Mount:
    """The operator's GGUF directory when the stack names one, else a named volume; read-only."""
    if host.gguf_dir:
        return Mount(GGUF_DIR, host_path=host.gguf_dir, read_only=True)
    return Mount(GGUF_DIR, volume=volume, read_only=True)


@dataclass
class DockerHostArgs:
    stack: str
    host: Host


class DockerHost(pulumi.ComponentResource):
    provider: docker.Provider | None
    network: docker.Network
    hf_cache: docker.Volume
    vllm_cache: docker.Volume
    gguf: Mount
    network_name: pulumi.Output[str]

    def __init__(self, name: str, args: DockerHostArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llmfleet:index:DockerHost", name, {}, opts)
        prefix = f"llmfleet-{args.stack}"
        # No explicit provider for a host without an endpoint: the default one honours DOCKER_HOST.
        self.provider = (
            docker.Provider(
                f"{name}-docker", docker.ProviderArgs(host=args.host.docker), opts=pulumi.ResourceOptions(parent=self)
            )
            if args.host.docker
            else None
        )
        child = pulumi.ResourceOptions(parent=self, provider=self.provider)
        self.network = docker.Network(f"{name}-network", docker.NetworkArgs(name=prefix, driver="bridge"), opts=child)
        # Caches survive `pulumi destroy`: re-downloading weights costs hours, not seconds.
        keep = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(retain_on_delete=True))
        self.hf_cache = docker.Volume(f"{name}-hf-cache", docker.VolumeArgs(name=f"{prefix}-hf-cache"), opts=keep)
        self.vllm_cache = docker.Volume(f"{name}-vllm-cache", docker.VolumeArgs(name=f"{prefix}-vllm-cache"), opts=keep)
        gguf_volume = None
        if not args.host.gguf_dir:
            gguf_volume = docker.Volume(f"{name}-gguf", docker.VolumeArgs(name=f"{prefix}-gguf"), opts=keep).name
        self.gguf = gguf_mount(args.host, gguf_volume)
        self.network_name = self.network.name
        self.register_outputs({"network": self.network_name})
