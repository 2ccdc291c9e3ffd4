"""The stack file: where and how the catalog runs (stacks/Pulumi.<stack>.yaml).

It is Pulumi's own stack config file, so `pulumi config set` edits it and the Pulumi program
sees the same values. llmfleet reads the `llmfleet:` keys itself so that `validate`, `render`
and `drift` work without the Pulumi CLI, and so errors point at lines. Secret values
(`secure:`) are never read here: only the Pulumi program decrypts them.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    StrictBool,
    StringConstraints,
    Tag,
    field_validator,
)

from ._catalog import EnvVarName, Port, ProviderName
from ._urls import gateway_url_problem

HostName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
# An image reference pinned to a tag or digest; `latest` or no tag is refused by the checks.
ImageRef = Annotated[str, StringConstraints(pattern=r"^\S+$")]


class _Strict(BaseModel):
    # strict, as the catalog's: no number read from a boolean, a text or a whole float.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=True, allow_inf_nan=False)


class Host(_Strict):
    # Docker endpoint: None is the local engine (DOCKER_HOST or the default socket).
    docker: Annotated[str, StringConstraints(pattern=r"^(unix|ssh|tcp)://\S+$")] | None = None
    # Address other hosts (the gateway) use to reach ports published on this host.
    address: str | None = None
    # Host directory with GGUF files, mounted read-only at /models; default a named volume.
    gguf_dir: str | None = None
    # Memory of each of the host's GPUs, in GiB: what turns an Ollama server's gpu_memory_budget
    # (a fraction) into the bytes Ollama is told to leave alone (OLLAMA_GPU_OVERHEAD).
    gpu_memory_gib: Annotated[float, Field(gt=0, strict=True, allow_inf_nan=False, examples=[80])] | None = None

    @field_validator("address")
    @classmethod
    def _ip_address(cls, address: str | None) -> str | None:
        """An IP address: a remote backend's port is published on it (Docker binds an IP address only,
        and reads anything else, a host name too, as every interface: 0.0.0.0 and ::, seen with Docker
        26.1 and so in 28.5's source)."""
        if address is None:
            return None
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            raise ValueError(f"'{address}' is not an IP address: a backend on this host is published on it, and "
                             "Docker reads a name as every interface (0.0.0.0), which would expose it beyond the "
                             "gateway. Give the host's IP address on the network the gateway reaches it "
                             "through") from None  # fmt: skip
        if ip.is_unspecified:
            raise ValueError(f"'{address}' is every interface, not an address to reach: a backend on this host "
                             "would be published on all of them. Give the host's IP address on the network the "
                             "gateway reaches it through")  # fmt: skip
        return address


class ExistingVolume(_Strict):
    """A Docker volume that already exists on the provider's host, used as is and never deleted."""

    volume: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]


# An absolute directory on the Docker host (as `docker run -v` takes it; YAML control characters are refused).
HostDirectory = Annotated[str, StringConstraints(pattern=r"^/.*$")]
# One shape or the other, told apart by the data: errors come from that shape only.
OllamaStore = Annotated[
    Annotated[HostDirectory, Tag("host-directory")] | Annotated[ExistingVolume, Tag("existing-volume")],
    Discriminator(lambda v: "existing-volume" if isinstance(v, dict | ExistingVolume) else "host-directory"),
]


# A Kubernetes object name that is also a DNS label (RFC 1035: a Service's name), and a node pool's name.
_KUBE_NAME = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")


def kube_name_to_use(name: str) -> str:
    """The nearest name Kubernetes accepts as a DNS label (RFC 1035) for `name`."""
    use = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    use = use if use[:1].isalpha() else f"x-{use}"
    return use[:63].rstrip("-")


def _kube_name(name: str) -> str:
    if not _KUBE_NAME.match(name):
        raise ValueError(f"'{name}' cannot be a Kubernetes name (lowercase letters, digits and '-', starting with "
                         f"a letter, at most 63): use '{kube_name_to_use(name)}'")  # fmt: skip
    return name


def _quantity(size: str) -> str:
    if not re.fullmatch(r"[1-9][0-9]*(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?", size):
        raise ValueError(f"'{size}' is not a Kubernetes quantity: write a whole number and a unit, 200Gi (GiB) or "
                         "200G (GB)")  # fmt: skip
    return size


KubeName = Annotated[str, AfterValidator(_kube_name)]
# A resource quantity as Kubernetes writes one (`100Gi`, `500G`, `1Ti`).
StorageSize = Annotated[str, AfterValidator(_quantity)]
# A label key (`[prefix/]name`) or an extended resource's name (`nvidia.com/gpu`).
_LABEL_PREFIX = r"([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?"
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
LabelKey = Annotated[str, StringConstraints(pattern=f"^{_LABEL_PREFIX}{_LABEL_NAME}$")]
LabelValue = Annotated[str, StringConstraints(pattern=r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")]


class Toleration(_Strict):
    """A pod toleration, as Kubernetes writes it."""

    key: LabelKey | None = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: LabelValue | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class NodePool(_Strict):
    """Nodes of a cluster that servers are placed on: how to select them and what each holds."""

    node_selector: dict[LabelKey, LabelValue] = Field(default={}, examples=[{"llmfleet.dev/pool": "gpu-a"}])
    tolerations: list[Toleration] = []
    # The extended resource the GPU device plugin advertises; a server's GPUs are whole devices of it.
    gpu_resource: LabelKey = "nvidia.com/gpu"
    # What the pool holds, for `validate`: GPUs on each node, and how many nodes.
    gpus_per_node: Annotated[int, Field(ge=0, examples=[8])] = 0
    nodes: Annotated[int, Field(ge=1, examples=[2])] = 1
    runtime_class: KubeName | None = None  # e.g. `nvidia`, when the GPU runtime is not the default
    # Memory of each GPU, in GiB: as a Docker host's gpu_memory_gib (Ollama's gpu_memory_budget).
    gpu_memory_gib: Annotated[float, Field(gt=0, strict=True, allow_inf_nan=False, examples=[80])] | None = None


class CacheStorage(_Strict):
    """The claim each server gets for its model caches (Hugging Face, vLLM's compiled kernels, Ollama's
    models), kept on destroy as the Docker volumes are."""

    storage_class: KubeName | None = None  # None: the cluster's default StorageClass
    access_mode: Literal["ReadWriteOnce", "ReadWriteOncePod", "ReadWriteMany"] = "ReadWriteOnce"
    size: Annotated[StorageSize, Field(examples=["200Gi"])] = "100Gi"


class GgufClaim(_Strict):
    claim: KubeName  # an existing PersistentVolumeClaim holding the GGUF files, mounted read-only
    # Its access mode, as it was created: `validate` checks that it can serve every server reading it.
    access_mode: Literal["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]


class GgufHostPath(_Strict):
    host_path: HostDirectory  # a directory on every node of the pools, mounted read-only


def _gguf_form(value: Any) -> str:
    """A claim or a host path, told apart by the key written, so errors come from that form only."""
    if isinstance(value, GgufClaim | GgufHostPath):
        return type(value).__name__
    return "GgufClaim" if isinstance(value, dict) and "claim" in value else "GgufHostPath"


GgufSource = Annotated[
    Annotated[GgufClaim, Tag("GgufClaim")] | Annotated[GgufHostPath, Tag("GgufHostPath")], Discriminator(_gguf_form)
]


class KubernetesGateway(_Strict):
    replicas: Annotated[int, Field(ge=1, le=100, examples=[2])] = 2
    pool: KubeName | None = None  # the node pool its pods run on; None: wherever the scheduler puts them
    # How clients outside the cluster reach it: ClusterIP (inside only: drift and probe go through the
    # API server), NodePort, or LoadBalancer. `llmfleet:gateway.url` says the address clients use.
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    node_port: Annotated[int, Field(ge=30000, le=32767)] | None = None


class Kubernetes(_Strict):
    """Where a `target: kubernetes` stack deploys: always an explicit kubeconfig context, never the
    ambient current-context."""

    context: Annotated[str, StringConstraints(min_length=1)]
    # The kubeconfig file; None: $KUBECONFIG, else ~/.kube/config.
    kubeconfig: Annotated[str, StringConstraints(min_length=1)] | None = None
    namespace: KubeName  # an existing namespace: llmfleet does not create or delete it
    pools: dict[KubeName, NodePool] = {}
    cache_storage: CacheStorage = CacheStorage()
    gguf: GgufSource | None = None
    gateway: KubernetesGateway = KubernetesGateway()
    # How long a pod may stay unschedulable before `pulumi up` fails naming why (Insufficient
    # nvidia.com/gpu, no node matching the pool). A cluster autoscaler adds nodes in minutes: raise it.
    unschedulable_seconds: Annotated[int, Field(ge=1, le=24 * 3600, examples=[600])] = 20


class Placement(_Strict):
    host: HostName | None = None
    # Kubernetes: the node pool (llmfleet:kubernetes.pools) the server runs on.
    pool: KubeName | None = None
    # Opt-in: publish the backend's port on loopback (on the gateway's host), where `drift --backends`,
    # `probe --backends` and debugging reach it.
    publish: Annotated[bool, Field(examples=[True])] = False
    # Ollama only: an existing models store mounted at /root/.ollama instead of a new volume (an
    # Ollama's home directory holding `models/`, or a named volume): models already there are not
    # downloaded again, and llmfleet never deletes the store or a model in it.
    ollama_models: OllamaStore | None = None

    @field_validator("ollama_models", mode="before")
    @classmethod
    def _store(cls, value: object) -> object:
        if value is None or isinstance(value, dict) or (isinstance(value, str) and value.startswith("/")):
            return value
        raise ValueError(f"{value!r} is neither an absolute directory on the host nor a volume: give the "
                         "directory that holds Ollama's models/ (/usr/share/ollama/.ollama for a Linux install) "
                         "or `{volume: <existing volume>}`")  # fmt: skip


class Gateway(_Strict):
    host: HostName | None = None
    # The address the front proxy's port is published on: Docker takes an IP address only.
    bind: str = "127.0.0.1"
    port: Annotated[Port, Field(examples=[4000])] = 4000
    # Where clients and the drift check reach the gateway, when not http://bind:port.
    url: str | None = None

    @field_validator("bind")
    @classmethod
    def _ip_address(cls, bind: str) -> str:
        try:
            ipaddress.ip_address(bind)
        except ValueError:
            raise ValueError(f"'{bind}' is not an IP address: give the address to publish the gateway on "
                             "(127.0.0.1 for this host only, 0.0.0.0 for every interface)") from None  # fmt: skip
        return bind

    @field_validator("url")
    @classmethod
    def _usable_url(cls, url: str | None) -> str | None:
        problem = gateway_url_problem(url) if url is not None else None
        if problem:
            raise ValueError(problem)
        return url


class BuildSpec(_Strict):
    build: Annotated[str, StringConstraints(min_length=1)]  # directory with a Dockerfile, relative to the project
    tag: ImageRef = "llmfleet/llama-cpp-python-cuda:local"
    # GPU generations to compile CUDA kernels for (CMake list, e.g. "90" for H100/H200): one
    # generation builds in minutes, the Dockerfile's default five can take over half an hour.
    cuda_architectures: (
        Annotated[str, StringConstraints(pattern=r"^[0-9]{2,3}[a-z]?(;[0-9]{2,3}[a-z]?)*$"), Field(examples=["90"])]
        | None
    ) = None
    # How long `pulumi up` waits for the build before failing it.
    timeout_minutes: Annotated[int, Field(ge=1, le=24 * 60, examples=[120])] = 120
    # The built image runs its server on CPU: a provider without `gpus` is then not a mistake.
    cpu: StrictBool = False


class ServerImage(_Strict):
    """An image reference with what the checks cannot know from its name: `cpu: true` says the
    image runs its server on CPU, so a provider without `gpus` using a GPU image is meant."""

    image: ImageRef
    cpu: StrictBool = False


def _image_form(value: Any) -> str:
    """Which form an image is written in, so that a mistake is reported against that form only:
    a map with `build` is a build, any other map a reference with settings, the rest a reference.
    (The tags are class names, never keys of the data: error locations drop them.)"""
    if isinstance(value, dict):
        return "BuildSpec" if "build" in value else "ServerImage"
    if isinstance(value, BuildSpec | ServerImage):
        return type(value).__name__
    return "ImageRef"


ServerImageRef = Annotated[
    Annotated[ImageRef, Tag("ImageRef")] | Annotated[ServerImage, Tag("ServerImage")], Discriminator(_image_form)
]
BuiltImageRef = Annotated[
    Annotated[ImageRef, Tag("ImageRef")]
    | Annotated[ServerImage, Tag("ServerImage")]
    | Annotated[BuildSpec, Tag("BuildSpec")],
    Discriminator(_image_form),
]


class Images(_Strict):
    # Ollama's one image serves on CPU and GPU alike: a plain reference only.
    ollama: ImageRef | None = None
    vllm: ServerImageRef | None = None
    llama_cpp: ServerImageRef | None = None
    llama_cpp_python: BuiltImageRef | None = None
    litellm: ImageRef = "ghcr.io/berriai/litellm:v1.108.7"
    # The front proxy: Docker's official HAProxy image, LTS branch.
    haproxy: ImageRef = "haproxy:3.0.5"

    @field_validator("ollama", mode="before")
    @classmethod
    def _ollama_reference_only(cls, value: object) -> object:
        if isinstance(value, dict) and "image" in value:
            raise ValueError(
                "Ollama's one image serves on CPU and GPU alike, so it takes no settings: "
                f"give the reference only (ollama: {value['image']})"
            )
        return value

    def ref(self, kind: str) -> str | BuildSpec | None:
        """The image a kind's servers run: a reference, or the build that makes it."""
        image = getattr(self, kind)
        return image.image if isinstance(image, ServerImage) else image

    def runs_on_cpu(self, kind: str) -> bool:
        """Whether the stack says the kind's image runs its server on CPU (`cpu: true`)."""
        image = getattr(self, kind)
        return isinstance(image, ServerImage | BuildSpec) and image.cpu


class Secure(_Strict):
    secure: str


def set_secret_command(key: str, stack: str) -> str:
    """A command to paste that sets a stack secret, the value never on a command line (where shell
    history and `ps` would keep it): the master key is generated; any other value is read from
    the terminal. `key` is a config key (`llmfleet:masterKey`) or a path under it
    (`llmfleet:apiKeys.NAME`)."""
    set_it = f"pulumi config set --secret{' --path' if '.' in key else ''} '{key}' --stack {stack}"
    if key == "llmfleet:masterKey":
        return f"""printf 'sk-%s' "$(openssl rand -hex 24)" | {set_it}"""
    name = key.rsplit(".", 1)[-1].removeprefix("llmfleet:")
    return f"""read -rsp '{name}: ' value && echo && printf '%s' "$value" | {set_it}"""


def remove_command(key: str, stack: str) -> str:
    return f"pulumi config rm '{key}' --stack {stack}"


class StackSettings(_Strict):
    """The `llmfleet:` keys of a stack file's `config:` map."""

    # Keys given as one encrypted value (`secure:`) that must be maps (`llmfleet:apiKeys`, what
    # `pulumi config set --secret llmfleet:apiKeys <value>` writes): reported, and read as unset.
    _sealed: frozenset[str] = PrivateAttr(default=frozenset())

    @property
    def sealed(self) -> frozenset[str]:
        return self._sealed

    catalog: Annotated[str, StringConstraints(min_length=1)] = Field(alias="llmfleet:catalog")
    # Where the fleet runs: Docker hosts (llmfleet:hosts), or a Kubernetes cluster (llmfleet:kubernetes).
    target: Literal["docker", "kubernetes"] = Field(default="docker", alias="llmfleet:target")
    kubernetes: Kubernetes | None = Field(default=None, alias="llmfleet:kubernetes")
    hosts: dict[HostName, Host] = Field(default={"local": Host()}, alias="llmfleet:hosts")
    providers: dict[ProviderName, Placement] = Field(default={}, alias="llmfleet:providers")
    gateway: Gateway = Field(default=Gateway(), alias="llmfleet:gateway")
    images: Images = Field(default=Images(), alias="llmfleet:images")
    # Secrets: set with `pulumi config set --secret`; only their presence is checked here.
    master_key: Secure | None = Field(default=None, alias="llmfleet:masterKey")
    hf_token: Secure | None = Field(default=None, alias="llmfleet:hfToken")
    # Keys for external providers, by env var name: pulumi config set --secret --path 'llmfleet:apiKeys.NAME'
    api_keys: dict[EnvVarName, Secure] = Field(default={}, alias="llmfleet:apiKeys")

    @property
    def on_kubernetes(self) -> bool:
        return self.target == "kubernetes"

    @property
    def gateway_host(self) -> str:
        return self.gateway.host or next(iter(self.hosts))

    def host_of(self, provider: str) -> str:
        placement = self.providers.get(provider)
        return (placement.host if placement and placement.host else None) or self.gateway_host

    def publish_ip(self, provider: str) -> str | None:
        """Where a provider's port is published on its host: that host's address when it runs
        away from the gateway (the gateway reaches it there), loopback when the stack opts in,
        otherwise nowhere (reachable only on the fleet's network)."""
        host = self.host_of(provider)
        if host != self.gateway_host:
            return self.hosts[host].address
        placement = self.providers.get(provider)
        return "127.0.0.1" if placement and placement.publish else None

    @property
    def gateway_url(self) -> str:
        if self.gateway.url:
            return self.gateway.url
        if self.on_kubernetes and self.kubernetes:
            # The Service's address inside the cluster; from outside, drift and probe go through the API server.
            return f"http://gateway.{self.kubernetes.namespace}.svc:{self.gateway.port}"
        bind = self.gateway.bind
        if bind in ("0.0.0.0", "::"):
            bind = self.hosts[self.gateway_host].address or "127.0.0.1"
        return f"http://{url_host(bind)}:{self.gateway.port}"


def url_host(address: str) -> str:
    """An address as a URL's host: an IPv6 address in brackets."""
    return f"[{address}]" if ":" in address else address


class StackFile(_Strict):
    """The whole Pulumi.<stack>.yaml; keys of other namespaces (`docker:host`) pass through."""

    config: dict[str, object]
    encryptionsalt: str | None = None
    secretsprovider: str | None = None
    encryptedkey: str | None = None
    environment: object | None = None
