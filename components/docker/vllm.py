"""vLLM on Docker: its image pulled, its container (components/servers/vllm.py), the Hugging Face token."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from llmfleet import VllmProvider

from ..servers.spec import Mount
from ..servers.vllm import vllm_spec
from .container import Placement, ServerComponent, pulled_image, secret_env


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
