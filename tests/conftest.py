"""Fixtures shared by the tests that deploy with the real engine (marked real_deploy)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.docker_engine import DockerEngine, running_engine
from tests.images import FleetImages, ensure_images


@pytest.fixture(scope="module")
def images() -> FleetImages:
    """Built (or found) in an engine that reaches Debian's mirror; deployed in an air-gapped one."""
    with running_engine(air_gapped=False) as builder:
        return ensure_images(builder)


@pytest.fixture(scope="module")
def docker(images: FleetImages) -> Iterator[DockerEngine]:
    """The tests' own air-gapped Docker engine, one per module, with the images in it."""
    with running_engine() as engine:
        yield engine
