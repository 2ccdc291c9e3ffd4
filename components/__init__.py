"""Pulumi ComponentResources for the fleet: one per server kind, the Docker host, the gateway."""

from .docker_host import DockerHost, DockerHostArgs
from .fleet import DeployedFleet, FleetSecrets, deploy_fleet, missing_api_keys, required_api_keys
from .gateway import Gateway, GatewayArgs
from .llama_cpp import LlamaCppServer, LlamaCppServerArgs
from .llama_cpp_python import LlamaCppPythonServer, LlamaCppPythonServerArgs
from .ollama import OllamaServer, OllamaServerArgs
from .ollama_model import OllamaModel, OllamaModelArgs, OllamaModelProvider
from .vllm import VllmServer, VllmServerArgs

__all__ = [
    "DeployedFleet",
    "DockerHost",
    "DockerHostArgs",
    "FleetSecrets",
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
    "deploy_fleet",
    "missing_api_keys",
    "required_api_keys",
]
