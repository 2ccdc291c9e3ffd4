"""The catalog: what the fleet serves (config/*.yaml).

Every provider states what it serves explicitly: an Ollama provider lists its tags, a vLLM one
its model and served name, a llama.cpp server its GGUF and alias. A provider that serves
nothing cannot be written down, which is the bug this project exists to make impossible.
Where and how things run (hosts, images, publishing, secrets) belongs to the stack file.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    StringConstraints,
    Tag,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError


def _visible(name: str) -> str:
    """Refuse format and control characters (zero-width space, bidi marks, ...): two names that
    look the same must not route differently, and a client cannot type what it cannot see."""
    for i, char in enumerate(name, 1):
        if unicodedata.category(char)[0] in "CZ":
            what = unicodedata.name(char, "a control character")
            raise ValueError(
                f"{name!a} contains the invisible character U+{ord(char):04X} ({what}) at position {i}: retype the name"
            )
    return name


# Provider names become Docker DNS aliases and container-name suffixes: keep them DNS labels.
ProviderName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^\S+$"), AfterValidator(_visible)]
EnvVarName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]

# Numbers, each with the example a refusal of a wrong value shows (`e.g. port: 8001`).
Fraction = Annotated[float, Field(gt=0, le=1, examples=[0.5])]
Port = Annotated[int, Field(ge=1, le=65535, examples=[8001])]
Tokens = Annotated[int, Field(gt=0, examples=[8192])]
Slots = Annotated[int, Field(gt=0, examples=[4])]

Count = Annotated[int, Strict(), Field(gt=0, examples=[60])]
Seconds = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False, examples=[30])]


class DeploymentLimits(BaseModel):
    """What LiteLLM enforces per deployment (its `litellm_params`): requests and tokens per
    minute, the timeouts of a call (seconds) and how often it is retried. Strict numbers: `on` or
    "30" is an error, never 1 or 30."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    rpm: Count | None = None
    tpm: Count | None = None
    timeout: Seconds | None = None
    stream_timeout: Seconds | None = None
    max_retries: Annotated[int, Strict(), Field(ge=0, examples=[2])] | None = None

    def params(self) -> dict[str, int | float]:
        return self.model_dump(exclude_none=True)

    def over(self, base: DeploymentLimits | None) -> DeploymentLimits:
        """These limits, with `base`'s where these give none (a model's over its provider's)."""
        return DeploymentLimits(**{**(base.params() if base else {}), **self.params()})


# How each server kind listens inside its container unless the catalog says otherwise.
DEFAULT_PORTS = {"ollama": 11434, "vllm": 8000, "llama_cpp": 8080, "llama_cpp_python": 8000}


class _Strict(BaseModel):
    # strict: YAML's `on` is not the number 1, nor "8080" (text) or 8080.0 a port; a whole number
    # is still a float where one is wanted (`weight: 1`). Each refusal says what YAML read and what
    # to write (_schema_errors.py). No .inf or .nan either: no limit or weight is infinite.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _gpus_shape(value: object) -> str | None:
    # Only the list member validates a list (its ids are then located one by one): no second
    # error from `all` for every wrong id.
    return "<ids>" if isinstance(value, list) else "<all>" if value == "all" else None


class _Local(_Strict):
    """Knobs shared by every server we provision."""

    port: Port | None = None
    gpus: (
        Annotated[
            Annotated[Literal["all"], Tag("<all>")] | Annotated[list[Annotated[int, Field(ge=0)]], Tag("<ids>")],
            Discriminator(_gpus_shape),
        ]
        | None
    ) = Field(default=None, examples=[[0, 1]])
    # Share of each GPU's memory this server may use; required when it shares a GPU with vLLM.
    gpu_memory_budget: Fraction | None = None
    # Escape hatches, checked by _checks_server_args.py: options appended after llmfleet's own
    # (vLLM, llama-server) and environment variables for the server (every kind). Text only: a
    # YAML number or boolean here is an error that says to quote it, never converted.
    args: list[str] = []
    env: dict[EnvVarName, str] = {}
    limits: DeploymentLimits | None = None  # LiteLLM's, for every name this provider serves

    @field_validator("gpus", mode="before")
    @classmethod
    def _gpu_ids(cls, value: object) -> object:
        # One message for every wrong shape, instead of one per member of the union.
        how = "give `all`, or a list of device ids such as [0, 1]; for no GPU, remove the key"
        if value is None or value == "all":
            return value
        if not isinstance(value, list) or not value:
            raise ValueError(f"`gpus: {value!r}` is not a GPU list: {how}")
        return value  # each id is checked by the schema, where it is written

    @field_validator("gpus")
    @classmethod
    def _gpus_once(cls, value: object) -> object:
        if isinstance(value, list):
            repeated = sorted({g for g in value if value.count(g) > 1})
            if repeated:
                raise ValueError(f"GPU {repeated[0]} is listed twice: list each device once")
        return value

    @property
    def listen_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.kind]  # type: ignore[attr-defined]


# What `ollama pull` takes (Ollama's types/model/name.go): [host[:port]/][namespace/]model[:tag]; only
# the host, the first of three parts, may carry a port (a registry of your own: registry.internal:5000).
_OLLAMA_REF = re.compile(r"^(?:(?P<host>[\w.-]+(?::\d{1,5})?)/(?P<ns>[\w.-]+)/|[\w.-]+/)?[\w.-]+(?::[\w.-]+)?$")
# Registries that speak only https: `insecure` (plain http) is never right for them.
_HTTPS_ONLY = ("registry.ollama.ai", "ollama.com", "hf.co", "huggingface.co")


def _ollama_ref(ref: str) -> str:
    if not _OLLAMA_REF.match(ref):
        raise ValueError(
            f"'{ref}' is not something `ollama pull` takes: give a library model (name:tag), "
            "a GGUF on Hugging Face (hf.co/user/repo:quant) or a model in a registry of yours "
            "(host[:port]/namespace/model:tag)"
        )
    return ref


def ollama_registry(ref: str) -> str | None:
    """The registry host a pull reference names, or None for Ollama's own library."""
    match = _OLLAMA_REF.match(ref)
    return match["host"] if match else None


def _ollama_gguf(path: str) -> str:
    # Whether the path is under the container's /models is checked with the stack (gguf-not-mounted),
    # whose gguf_dir turns a host path into the one to write.
    if not path.endswith(".gguf") or any(c.isspace() for c in path):
        raise ValueError(
            f"'{path}' is not a .gguf file under /models: give its path in the container, "
            "/models/<file>.gguf (the host's gguf_dir is mounted at /models)"
        )
    return path


def ollama_listed_name(name: str) -> str:
    """A model name as Ollama lists it: a bare name is `name:latest`, and the case is kept as written.

    Ollama keeps one model for names that differ only by case (`create`, `pull`, `cp` and `rm` match
    ignoring case, and the first spelling stays), but its chat finds a model only by the spelling it
    lists (0.14.1, the version the stacks pin; ignoring case only from 0.16.2). So the name is
    compared as it is; `.casefold()` of it tells only whether two names are one Ollama model. A tag is
    what follows the last `:` after the last `/`: a registry's port (`host:5000/library/m`) is not one."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


class OllamaModel(_Strict):
    """One model of an Ollama server: the name clients use at the gateway and where Ollama gets it.

    By default Ollama pulls the name itself from its library. `pull` names another source (a
    library tag, or `hf.co/{user}/{repo}:{quant}`): Ollama lists the model under that reference, so
    the gateway asks Ollama for it while clients keep the declared name. `gguf` builds the model
    from a file under /models (`ollama create <name>` from a Modelfile `FROM <file>`)."""

    name: ModelName
    pull: Annotated[str, AfterValidator(_ollama_ref)] | None = None
    gguf: Annotated[str, AfterValidator(_ollama_gguf)] | None = None
    # Pull over plain http (`ollama pull --insecure`): Ollama speaks only https to a registry unless
    # told so, and an internal registry without TLS answers that with "tls: first record does not look
    # like a TLS handshake". Only for a `pull` from a registry the reference names.
    insecure: bool = False
    limits: DeploymentLimits | None = None  # over the provider's, for this name

    @model_validator(mode="after")
    def _one_source(self) -> OllamaModel:
        if self.pull is not None and self.gguf is not None:
            raise ValueError("give at most one of `pull` (a library tag or hf.co/...) or `gguf` (a file under /models)")
        if self.insecure:
            host = ollama_registry(self.pull) if self.pull else None
            if host is None:
                raise ValueError(
                    "`insecure: true` pulls over plain http from a registry of yours: it needs `pull` naming that "
                    "registry (host[:port]/namespace/model:tag); remove it for Ollama's library or a GGUF file"
                )
            if host.split(":")[0].lower() in _HTTPS_ONLY:
                raise ValueError(f"`insecure: true` would pull from {host} over plain http, which it does not "
                                 "serve: remove `insecure`")  # fmt: skip
        return self

    @property
    def ollama_name(self) -> str:
        """The name Ollama lists the model under, and the one it is asked for."""
        return self.pull or self.name


def _name_or_map(value: object) -> object:
    """A bare name is shorthand for {name: <it>}; a value that is neither is reported as the name
    it should have been, so YAML's `on` still reads as "quote it"."""
    if isinstance(value, str):
        return {"name": value}
    if isinstance(value, dict):
        return value
    raise PydanticCustomError("string_type", "Input should be a valid string")


class OllamaProvider(_Local):
    kind: Literal["ollama"]
    # A bare string is shorthand for {name: <it>}: pulled from Ollama's library as named.
    models: Annotated[list[Annotated[OllamaModel, BeforeValidator(_name_or_map)]], Field(min_length=1)]
    context_length: Tokens | None = None
    parallel: Slots | None = None

    @property
    def served_names(self) -> list[str]:
        return [m.name for m in self.models]

    def ollama_name(self, served: str) -> str:
        return next(m.ollama_name for m in self.models if m.name == served)


class VllmProvider(_Local):
    kind: Literal["vllm"]
    model: ModelName  # Hugging Face id or a path inside the container
    served_name: ModelName
    max_model_len: Tokens | None = None
    # vLLM's own default is 0.9; we make it explicit so the GPU budget check can add it up.
    gpu_memory_utilization: Fraction = 0.9
    tensor_parallel_size: Annotated[int, Field(ge=1, examples=[2])] = 1
    max_num_seqs: Slots | None = None

    @property
    def served_names(self) -> list[str]:
        return [self.served_name]

    @property
    def context_length(self) -> int | None:
        return self.max_model_len


class _Gguf(_Local):
    gguf: str | None = None  # a path under /models inside the container
    alias: ModelName
    context_length: Tokens | None = None
    # None means "all layers when a GPU is given, none otherwise".
    gpu_layers: Annotated[int, Field(examples=[99])] | None = None

    @property
    def served_names(self) -> list[str]:
        return [self.alias]


class LlamaCppProvider(_Gguf):
    kind: Literal["llama_cpp"]
    hf: Annotated[str, StringConstraints(pattern=r"^[\w.-]+/[\w.-]+(:[\w.-]+)?$")] | None = None
    parallel: Slots | None = None

    @field_validator("alias")
    @classmethod
    def _alias_is_one_name(cls, alias: str) -> str:
        if "," in alias:
            raise ValueError("llama-server reads `--alias a,b` as several names: use an alias without ','")
        return alias

    @model_validator(mode="wrap")
    @classmethod
    def _one_source(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> LlamaCppProvider:
        # Wrapped, not "after": a bare `kind: llama_cpp` then lists everything it lacks in one run.
        wrong = ""
        if isinstance(data, dict) and (data.get("gguf") is None) == (data.get("hf") is None):
            wrong = "give exactly one of `gguf` (a file under /models) or `hf` (repo[:quant])"
        try:
            provider = handler(data)
        except ValidationError as exc:
            if not wrong:
                raise
            errors = [InitErrorDetails(type=e["type"], loc=e["loc"], input=e["input"], ctx=e.get("ctx", {}))
                      for e in exc.errors()]  # fmt: skip
            errors.append(InitErrorDetails(type="value_error", loc=(), input=data, ctx={"error": ValueError(wrong)}))
            raise ValidationError.from_exception_data(exc.title, errors) from None
        if wrong:
            raise ValueError(wrong)
        return provider


class LlamaCppPythonProvider(_Gguf):
    kind: Literal["llama_cpp_python"]
    gguf: str

    @model_validator(mode="after")
    def _gguf_path(self) -> LlamaCppPythonProvider:
        if not self.gguf.endswith(".gguf"):
            raise ValueError("`gguf` must name a .gguf file under /models")
        return self


class ExternalModel(_Strict):
    name: ModelName  # the name clients use at the gateway
    upstream: ModelName | None = None  # the name the external API knows, when different
    limits: DeploymentLimits | None = None  # over the provider's, for this name

    @property
    def upstream_name(self) -> str:
        return self.upstream or self.name


# LiteLLM's model prefix for each external API (its providers, read in litellm 1.108.7's
# llms/<provider>/): `openai` is any OpenAI-compatible endpoint; `ollama` uses Ollama's native chat.
EXTERNAL_PREFIX = {
    "ollama": "ollama_chat",
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "gemini",
    "azure": "azure",
    "openrouter": "openrouter",
    "groq": "groq",
}
# The variable each hosted API's key is usually kept in: what the hint for a missing key names.
EXTERNAL_KEY_ENV = {
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "azure": "AZURE_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "groq": "GROQ_API_KEY",
}


class ExternalProvider(_Strict):
    """An API we route to but do not provision (Ollama Cloud, OpenAI, Anthropic, Gemini, Azure
    OpenAI, OpenRouter, Groq, any OpenAI-compatible endpoint)."""

    kind: Literal["external"]
    api: Literal["ollama", "openai", "anthropic", "gemini", "azure", "openrouter", "groq"]
    # Optional where LiteLLM knows the endpoint (OpenAI, Anthropic, Gemini, OpenRouter, Groq).
    base_url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s/]+(/\S*)?$")] | None = None
    api_version: Annotated[str, StringConstraints(pattern=r"^\S+$")] | None = None  # Azure OpenAI's
    api_key_env: EnvVarName | None = None
    context_length: Tokens | None = None
    limits: DeploymentLimits | None = None  # LiteLLM's, for every name this provider serves
    # A bare string is shorthand for {name: <it>}; normalised once, at load.
    models: Annotated[list[Annotated[ExternalModel, BeforeValidator(_name_or_map)]], Field(min_length=1)]

    @model_validator(mode="after")
    def _what_the_api_needs(self) -> ExternalProvider:
        if self.base_url is None and self.api == "ollama":
            raise ValueError("`api: ollama` needs `base_url` (https://ollama.com, or your Ollama's address)")
        if self.api == "azure":
            missing = [k for k in ("base_url", "api_version") if getattr(self, k) is None]
            if missing:
                raise ValueError(
                    f"`api: azure` needs {' and '.join(f'`{k}`' for k in missing)}: base_url is your resource's "
                    "endpoint (https://<resource>.openai.azure.com), api_version the API version to call "
                    "(e.g. 2024-10-21); each model's `upstream` is its deployment name"
                )
        elif self.api_version is not None:
            raise ValueError("`api_version` is for `api: azure` only: remove it")
        if self.api in EXTERNAL_KEY_ENV and self.api_key_env is None:
            raise ValueError(
                f"`api: {self.api}` needs a key: give `api_key_env: {EXTERNAL_KEY_ENV[self.api]}` and set it as "
                "the stack secret llmfleet:apiKeys." + EXTERNAL_KEY_ENV[self.api]
            )
        return self

    @property
    def served_names(self) -> list[str]:
        return [m.name for m in self.models]


Provider = Annotated[
    OllamaProvider | VllmProvider | LlamaCppProvider | LlamaCppPythonProvider | ExternalProvider,
    Field(discriminator="kind"),
]
LocalProvider = OllamaProvider | VllmProvider | LlamaCppProvider | LlamaCppPythonProvider


def deployment_id(group: str, provider: str) -> str:
    """The id of a provider's deployment in a model group: what the gateway config gives LiteLLM
    (`model_info.id`) and what LiteLLM returns in `x-litellm-model-id`, so probe can tell which
    deployment answered a name."""
    return f"{group}@{provider}"


class GroupMember(_Strict):
    provider: ProviderName
    model: ModelName | None = None  # defaults to the provider's only served name
    weight: Annotated[float, Field(gt=0, examples=[0.7])] = 1.0


class Alias(_Strict):
    model: ModelName
    hidden: Annotated[bool, Field(examples=[True])] = False


class Routes(_Strict):
    # One gateway name served by several providers, load-balanced by weight.
    groups: dict[ModelName, Annotated[list[GroupMember], Field(min_length=2)]] = {}
    fallbacks: dict[ModelName, Annotated[list[ModelName], Field(min_length=1)]] = {}
    context_window_fallbacks: dict[ModelName, Annotated[list[ModelName], Field(min_length=1)]] = {}
    aliases: dict[
        ModelName,
        Annotated[
            Annotated[ModelName, Tag("<name>")] | Annotated[Alias, Tag("<alias>")],
            Discriminator(lambda v: "<alias>" if isinstance(v, dict | Alias) else "<name>"),
        ],
    ] = {}

    def alias_entries(self) -> dict[str, Alias]:
        return {k: v if isinstance(v, Alias) else Alias(model=v) for k, v in self.aliases.items()}


class GatewaySettings(_Strict):
    """LiteLLM's own settings, merged into what llmfleet renders. Keys are checked against the
    pinned LiteLLM and against what llmfleet derives (_checks_gateway.py); values are LiteLLM's."""

    litellm_settings: dict[str, Any] = {}
    router_settings: dict[str, Any] = {}
    general_settings: dict[str, Any] = {}


class Catalog(_Strict):
    providers: Annotated[dict[ProviderName, Provider], Field(min_length=1)]
    routes: Routes = Routes()
    gateway: GatewaySettings = GatewaySettings()

    def local_providers(self) -> dict[str, LocalProvider]:
        return {n: p for n, p in self.providers.items() if not isinstance(p, ExternalProvider)}


WILDCARD = re.compile(r"[*?]")
