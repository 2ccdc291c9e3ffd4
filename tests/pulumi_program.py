"""Run Pulumi code under the SDK's own mocks: the real SDK and pulumi-docker classes, no engine.

`run_program` sets mocks and config, runs a function (or the project's __main__.py), waits for
every registration, restores the global settings, and returns what was registered.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import runpy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi.runtime
import pulumi_docker
from pulumi.runtime import config as runtime_config
from pulumi.runtime import rpc, settings
from pulumi.runtime.mocks import MockMonitor

PROJECT = Path(__file__).resolve().parent.parent


@dataclass
class Registered:
    typ: str
    name: str
    inputs: dict[str, Any]


@dataclass
class EngineRequest:
    """What the engine is told about one resource, from the monitor's RegisterResourceRequest:
    the parts MockResourceArgs drops (timeouts, dependencies, replacement order)."""

    typ: str
    name: str
    dependencies: list[str]  # URNs
    property_dependencies: dict[str, list[str]]  # input name -> URNs it was computed from
    delete_before_replace: bool
    delete_before_replace_defined: bool  # False: the provider decides (pulumi-docker: delete-first)
    custom_timeouts: dict[str, str]  # create/update/delete -> Go duration, when set
    retain_on_delete: bool


class RecordingMonitor(MockMonitor):
    def __init__(self, mocks: pulumi.runtime.Mocks, run: Run) -> None:
        super().__init__(mocks)
        self.run = run

    def RegisterResource(self, request: Any) -> Any:  # the gRPC method's name
        timeouts = request.customTimeouts
        self.run.requests[(request.type, request.name)] = EngineRequest(
            typ=request.type,
            name=request.name,
            dependencies=list(request.dependencies),
            property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
            delete_before_replace=request.deleteBeforeReplace,
            delete_before_replace_defined=request.deleteBeforeReplaceDefined,
            custom_timeouts={k: v for k in ("create", "update", "delete") if (v := getattr(timeouts, k))},
            retain_on_delete=request.retainOnDelete,
        )
        response = super().RegisterResource(request)
        self.run.urns[response.urn] = (request.type, request.name)
        return response


@dataclass
class Run:
    requests: dict[tuple[str, str], EngineRequest] = field(default_factory=dict)
    urns: dict[str, tuple[str, str]] = field(default_factory=dict)  # URN -> (type, name)
    resources: list[Registered] = field(default_factory=list)
    exports: dict[str, Any] = field(default_factory=dict)
    options: dict[str, pulumi.ResourceOptions] = field(default_factory=dict)  # container name -> opts
    containers: dict[str, pulumi_docker.Container] = field(default_factory=dict)

    def request(self, typ: str, name: str) -> EngineRequest:
        return self.requests[(typ, name)]

    def depends_on(self, typ: str, name: str) -> set[tuple[str, str]]:
        """(type, name) of every resource the engine is told this one depends on."""
        return {self.urns[u] for u in self.request(typ, name).dependencies}

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.typ == typ]

    def ollama_models(self) -> list[Registered]:
        """The Ollama model resources: the dynamic resources with a tag (the others check engines
        or wait for containers)."""
        return [r for r in self.of_type("pulumi-python:dynamic:Resource") if "tag" in r.inputs]

    def health_waits(self) -> dict[str, Registered]:
        """The waits until a container is healthy (the dynamic resources with a budget), by name."""
        return {r.name: r for r in self.of_type("pulumi-python:dynamic:Resource") if "budget_s" in r.inputs}

    def one(self, typ: str, name: str) -> Registered:
        found = [r for r in self.resources if r.typ == typ and r.name == name]
        assert len(found) == 1, f"{typ} {name}: {[r.name for r in self.of_type(typ)]}"
        return found[0]


class FleetMocks(pulumi.runtime.Mocks):
    """Echo inputs; add only the outputs the providers would compute, keyed by type token."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        self.run.resources.append(Registered(args.typ, args.name, args.inputs))
        state = dict(args.inputs)
        if args.typ == "docker:index/remoteImage:RemoteImage":
            state["image_id"] = "sha256:" + hashlib.sha256(str(args.inputs["name"]).encode()).hexdigest()
        elif args.typ == "pulumi-python:dynamic:Resource":
            state["digest"] = "a1b2c3d4e5f6"
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        return {}


_SDK_LOOP = asyncio.new_event_loop()
atexit.register(_SDK_LOOP.close)


@contextlib.contextmanager
def _mocked(run: Run, stack: str, config: dict[str, str], secret_keys: list[str], preview: bool) -> Iterator[None]:
    saved_settings = settings.SETTINGS
    saved_config = dict(runtime_config.CONFIG.get())
    saved_secret_keys = set(runtime_config._SECRET_KEYS.get())
    # The SDK runs on the thread's current event loop: give it the same one every time, whatever
    # ran before (asyncio.run, used by the drift CLI, leaves none behind).
    asyncio.set_event_loop(_SDK_LOOP)
    # preview=True is the dry run the engine starts the program with in `pulumi preview`.
    mocks = FleetMocks(run)
    pulumi.runtime.set_mocks(mocks, project="llmfleet", stack=stack, preview=preview,
                             monitor=RecordingMonitor(mocks, run))  # fmt: skip
    pulumi.runtime.set_all_config(config, secret_keys)
    try:
        yield
    finally:
        settings.configure(saved_settings)
        pulumi.runtime.set_all_config(saved_config, list(saved_secret_keys))


def run_program(
    stack: str,
    config: dict[str, str],
    secret_keys: list[str],
    program: Callable[[], Any] | None = None,
    monkeypatch: Any = None,
    preview: bool = False,
) -> Run:
    """Run `program` (default: the project's __main__.py) and collect what it registered."""
    run = Run()
    original_init = pulumi_docker.Container.__init__

    def recording_init(self, resource_name, *args, **kwargs):
        opts = kwargs.get("opts") or (args[1] if len(args) > 1 else None)
        run.options[resource_name] = opts
        run.containers[resource_name] = self
        original_init(self, resource_name, *args, **kwargs)

    def record_export(name: str, value: Any) -> None:
        run.exports[name] = value

    monkeypatch.setattr(pulumi_docker.Container, "__init__", recording_init)
    monkeypatch.setattr(pulumi, "export", record_export)

    def main() -> None:
        runpy.run_path(str(PROJECT / "__main__.py"), run_name="__pulumi_main__")

    with _mocked(run, stack, config, secret_keys, preview):

        @pulumi.runtime.test
        def go() -> Any:
            return (program or main)()

        go()
    return run


def resolve(value: Any) -> Any:
    """The value of an Output (or a nested structure holding Outputs), and whether any was secret."""

    async def inner(v: Any) -> tuple[Any, bool]:
        if isinstance(v, pulumi.Output):
            resolved, secret = await v.future(), await v.is_secret()
            inner_value, inner_secret = await inner(resolved)
            return inner_value, secret or inner_secret
        if isinstance(v, dict):
            items = [(k, await inner(x)) for k, x in v.items()]
            return {k: x for k, (x, _) in items}, any(s for _, (_, s) in items)
        if isinstance(v, list):
            items = [await inner(x) for x in v]
            return [x for x, _ in items], any(s for _, s in items)
        return v, False

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(inner(value))
    finally:
        loop.close()


def plain_strings(value: Any) -> Iterator[str]:
    """Every string in registered inputs that is not inside a secret."""
    if rpc.is_rpc_secret(value):
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from plain_strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from plain_strings(v)
