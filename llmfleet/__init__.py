"""llmfleet: one declaration of what a self-hosted LLM fleet serves.

The library is pure Python (no Pulumi import): it loads and validates the catalog and stack,
derives the LiteLLM gateway config and the declared model set, and checks a live gateway for
drift. The Pulumi components and the policy pack are thin layers over it.

Names are imported on first use (PEP 562) so that `python -m llmfleet drift --help` and the
cron path start fast: httpx and pydantic are not loaded until they are needed.
"""

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING

# The one place the version is written: pyproject.toml reads it from here.
__version__ = "0.1.0"

_EXPORTS = {
    "Alias": "_catalog",
    "Catalog": "_catalog",
    "DeploymentLimits": "_catalog",
    "ExternalModel": "_catalog",
    "ExternalProvider": "_catalog",
    "GatewaySettings": "_catalog",
    "GroupMember": "_catalog",
    "LlamaCppProvider": "_catalog",
    "LlamaCppPythonProvider": "_catalog",
    "OllamaModel": "_catalog",
    "OllamaProvider": "_catalog",
    "Routes": "_catalog",
    "VllmProvider": "_catalog",
    "ollama_listed_name": "_catalog",
    "declared_models": "_declared",
    "CheckResult": "_report",
    "Report": "_report",
    "Limits": "_http",
    "CertificatesError": "_http",
    "Verdict": "_report",
    "backend_urls": "_drift",
    "check_drift": "_drift",
    "check_declared": "_drift",
    "ConfigError": "_errors",
    "LlmfleetError": "_errors",
    "Problem": "_errors",
    "format_key_path": "_errors",
    "backend_root": "_gateway_config",
    "gateway_config": "_gateway_config",
    "render_gateway_config": "_gateway_config",
    "Fleet": "_load",
    "load_catalog": "_load",
    "load_fleet": "_load",
    "load_stack_settings": "_load",
    "stack_names": "_project",
    "model_diff": "_model_diff",
    "ProbeTarget": "_probe",
    "probe": "_probe",
    "probe_declared": "_probe",
    "probe_targets": "_probe",
    "BuildSpec": "_stack",
    "ExistingVolume": "_stack",
    "Gateway": "_stack",
    "Host": "_stack",
    "Images": "_stack",
    "Placement": "_stack",
    "ServerImage": "_stack",
    "StackSettings": "_stack",
}
_RENAMED = {"check_drift": "check"}

__all__ = [
    "Alias",
    "BuildSpec",
    "Catalog",
    "CertificatesError",
    "CheckResult",
    "ConfigError",
    "DeploymentLimits",
    "ExistingVolume",
    "ExternalModel",
    "ExternalProvider",
    "Fleet",
    "Gateway",
    "GatewaySettings",
    "GroupMember",
    "Host",
    "Images",
    "Limits",
    "LlamaCppProvider",
    "LlamaCppPythonProvider",
    "LlmfleetError",
    "OllamaModel",
    "OllamaProvider",
    "Placement",
    "ProbeTarget",
    "Problem",
    "Report",
    "Routes",
    "ServerImage",
    "StackSettings",
    "Verdict",
    "VllmProvider",
    "backend_root",
    "backend_urls",
    "check_declared",
    "check_drift",
    "declared_models",
    "format_key_path",
    "gateway_config",
    "load_catalog",
    "load_fleet",
    "load_stack_settings",
    "model_diff",
    "ollama_listed_name",
    "probe",
    "probe_declared",
    "probe_targets",
    "render_gateway_config",
    "stack_names",
]


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'llmfleet' has no attribute {name!r}")
    value = getattr(_importlib.import_module(f".{module}", __name__), _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if _TYPE_CHECKING:  # what type checkers and IDEs see
    from ._catalog import (
        Alias,
        Catalog,
        DeploymentLimits,
        ExternalModel,
        ExternalProvider,
        GatewaySettings,
        GroupMember,
        LlamaCppProvider,
        LlamaCppPythonProvider,
        OllamaModel,
        OllamaProvider,
        Routes,
        VllmProvider,
        ollama_listed_name,
    )
    from ._declared import declared_models
    from ._drift import backend_urls, check_declared
    from ._drift import check as check_drift
    from ._errors import ConfigError, LlmfleetError, Problem, format_key_path
    from ._gateway_config import backend_root, gateway_config, render_gateway_config
    from ._http import CertificatesError, Limits
    from ._load import Fleet, load_catalog, load_fleet, load_stack_settings
    from ._model_diff import model_diff
    from ._probe import ProbeTarget, probe, probe_declared, probe_targets
    from ._project import stack_names
    from ._report import CheckResult, Report, Verdict
    from ._stack import BuildSpec, ExistingVolume, Gateway, Host, Images, Placement, ServerImage, StackSettings
