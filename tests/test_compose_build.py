"""Docker Compose, built from the Go module pinned under tools/compose/ (tests/compose_build.py):
it runs, standalone and as the Docker CLI's plugin, and reports the version it was built at."""

from __future__ import annotations

import subprocess

import pytest

from tests import compose_build
from tests.docker_engine import docker_cli


@pytest.fixture(scope="module")
def compose():
    return compose_build.ensure_built()


def test_the_binary_reports_the_pinned_version(compose):
    assert compose_build.VERSION == "v5.6.0"  # tools/compose/go.mod
    assert compose_build.version(compose) == "5.6.0"  # stamped: an unstamped build says "dev"


def test_the_docker_cli_runs_it_as_its_compose_plugin(compose):
    done = subprocess.run([docker_cli(), "compose", "version"], env=compose_build.compose_env(compose),
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert (done.returncode, done.stdout.strip()) == (0, "Docker Compose version v5.6.0"), done.stderr
