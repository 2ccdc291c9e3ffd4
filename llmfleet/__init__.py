"""llmfleet: one declaration of what a self-hosted LLM fleet serves.

The library is pure Python (no Pulumi import): it loads and validates the catalog and stack,
derives the LiteLLM gateway config and the declared model set, and checks a live gateway for
drift. The Pulumi components and the policy pack are thin layers over it.
"""

from ._catalog import (
    Alias,
    Catalog,
    ExternalModel,
    ExternalProvider,
    GroupMember,
    LlamaCppProvider,
    LlamaCppPythonProvider,
    OllamaProvider,
    Routes,
    VllmProvider,
)
from ._declared import declared_models
from ._errors import ConfigError, DriftCheckError, LlmfleetError, Problem, format_key_path
from ._gateway_config import backend_root, gateway_config, render_gateway_config
from ._load import Fleet, load_catalog, load_fleet, load_stack_settings, stack_names
from ._stack import BuildSpec, Gateway, Host, Images, Placement, StackSettings

__all__ = [
    "Alias",
    "BuildSpec",
    "Catalog",
    "ConfigError",
    "DriftCheckError",
    "ExternalModel",
    "ExternalProvider",
    "Fleet",
    "Gateway",
    "GroupMember",
    "Host",
    "Images",
    "LlamaCppProvider",
    "LlamaCppPythonProvider",
    "LlmfleetError",
    "OllamaProvider",
    "Placement",
    "Problem",
    "Routes",
    "StackSettings",
    "VllmProvider",
    "backend_root",
    "declared_models",
    "format_key_path",
    "gateway_config",
    "load_catalog",
    "load_fleet",
    "load_stack_settings",
    "render_gateway_config",
    "stack_names",
]
