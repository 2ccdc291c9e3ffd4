"""The Docker target: the specs of components/servers/ translated into pulumi-docker resources (one
component per server kind, the gateway, the front proxy, each Docker host) and the Docker-only
dynamic providers (the health wait, the engine check, the Ollama models), which run the docker CLI
where `pulumi up` runs. The only package that imports pulumi_docker (tests/test_layout.py)."""

from .fleet import DeployedFleet, deploy_to_docker
from .gateway import Gateway, GatewayArgs
from .host import DockerHost, DockerHostArgs
from .llama_cpp import LlamaCppServer, LlamaCppServerArgs
from .llama_cpp_python import LlamaCppPythonServer, LlamaCppPythonServerArgs
from .ollama import OllamaServer, OllamaServerArgs
from .ollama_model import OllamaModel, OllamaModelArgs, OllamaModelProvider
from .vllm import VllmServer, VllmServerArgs

__all__ = [
    "DeployedFleet",
    "DockerHost",
    "DockerHostArgs",
    "Gateway",
    "GatewayArgs",
    "LlamaCppPythonServer",
    "LlamaCppPythonServerArgs",
    "LlamaCppServer",
    "LlamaCppServerArgs",
    "OllamaModel",
    "OllamaModelArgs",
    "OllamaModelProvider",
    "OllamaServer",
    "OllamaServerArgs",
    "VllmServer",
    "VllmServerArgs",
    "deploy_to_docker",
]
