"""What every server container shares: the spec each kind fills in, and the one function that
turns a spec into pulumi-docker resources the same way for every kind.

The spec builders are pure functions of the catalog's objects, tested without Pulumi mocks;
the component classes only wire resources together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

# Names and labels come from the library: `llmfleet logs` finds the containers by the same ones.
from llmfleet._docker_names import container_labels, container_name

from ..docker.container_health import ContainerHealthArgs, ContainerHealthy


@dataclass(frozen=True)
class Healthcheck:
    tests: list[str]
    start_period_s: int
    interval_s: int = 10
    timeout_s: int = 5
    retries: int = 3

    def args(self) -> docker.ContainerHealthcheckArgs:
        return docker.ContainerHealthcheckArgs(
            tests=self.tests,
            interval=go_duration(self.interval_s),
            timeout=go_duration(self.timeout_s),
            retries=self.retries,
            start_period=go_duration(self.start_period_s),
            start_interval=go_duration(5),
        )


def go_duration(seconds: int) -> str:
    """A whole number of seconds as Go's time.Duration prints it ("15m0s", "1h0m0s", "30s").

    The Docker provider reads a container's healthcheck back in this form: any other spelling of
    the same duration ("900s") is a difference on every preview and an update on every `up`
    (seen with the real engine; the mocks echo inputs and cannot show it)."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def http_probe(url: str) -> str:
    """Python that exits 0 if `url` answers 2xx/3xx within 4 s."""
    return f"import urllib.request as u; u.urlopen('{url}', timeout=4)"


def readiness_probe(url: str, ready_for_s: float) -> str:
    """Python that exits 0 only if `url` answers now and again `ready_for_s` later: a container
    healthy by it has been ready for that long, which is what the front proxy needs to have seen
    it (llmfleet/_front_proxy.py). Any error (refused, 503) exits non-zero."""
    return (f"import time, urllib.request as u; u.urlopen('{url}', timeout=1.5); time.sleep({ready_for_s}); "
            f"u.urlopen('{url}', timeout=1.5)")  # fmt: skip


def python_check(probe: str, start_period_s: int) -> Healthcheck:
    """For images that run on Python but may lack curl/wget (vLLM, llama-cpp-python, LiteLLM)."""
    shell = f'python3 -c "{probe}" || python -c "{probe}"'
    return Healthcheck(["CMD-SHELL", shell], start_period_s)


def python_http_check(url: str, start_period_s: int) -> Healthcheck:
    return python_check(http_probe(url), start_period_s)


def secret_env(values: Mapping[str, pulumi.Input[str] | None]) -> pulumi.Output[list[str]] | None:
    """`NAME=value` for each value given, as one secret Output, so no value shows in a plain input;
    None when there is none to set."""
    given = {name: value for name, value in values.items() if value is not None}
    if not given:
        return None
    names = list(given)
    return pulumi.Output.secret(
        pulumi.Output.all(*given.values()).apply(lambda vs: [f"{n}={v}" for n, v in zip(names, vs, strict=True)])
    )


@dataclass(frozen=True)
class Mount:
    container_path: str
    volume: str | None = None  # a named volume
    host_path: str | None = None  # or a host directory
    read_only: bool = False

    def args(self) -> docker.ContainerVolumeArgs:
        return docker.ContainerVolumeArgs(
            container_path=self.container_path,
            volume_name=self.volume,
            host_path=self.host_path,
            read_only=self.read_only or None,
        )


@dataclass(frozen=True)
class FileBind:
    """One host file bound into the container (`--mount type=bind`, read-only). Unlike a volume's
    host path (`-v`, which Docker creates when missing), a bind whose source does not exist makes
    Docker refuse to create the container, naming the path: a deploy fails in seconds instead of
    waiting out the health wait for a server that cannot start."""

    source: str  # on the Docker host
    target: str  # in the container

    def args(self) -> docker.ContainerMountArgs:
        return docker.ContainerMountArgs(type="bind", source=self.source, target=self.target, read_only=True)


@dataclass(frozen=True)
class GpuRequest:
    """Which GPUs a container gets: every one, or the listed device ids.

    `gpus="all"` for all of them. A list goes through `device_requests` with the nvidia driver,
    never `gpus="device=0,1"`: docker/cli's GpuOpts.Set parses that value as CSV, so "1" becomes a
    Count beside DeviceIDs ["0"] and the daemon refuses both together; the provider's read-back
    (terraform-provider-docker 4.5 `flattenGPUsFromDeviceRequests`) then differs from the input too.
    `device_requests` conflicts with `gpus` in the provider schema: one or the other, never both."""

    device_ids: tuple[str, ...] | None  # None: all GPUs

    @property
    def visible_devices(self) -> str:
        return ",".join(self.device_ids) if self.device_ids is not None else "all"

    def container_args(self) -> dict[str, object]:
        if self.device_ids is None:
            return {"gpus": "all"}
        # The schema's driver default is "cdi"; NVIDIA's runtime hook answers the "nvidia" driver.
        request = docker.ContainerDeviceRequestArgs(driver="nvidia", device_ids=list(self.device_ids),
                                                    capabilities=["gpu"])  # fmt: skip
        return {"device_requests": [request]}


def gpu_request(gpus: str | Sequence[int] | None) -> GpuRequest | None:
    if gpus is None:
        return None  # CPU: nothing GPU-related at all
    if gpus == "all":
        return GpuRequest(None)
    return GpuRequest(tuple(str(i) for i in dict.fromkeys(gpus)))


# How long the engine lets a resource's create run. terraform-provider-docker 4.5 (which
# pulumi-docker 5.x wraps) defaults create, update and delete to 20 minutes
# (resource_docker_container.go and resource_docker_image.go, `*DefaultTimeout`): enough to create
# and start a container, which is all its create does; the wait until it is healthy is a resource of
# its own (container_healthy) with the kind's budget. Image pulls and builds need longer.
PROVIDER_DEFAULT_TIMEOUT_S = 20 * 60
# Pulling a CUDA or vLLM image (10+ GB) over a slow link.
IMAGE_PULL_TIMEOUT_S = 60 * 60


# How long each kind may take to stop before it is killed, in one place: a container's own
# `stop_timeout` (docker stop, daemon restarts) and `destroy_grace_seconds` (Pulumi's delete and
# replace). The latter matters most: terraform-provider-docker 4.5 `resourceDockerContainerDelete`
# calls ContainerStop with destroy_grace_seconds, or 0 when unset, which kills the server at once
# whatever stop_timeout says. A server that exits sooner frees its slot sooner.
STOP_GRACE_S = {
    # Ollama and llama-server close every connection at the signal, cutting the replies in flight,
    # and exit within a second (tests/test_stop_real.py): the grace only bounds a hang.
    "ollama": 30,
    "llama_cpp": 30,
    # llama-cpp-python (uvicorn) finishes a reply that is not streamed, then exits: up to the grace.
    "llama_cpp_python": 30,
    # vLLM (uvicorn too; not run here) also tears down CUDA graphs and its engine process.
    "vllm": 60,
    # LiteLLM: uvicorn closes the listener, then waits for open requests up to
    # GRACEFUL_SHUTDOWN_TIMEOUT (30 s by default); a margin beyond it so it is never cut short.
    "litellm": 45,
    # HAProxy's image stops it with SIGUSR1: a soft stop that lets open connections finish.
    "haproxy": 30,
}


def create_timeout(seconds: int) -> pulumi.CustomTimeouts:
    """A create (and update) timeout of `seconds`, never below the provider's own default."""
    limit = f"{max(seconds, PROVIDER_DEFAULT_TIMEOUT_S)}s"
    return pulumi.CustomTimeouts(create=limit, update=limit)


@dataclass(frozen=True)
class ContainerSpec:
    """Everything kind-specific about one server container."""

    kind: str
    port: int
    command: list[str] = field(default_factory=list)
    entrypoint: list[str] = field(default_factory=list)  # empty: the image's own
    env: dict[str, str] = field(default_factory=dict)
    healthcheck: Healthcheck | None = None
    wait_timeout_s: int = 120  # how long it may take to become healthy (container_healthy's budget)
    mounts: list[Mount] = field(default_factory=list)
    binds: list[FileBind] = field(default_factory=list)
    gpus: GpuRequest | None = None
    ipc_host: bool = False

    @property
    def stop_grace_s(self) -> int:
        return STOP_GRACE_S[self.kind]

    def envs(self) -> list[str]:
        env = dict(self.env)
        if self.gpus:
            env["NVIDIA_VISIBLE_DEVICES"] = self.gpus.visible_devices
        return [f"{k}={v}" for k, v in sorted(env.items())]


@dataclass(frozen=True)
class Placement:
    """Where a server runs, resolved from the stack: its Docker host and how it is published."""

    stack: str
    host: str
    network: pulumi.Input[str]
    provider: docker.Provider | None
    publish_ip: str | None  # None: reachable only on the fleet network
    # What must succeed before anything is created on the host: its engine's version check.
    ready: pulumi.Resource | None = None
    # The host's endpoint as the stack gives it (`ssh://...`), for what runs the docker CLI
    # (the health wait); None: the local engine, DOCKER_HOST.
    endpoint: str | None = None

    def after_ready(self) -> list[pulumi.Resource]:
        """`depends_on` for every resource created on the host."""
        return [self.ready] if self.ready else []


def server_container(
    name: str,
    spec: ContainerSpec,
    image_id: pulumi.Input[str],
    placement: Placement,
    parent: pulumi.Resource,
    *,
    extra_env: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None,
    uploads: list[docker.ContainerUploadArgs] | None = None,
    depends_on: Sequence[pulumi.Resource] = (),
    external_port: int | None = None,
    alias: str | None = None,
    rolling_alias: str | None = None,
) -> docker.Container:
    """The container of one server, started; `container_healthy` waits until it is healthy.

    By default it is replaced delete-first: a fixed name, a published port or a GPU cannot be
    held by two containers at once. With `rolling_alias` it is replaced create-first instead:
    no fixed name (Pulumi auto-names it), no published port, and the alias shared by old and new
    on the fleet network, for a front proxy to find both (the gateway). pulumi-docker asks the
    engine for delete-first on every container (provider/resources.go, `docker_container`:
    `DeleteBeforeReplace: true`), and the engine lets an explicit resource option override it
    (pulumi/pulumi pkg/resource/deploy/step_generator.go: `if goal.DeleteBeforeReplace != nil`),
    so create-first must be asked for explicitly. `alias`: the network alias, when not `name`.
    Labelled with its host's endpoint (`host_labels`), so that it follows its host."""
    ports = None
    if placement.publish_ip and rolling_alias is None:
        external = external_port or spec.port
        ports = [docker.ContainerPortArgs(internal=spec.port, external=external, ip=placement.publish_ip)]
    envs: pulumi.Input[Sequence[pulumi.Input[str]]] = spec.envs()
    if extra_env is not None:
        envs = pulumi.Output.all(spec.envs(), extra_env).apply(lambda parts: [*parts[0], *parts[1]])
    return docker.Container(
        f"{name}-container",
        docker.ContainerArgs(
            name=None if rolling_alias else container_name(placement.stack, name),
            image=image_id,
            command=spec.command or None,
            entrypoints=spec.entrypoint or None,
            envs=envs,
            healthcheck=spec.healthcheck.args() if spec.healthcheck else None,
            # Never the provider's own wait: it watches only for `healthy`, so a server that exits at
            # start and is restarted is waited on for the kind's whole budget. container_healthy waits.
            wait=False,
            restart="unless-stopped",
            **(spec.gpus.container_args() if spec.gpus else {}),
            ipc_mode="host" if spec.ipc_host else None,
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(name=placement.network, aliases=[rolling_alias or alias or name])
            ],
            ports=ports,
            volumes=[m.args() for m in spec.mounts] or None,
            mounts=[b.args() for b in spec.binds] or None,
            uploads=uploads,
            stop_timeout=spec.stop_grace_s,
            destroy_grace_seconds=spec.stop_grace_s,
            labels=[
                docker.ContainerLabelArgs(label=label, value=value)
                for labels in (container_labels(placement.stack, name, spec.kind), host_labels(placement))
                for label, value in labels.items()
            ],
        ),
        opts=pulumi.ResourceOptions(
            parent=parent,
            provider=placement.provider,
            delete_before_replace=rolling_alias is None,
            depends_on=[*depends_on, *placement.after_ready()],
        ),
    )


def container_healthy(
    name: str,
    spec: ContainerSpec,
    container: docker.Container,
    placement: Placement,
    parent: pulumi.Resource,
    *,
    what: str,
    logs_name: str,
) -> ContainerHealthy:
    """The wait for `container` to be healthy, within the kind's budget, failing at once when it
    exits or restarts (components/container_health.py). Whatever needs the server ready depends
    on this, never on the container: the container's create returns as soon as it is started."""
    return ContainerHealthy(
        f"{name}-healthy",
        ContainerHealthArgs(
            container=container.id,
            name=container.name,
            what=what,
            host=placement.host,
            docker_host=placement.endpoint,
            budget_s=spec.wait_timeout_s,
            logs_hint=f"`llmfleet logs --stack {placement.stack} {logs_name}`",
        ),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[container]),
    )


HOST_KEY = "llmfleet.docker_host"


def host_triggers(placement: Placement) -> dict[str, str]:
    """What makes an image resource follow its server to another host: the host's endpoint.

    The engine does not replace a resource whose provider changes when the provider's own diff
    asks for no replacement, and the Docker provider's does not for a new `host`: a server moved to
    another host by a stack change kept its image resource as it was, "same", never pulled onto the
    new host (seen with the real engine and two Docker engines), so its container could be created
    only where the image happened to be present already. `triggers` replaces the image resource
    (pulled where it now runs) when the endpoint changes. The local engine adds no key, so the
    images of single-host stacks read as before."""
    return {HOST_KEY: placement.endpoint} if placement.endpoint else {}


def host_labels(placement: Placement) -> dict[str, str]:
    """The same for containers and an Ollama models volume, as a label (the Docker provider replaces
    either when a label changes). Moved to another host by a stack change, the gateway, the front
    proxy, a server that is not published and a models volume have nothing else that changes, so
    they would stay on the old host. The local engine adds none: single-host stacks read as before;
    on a remote host, adding it replaces each container once (at the upgrade that brought it)."""
    return {HOST_KEY: placement.endpoint} if placement.endpoint else {}


def pulled_image(name: str, image: str, placement: Placement, parent: pulumi.Resource) -> docker.RemoteImage:
    """A pinned image pulled onto the server's host and kept there when the resource goes."""
    return docker.RemoteImage(
        f"{name}-image",
        docker.RemoteImageArgs(name=image, keep_locally=True, triggers=host_triggers(placement) or None),
        opts=pulumi.ResourceOptions(
            parent=parent,
            provider=placement.provider,
            custom_timeouts=create_timeout(IMAGE_PULL_TIMEOUT_S),
            depends_on=placement.after_ready(),
        ),
    )


class ServerComponent(pulumi.ComponentResource):
    """What every server component exposes: its container, the wait until it is healthy (what the
    gateway and the Ollama models wait for) and the names it serves."""

    container: docker.Container
    healthy: ContainerHealthy
    served_names: pulumi.Output[list[str]]

    def _serve(
        self,
        name: str,
        spec: ContainerSpec,
        image_id: pulumi.Input[str],
        placement: Placement,
        served: Sequence[str],
        extra_env: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None,
        depends_on: Sequence[pulumi.Resource] = (),
    ) -> None:
        self.container = server_container(name, spec, image_id, placement, self, extra_env=extra_env,
                                          depends_on=depends_on)  # fmt: skip
        self.healthy = container_healthy(name, spec, self.container, placement, self,
                                         what=f"provider '{name}' ({spec.kind})", logs_name=name)  # fmt: skip
        self.served_names = pulumi.Output.from_input(list(served))

    def _register(self) -> None:
        self.register_outputs({"container": self.container.name, "served_names": self.served_names})
