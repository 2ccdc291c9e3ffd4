"""Stacks deployed before the components moved into components/docker/ still load their dynamic
providers: Pulumi pickled each one by reference to the module it lived in, and unpickles that
reference from the state for a refresh or a delete (components/ollama_model.py says why)."""

from __future__ import annotations

import base64
import subprocess
import sys

import pytest
from pulumi.dynamic.dynamic import serialize_provider

from components.docker.container_health import ContainerHealthProvider
from components.docker.engine_check import DockerEngineCheckProvider
from components.docker.ollama_model import OllamaModelProvider

from .pulumi_program import PROJECT

# `serialize_provider(Provider())` as Pulumi 3.272 wrote it into the state with the modules at
# their old paths (main at f1ed20e): these exact blobs are in deployed stacks.
BEFORE_THE_MOVE = {
    "components.ollama_model.OllamaModelProvider": (
        "gASVRQAAAAAAAACMF2NvbXBvbmVudHMub2xsYW1hX21vZGVslIwTT2xsYW1hTW9kZWxQcm92aWRlcpSTlCmBlH2UjAdfcnVubmVylE5zYi4="
    ),
    "components.container_health.ContainerHealthProvider": (
        "gASVTQAAAAAAAACMG2NvbXBvbmVudHMuY29udGFpbmVyX2hlYWx0aJSMF0NvbnRhaW5lckhlYWx0aFByb3ZpZGVylJOUKYGUfZSMB19ydW5uZXKU"
        "TnNiLg=="
    ),
    "components.docker_engine_check.DockerEngineCheckProvider": (
        "gASVUgAAAAAAAACMHmNvbXBvbmVudHMuZG9ja2VyX2VuZ2luZV9jaGVja5SMGURvY2tlckVuZ2luZUNoZWNrUHJvdmlkZXKUk5QpgZR9lIwHX3J1"
        "bm5lcpROc2Iu"
    ),
}
# Where each lives now, and a diff (no docker CLI needed) that shows the loaded class is today's code.
NOW = {
    "components.ollama_model.OllamaModelProvider": (
        OllamaModelProvider,
        {"docker_host": None, "container": "c", "tag": "qwen2.5:0.5b"},
        {"tag": "qwen2.5:1.5b"},
        ["tag"],
    ),
    "components.container_health.ContainerHealthProvider": (
        ContainerHealthProvider,
        {"container": "0123abcd", "docker_host": None},
        {"container": "4567ef01"},
        ["container"],
    ),
    "components.docker_engine_check.DockerEngineCheckProvider": (
        DockerEngineCheckProvider,
        {"host": "gpu-1", "docker_host": None},
        {"docker_host": "ssh://ops@gpu-1"},
        ["docker_host"],
    ),
}

SCRIPT = """\
import base64, importlib, sys
import dill
p = dill.loads(base64.b64decode(sys.argv[1]))
import pulumi.runtime.settings as s
assert s.SETTINGS.monitor is None, 'importing the provider started a Pulumi program'
module, _, name = sys.argv[2].rpartition('.')
assert type(p) is getattr(importlib.import_module(module), name), (type(p), sys.argv[2])
olds = eval(sys.argv[3])
print(p.diff('id', olds, {**olds, **eval(sys.argv[4])}).replaces)
"""


@pytest.mark.parametrize("reference", sorted(BEFORE_THE_MOVE))
def test_a_provider_pickled_at_its_old_path_loads_as_pulumi_runs_it(reference: str) -> None:
    blob = BEFORE_THE_MOVE[reference]
    module, _, name = reference.rpartition(".")
    # The blob names the old module and the class, as the state does.
    assert module.encode() in base64.b64decode(blob) and name.encode() in base64.b64decode(blob)
    cls, olds, change, replaces = NOW[reference]
    now = f"{cls.__module__}.{cls.__qualname__}"
    assert now.startswith("components.docker.")
    done = subprocess.run([sys.executable, "-c", SCRIPT, blob, now, repr(olds), repr(change)], capture_output=True,
                          text=True, timeout=60, cwd=PROJECT)  # fmt: skip
    assert (done.returncode, done.stdout.strip()) == (0, repr(replaces)), done.stderr


@pytest.mark.parametrize("cls", [OllamaModelProvider, ContainerHealthProvider, DockerEngineCheckProvider])
def test_a_provider_pickled_today_names_its_module_under_components_docker(cls: type) -> None:
    """What new resources hold: both paths are in states from now on, and both must keep loading."""
    blob = base64.b64decode(serialize_provider(cls()))
    assert cls.__module__.encode() in blob and cls.__module__.startswith("components.docker.")
