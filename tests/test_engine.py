"""The real Pulumi engine the end-to-end tests deploy with: built from the Go modules pinned under
tools/engine/ (tests/engine_build.py), each binary reporting the version it was built at."""

from __future__ import annotations

import pytest

from tests import engine_build


@pytest.fixture(scope="module")
def engine_bin():
    return engine_build.ensure_built()


def test_each_binary_reports_the_pinned_version(engine_bin):
    assert engine_build.versions(engine_bin) == {
        "pulumi": "v3.274.1",  # tools/engine/pulumi/go.mod
        "pulumi-language-python": "v3.274.1",  # ours, stamped with the CLI's version
        "pulumi-resource-docker": "5.2.0+llmfleet",  # the pulumi-docker SDK it serves, our build
    }


def test_the_scripts_the_host_and_cli_run_are_beside_them(engine_bin):
    for name in engine_build.BINARIES:
        path = engine_bin / name
        assert path.is_file() and path.stat().st_mode & 0o111, name
    # The exec script takes the arguments our host passes (--monitor, --engine, --root_directory, ...).
    assert "--root_directory" in (engine_bin / "pulumi-language-python-exec").read_text()


def test_the_docker_provider_is_kreuzwerkers_behind_the_bridge(engine_bin):
    import subprocess

    info = subprocess.run([engine_build.GO, "version", "-m", str(engine_bin / "pulumi-resource-docker")],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "github.com/kreuzwerker/terraform-provider-docker\tv0.0.0-20260916201441-96d331c98ff4" in info
    assert "github.com/pulumi/pulumi-terraform-bridge/v3\tv3.137.0" in info
