"""llama-server on Docker: its image pulled, its container (components/servers/llama_cpp.py), the
Hugging Face token."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from llmfleet import LlamaCppProvider

from ..servers.llama_cpp import llama_server_spec
from ..servers.spec import Mount
from .container import Placement, ServerComponent, pulled_image, secret_env


@dataclass
class LlamaCppServerArgs:
    provider: LlamaCppProvider
    image: str
    placement: Placement
    hf_cache: pulumi.Input[str]
    gguf: Mount
    hf_token: pulumi.Input[str] | None = None


class LlamaCppServer(ServerComponent):
    def __init__(self, name: str, args: LlamaCppServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("llmfleet:index:LlamaCppServer", name, {}, opts)
        image = pulled_image(name, args.image, args.placement, self)
        spec = llama_server_spec(args.provider, args.hf_cache, args.gguf)
        token = secret_env({"HF_TOKEN": args.hf_token})
        self._serve(name, spec, image.image_id, args.placement, args.provider.served_names, extra_env=token)
        self._register()
