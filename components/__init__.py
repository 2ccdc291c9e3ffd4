"""Pulumi components for the fleet. What each server runs is derived once, target-neutral, in
components/servers/; components/docker/ translates it into pulumi-docker resources (one component
per server kind, the Docker host, the gateway, the front proxy); components/fleet.py composes them."""

from .docker.gateway import Gateway, GatewayArgs
from .docker.host import DockerHost, DockerHostArgs
from .docker.llama_cpp import LlamaCppServer, LlamaCppServerArgs
from .docker.llama_cpp_python import LlamaCppPythonServer, LlamaCppPythonServerArgs
from .docker.ollama import OllamaServer, OllamaServerArgs
from .docker.ollama_model import OllamaModel, OllamaModelArgs, OllamaModelProvider
from .docker.vllm import VllmServer, VllmServerArgs
from .fleet import DeployedFleet, FleetSecrets, deploy_fleet, missing_api_keys, required_api_keys

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
