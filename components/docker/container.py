"""The Docker translation of a server's spec (components/servers/spec.py): the container, its image
and the wait until it is healthy, created the same way for every kind with pulumi-docker."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

# Names and labels come from the library: `llmfleet logs` finds the containers by the same ones.
from llmfleet._docker_names import container_labels, container_name

from ..servers.spec import ContainerSpec, FileBind, GpuRequest, Healthcheck, Mount, go_duration
from .container_health import ContainerHealthArgs, ContainerHealthy


def healthcheck_args(check: Healthcheck) -> docker.ContainerHealthcheckArgs:
    return docker.ContainerHealthcheckArgs(
        tests=check.tests,
        interval=go_duration(check.interval_s),
        timeout=go_duration(check.timeout_s),
        retries=check.retries,
        start_period=go_duration(check.start_period_s),
        start_interval=go_duration(check.start_interval_s),
    )


def volume_args(mount: Mount) -> docker.ContainerVolumeArgs:
    return docker.ContainerVolumeArgs(
        container_path=mount.container_path,
        volume_name=mount.volume,
        host_path=mount.host_path,
        read_only=mount.read_only or None,
    )


def bind_args(bind: FileBind) -> docker.ContainerMountArgs:
    return docker.ContainerMountArgs(type="bind", source=bind.source, target=bind.target, read_only=True)


def gpu_args(gpus: GpuRequest) -> dict[str, object]:
    """The container's arguments for its GPUs.

    `gpus="all"` for all of them. A list goes through `device_requests` with the nvidia driver,
    never `gpus="device=0,1"`: docker/cli's GpuOpts.Set parses that value as CSV, so "1" becomes a
    Count beside DeviceIDs ["0"] and the daemon refuses both together; the provider's read-back
    (terraform-provider-docker 4.5 `flattenGPUsFromDeviceRequests`) then differs from the input too.
    `device_requests` conflicts with `gpus` in the provider schema: one or the other, never both."""
    if gpus.device_ids is None:
        return {"gpus": "all"}
    # The schema's driver default is "cdi"; NVIDIA's runtime hook answers the "nvidia" driver.
    request = docker.ContainerDeviceRequestArgs(driver="nvidia", device_ids=list(gpus.device_ids),
                                                capabilities=["gpu"])  # fmt: skip
    return {"device_requests": [request]}


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


# How long the engine lets a resource's create run. terraform-provider-docker 4.5 (which
# pulumi-docker 5.x wraps) defaults create, update and delete to 20 minutes
# (resource_docker_container.go and resource_docker_image.go, `*DefaultTimeout`): enough to create
# and start a container, which is all its create does; the wait until it is healthy is a resource of
# its own (container_healthy) with the kind's budget. Image pulls and builds need longer.
PROVIDER_DEFAULT_TIMEOUT_S = 20 * 60
# Pulling a CUDA or vLLM image (10+ GB) over a slow link.
IMAGE_PULL_TIMEOUT_S = 60 * 60


def create_timeout(seconds: int) -> pulumi.CustomTimeouts:
    """A create (and update) timeout of `seconds`, never below the provider's own default."""
    limit = f"{max(seconds, PROVIDER_DEFAULT_TIMEOUT_S)}s"
    return pulumi.CustomTimeouts(create=limit, update=limit)


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
    Labelled with its host's endpoint (`host_key`), so that it follows its host."""
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
            healthcheck=healthcheck_args(spec.healthcheck) if spec.healthcheck else None,
            # Never the provider's own wait: it watches only for `healthy`, so a server that exits at
            # start and is restarted is waited on for the kind's whole budget. container_healthy waits.
            wait=False,
            restart="unless-stopped",
            **(gpu_args(spec.gpus) if spec.gpus else {}),
            ipc_mode="host" if spec.ipc_host else None,
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(name=placement.network, aliases=[rolling_alias or alias or name])
            ],
            ports=ports,
            volumes=[volume_args(m) for m in spec.mounts] or None,
            mounts=[bind_args(b) for b in spec.binds] or None,
            uploads=uploads,
            stop_timeout=spec.stop_grace_s,
            destroy_grace_seconds=spec.stop_grace_s,
            labels=[
                docker.ContainerLabelArgs(label=label, value=value)
                for labels in (container_labels(placement.stack, name, spec.kind), host_key(placement))
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
    exits or restarts (components/docker/container_health.py). Whatever needs the server ready depends
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


def host_key(placement: Placement) -> dict[str, str]:
    """What makes a resource follow its server to another host: the host's endpoint, given to images
    as `triggers` and to containers and an Ollama models volume as a label (the Docker provider
    replaces each when either changes).

    The engine does not replace a resource whose provider changes when the provider's own diff
    asks for no replacement, and the Docker provider's does not for a new `host` (seen with the real
    engine and two Docker engines): a server moved to another host kept its image resource "same",
    never pulled onto the new host, and the gateway, the front proxy, a server that is not published
    and a models volume, whose settings are the same on every host, stayed on the old one. The local
    engine adds no key: single-host stacks read as before; on a remote host, adding it replaced
    each container once (at the upgrade that brought it)."""
    return {HOST_KEY: placement.endpoint} if placement.endpoint else {}


def pulled_image(name: str, image: str, placement: Placement, parent: pulumi.Resource) -> docker.RemoteImage:
    """A pinned image pulled onto the server's host and kept there when the resource goes."""
    return docker.RemoteImage(
        f"{name}-image",
        docker.RemoteImageArgs(name=image, keep_locally=True, triggers=host_key(placement) or None),
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
