"""Kept for the state of deployed stacks: the Docker engine check is components/docker/engine_check.py.

Pulumi pickles a dynamic provider by reference to its module into each resource's state
(`__provider`), and unpickles it in a fresh `python -m pulumi.dynamic`, started in the program's
directory, for every diff, refresh, update and delete. A resource created before the move holds
`components.docker_engine_check.DockerEngineCheckProvider` until it is updated or replaced (its refresh and delete
read the reference from its state): without this module, such a stack fails at its next `up`,
`refresh` or `destroy`. Never remove it (tests/test_pickled_providers.py)."""

from .docker.engine_check import DockerEngineCheckProvider

__all__ = ["DockerEngineCheckProvider"]
