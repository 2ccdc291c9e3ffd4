"""One Docker host of the fleet: its provider, the fleet's private network on it, and the
volumes servers share there (Hugging Face cache, vLLM compile cache, GGUF files)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from llmfleet import Host
from llmfleet._docker_names import network_name, volume_name

from ..servers.gguf import gguf_mount
from ..servers.spec import Mount
from .container import Placement
from .engine_check import DockerEngineCheck, DockerEngineCheckArgs


@dataclass
class DockerHostArgs:
    stack: str
    host: Host
    name: str  # the host's name in the stack


class DockerHost(pulumi.ComponentResource):
    provider: docker.Provider | None
    network: docker.Network
    hf_cache: docker.Volume
    vllm_cache: docker.Volume
    gguf: Mount
    network_name: pulumi.Output[str]
    engine_check: DockerEngineCheck

    def __init__(self, name: str, args: DockerHostArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llmfleet:index:DockerHost", name, {}, opts)
        self._args = args
        # No explicit provider for a host without an endpoint: the default one honours DOCKER_HOST.
        self.provider = (
            docker.Provider(
                f"{name}-docker", docker.ProviderArgs(host=args.host.docker), opts=pulumi.ResourceOptions(parent=self)
            )
            if args.host.docker
            else None
        )
        # Nothing is created on the host before its engine is known to be new enough.
        self.engine_check = DockerEngineCheck(
            f"{name}-engine-check",
            DockerEngineCheckArgs(host=args.name, docker_host=args.host.docker),
            opts=pulumi.ResourceOptions(parent=self),
        )
        child = pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=[self.engine_check])
        network = docker.NetworkArgs(name=network_name(args.stack), driver="bridge")
        self.network = docker.Network(f"{name}-network", network, opts=child)
        # Caches survive `pulumi destroy`: re-downloading weights costs hours, not seconds.
        keep = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(retain_on_delete=True))

        def cache(what: str) -> docker.Volume:
            return docker.Volume(f"{name}-{what}", docker.VolumeArgs(name=volume_name(args.stack, what)), opts=keep)

        self.hf_cache = cache("hf-cache")
        self.vllm_cache = cache("vllm-cache")
        gguf_volume = None
        if not args.host.gguf_dir:
            gguf_volume = cache("gguf").name
        self.gguf = gguf_mount(args.host, gguf_volume)
        self.network_name = self.network.name
        self.register_outputs({"network": self.network_name})

    def placement(self, publish_ip: str | None) -> Placement:
        """Where a container goes on this host: its network, its provider, after its engine check."""
        args = self._args
        return Placement(args.stack, args.name, self.network_name, self.provider, publish_ip, self.engine_check,
                         args.host.docker)  # fmt: skip
