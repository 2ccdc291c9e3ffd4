"""The folder layout holds what it says (README, "Layout"): what each server runs is derived
in components/servers/, which imports no target; only components/docker/ imports pulumi-docker and
only components/kubernetes/ pulumi-kubernetes, neither imports the other; the
compose bench translates the same specs without the Docker target's code; llmfleet/ imports no
Pulumi. Read from the source's import statements, so a new file is covered as soon as it exists."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from .pulumi_program import PROJECT

PRODUCT = ["__main__.py", "components", "llmfleet", "bench", "policy"]


def modules() -> dict[str, Path]:
    found = {}
    for top in PRODUCT:
        root = PROJECT / top
        for path in sorted([root] if root.is_file() else root.rglob("*.py")):
            found[path.relative_to(PROJECT).with_suffix("").as_posix().replace("/", ".")] = path
    return found


def imports(name: str, path: Path) -> set[str]:
    """Every module `path` imports, relative imports made absolute (`..docker.host` from
    components.servers.ollama is components.docker.host)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # `from . import x`
    return found


MODULES = modules()


def importers(prefixes: tuple[str, ...]) -> dict[str, list[str]]:
    """For each module, what it imports of `prefixes` (a module and its submodules)."""

    def wanted(module: str) -> bool:
        return any(module == p or module.startswith(f"{p}.") for p in prefixes)

    return {name: sorted(m for m in imports(name, path) if wanted(m)) for name, path in MODULES.items()}


def test_the_scan_sees_the_imports_it_looks_for() -> None:
    """A scan that found nothing would pass everything below."""
    assert "pulumi_docker" in imports("components.docker.container", MODULES["components.docker.container"])
    assert "components.servers.spec" in imports("components.docker.container", MODULES["components.docker.container"])
    assert "components.docker.fleet" in imports("components.fleet", MODULES["components.fleet"])  # in a function


@pytest.mark.parametrize(("sdk", "target"), [("pulumi_docker", "docker"), ("pulumi_kubernetes", "kubernetes")])
def test_only_each_targets_package_imports_its_provider_sdk(sdk: str, target: str) -> None:
    outside = {name: found for name, found in importers((sdk,)).items()
               if found and not name.startswith(f"components.{target}.")}  # fmt: skip
    assert outside == {}
    assert any(found for name, found in importers((sdk,)).items() if name.startswith(f"components.{target}."))


def test_the_targets_import_nothing_of_each_other() -> None:
    for this, other in (("docker", "kubernetes"), ("kubernetes", "docker")):
        found = {name: found for name, found in importers((f"components.{other}", f"pulumi_{other}")).items()
                 if found and name.startswith(f"components.{this}.")}  # fmt: skip
        assert found == {}, this


@pytest.mark.parametrize("prefix", ["components.servers.", "bench.compose_fleet"])
def test_the_neutral_specs_and_the_compose_translation_import_no_docker_target(prefix: str) -> None:
    found = {name: found for name, found in importers(("pulumi_docker", "components.docker")).items()
             if found and name.startswith(prefix)}  # fmt: skip
    assert found == {}
    assert any(name.startswith(prefix) for name in MODULES)


def test_the_library_imports_no_pulumi() -> None:
    found = {name: found for name, found in importers(("pulumi", "pulumi_docker", "components")).items()
             if found and name.startswith("llmfleet.")}  # fmt: skip
    assert found == {}


def test_the_specs_and_the_compose_translation_load_no_target() -> None:
    """At run time too: components/fleet.py imports a target's translation only once it deploys to
    it, so what needs only the specs loads no pulumi_docker."""
    targets = ("pulumi_docker", "components.docker", "pulumi_kubernetes", "components.kubernetes")
    code = ("import sys, components, components.servers.fleet, bench.compose_fleet; "
            f"print(sorted(m for m in {targets!r} if m in sys.modules))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=PROJECT)
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr
