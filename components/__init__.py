"""Pulumi ComponentResources for the fleet: one per server kind, the Docker host, the gateway."""

from .docker.host import DockerHost, DockerHostArgs
from .docker.ollama_model import OllamaModel, OllamaModelArgs, OllamaModelProvider
from .fleet import DeployedFleet, FleetSecrets, deploy_fleet, missing_api_keys, required_api_keys
from .servers.gateway import Gateway, GatewayArgs
from .servers.llama_cpp import LlamaCppServer, LlamaCppServerArgs
from .servers.llama_cpp_python import LlamaCppPythonServer, LlamaCppPythonServerArgs
from .servers.ollama import OllamaServer, OllamaServerArgs
from .servers.vllm import VllmServer, VllmServerArgs

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
