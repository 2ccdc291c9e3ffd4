"""Checks of where each model comes from: that the server is asked for a name it can fetch or
serve, and that a model file has a way onto its host."""

from __future__ import annotations

import posixpath
from urllib.parse import urlsplit

from ._catalog import (
    ExternalProvider,
    LlamaCppProvider,
    LlamaCppPythonProvider,
    LocalProvider,
    OllamaModel,
    OllamaProvider,
    ollama_listed_name,
)
from ._checks_context import CheckContext
from ._errors import KeyPath

# Where every server container sees the host's gguf_dir (components/servers/gguf.py mounts it).
GGUF_DIR = "/models"

# Ollama's own API host: it serves its cloud models by their names without the `-cloud` suffix.
OLLAMA_CLOUD_HOSTS = {"ollama.com", "www.ollama.com"}


def cloud_tag_stripped(name: str) -> str | None:
    """`gpt-oss:120b-cloud` -> `gpt-oss:120b`, `glm-4.6:cloud` -> `glm-4.6`; None for other names.
    The `-cloud` tags exist for a signed-in local Ollama that offloads to ollama.com; ollama.com's
    API itself knows the model by the rest of the name."""
    model, _, tag = name.rpartition(":")
    if not model:
        return None
    if tag == "cloud":
        return model
    if tag.endswith("-cloud"):
        return f"{model}:{tag.removesuffix('-cloud')}"
    return None


def ollama_cloud_names(ctx: CheckContext) -> None:
    for pname, p in ctx.catalog.providers.items():
        if not isinstance(p, ExternalProvider):  # either API: ollama.com/v1 is OpenAI-compatible
            continue
        if (urlsplit(p.base_url or "").hostname or "").lower() not in OLLAMA_CLOUD_HOSTS:
            continue
        for i, m in enumerate(p.models):
            served = cloud_tag_stripped(m.upstream_name)
            if served is None:
                continue
            path: KeyPath = ("providers", pname, "models", i, *(("upstream",) if m.upstream else ()))
            ctx.error(
                ctx.cat,
                path,
                f"ollama.com does not serve '{m.upstream_name}': `-cloud` tags are for a signed-in local Ollama, "
                f"and ollama.com's API serves this model as '{served}'",
                "ollama-cloud-tag",
                "Keep the gateway name and ask ollama.com for the name it serves: "
                f"`{{name: {m.name}, upstream: {served}}}`.",
            )


def ollama_sources(ctx: CheckContext) -> None:
    """Two declared names fetching one Ollama model would share it: removing either from the
    catalog would `ollama rm` the other's model too. Names that differ only by case are one model
    to Ollama too, kept under the spelling fetched first, which is the only one an Ollama before
    0.16.2 answers chat for: the other name would never answer."""
    for pname, p in ctx.catalog.providers.items():
        if not isinstance(p, OllamaProvider):
            continue
        first: dict[str, OllamaModel] = {}
        for i, m in enumerate(p.models):
            key = ollama_listed_name(m.ollama_name).casefold()
            other = first.get(key)
            if other is None:
                first[key] = m
            elif other.name == m.name:
                continue  # the same name twice is a duplicate-model
            elif ollama_listed_name(other.ollama_name) == ollama_listed_name(m.ollama_name):
                ctx.error(
                    ctx.cat,
                    ("providers", pname, "models", i),
                    f"'{m.name}' and '{other.name}' both fetch '{m.ollama_name}': each declared model is its own "
                    "Ollama model, removed when it leaves the catalog",
                    "ollama-model-twice",
                    f"Declare it once, and route the other name to it with an alias: "
                    f"routes.aliases.{m.name}: {other.name}.",
                )
            else:
                ctx.error(
                    ctx.cat,
                    ("providers", pname, "models", i),
                    f"'{m.name}' fetches '{m.ollama_name}' and '{other.name}' fetches '{other.ollama_name}', names "
                    "that differ only by case: Ollama keeps them as one model, listed under the spelling fetched "
                    "first, and before 0.16.2 (the stacks pin 0.14.1) answers chat only for that spelling, so one "
                    "of the two would never answer",
                    "ollama-model-twice",
                    f"Declare the model once, with one spelling, and route the other name to it with an alias: "
                    f"routes.aliases.{m.name}: {other.name}.",
                )


def model_files(pname: str, p: LocalProvider) -> list[tuple[KeyPath, str]]:
    """Every path to a file (or, for vLLM, a directory) of model weights that a provider's server
    reads in its container, with where the catalog writes it. A vLLM `model` is a path only when
    absolute or relative to a directory (`./`, `../`, `~/`: vLLM would not find those either);
    otherwise it is a Hugging Face id."""
    if isinstance(p, LlamaCppProvider | LlamaCppPythonProvider):
        return [(("providers", pname, "gguf"), p.gguf)] if p.gguf else []
    if isinstance(p, OllamaProvider):
        return [(("providers", pname, "models", i, "gguf"), m.gguf) for i, m in enumerate(p.models) if m.gguf]
    return [(("providers", pname, "model"), p.model)] if p.model.startswith(("/", "./", "../", "~/")) else []


def in_container(path: str) -> str | None:
    """The path relative to /models when the container sees it there, else None."""
    normal = posixpath.normpath(path)
    return normal.removeprefix(f"{GGUF_DIR}/") if normal.startswith(f"{GGUF_DIR}/") else None


def gguf_paths(ctx: CheckContext) -> None:
    """A model path outside /models names nothing the container has: the host's gguf_dir is the
    only host directory mounted, at /models, so a host path (`/srv/models/x.gguf`) passes every
    other check and the server then never becomes healthy. When the path is under the host's
    gguf_dir, the hint is the exact path to write."""
    for pname, p in ctx.catalog.local_providers().items():
        host = ctx.stack.host_of(pname)
        gguf_dir = ctx.stack.hosts[host].gguf_dir if host in ctx.stack.hosts else None
        for path, value in model_files(pname, p):
            if in_container(value) is not None:
                continue
            name = posixpath.basename(posixpath.normpath(value)) or "<file>"
            on_host = _under(value, gguf_dir) if gguf_dir else None
            if gguf_dir and on_host:
                hint = (
                    f"Write the path the container sees: {GGUF_DIR}/{on_host} "
                    f"(llmfleet:hosts.{host}.gguf_dir, {gguf_dir}, is mounted read-only at {GGUF_DIR})."
                )
            elif gguf_dir:
                hint = (
                    f"Put it in llmfleet:hosts.{host}.gguf_dir ({gguf_dir}, mounted read-only at {GGUF_DIR}) "
                    f"and write the path the container sees: {GGUF_DIR}/{name}."
                )
            else:
                hint = (
                    f"Put it in a directory on host '{host}', name that directory in the stack as "
                    f"llmfleet:hosts.{host}.gguf_dir (mounted read-only at {GGUF_DIR}), "
                    f"and write the path the container sees: {GGUF_DIR}/{name}."
                )
            ctx.error(
                ctx.cat,
                path,
                f"'{value}' is not under {GGUF_DIR}, the one directory of host files the {p.kind} container sees: "
                "the server would not find it",
                "gguf-not-mounted",
                hint,
            )  # fmt: skip


def _under(path: str, directory: str) -> str | None:
    """`path` relative to the host directory `directory`, when inside it."""
    normal, base = posixpath.normpath(path), posixpath.normpath(directory)
    return normal.removeprefix(f"{base}/") if normal.startswith(f"{base}/") and base != "/" else None


def gguf_files(ctx: CheckContext) -> None:
    """A model path on a host without `gguf_dir` is read from a named volume that starts empty:
    nothing llmfleet does puts the file there, so the server would wait out its health check."""
    for pname, p in ctx.catalog.local_providers().items():
        files = [(path, f) for path, f in model_files(pname, p) if in_container(f) is not None]
        if ctx.stack.on_kubernetes:
            kube = ctx.stack.kubernetes
            for path, gguf in files if kube and not kube.gguf else ():
                ctx.warn(ctx.cat, path, f"'{gguf}' would be read from an empty directory: the stack names no "
                         "GGUF storage for the cluster", "gguf-without-dir",
                         "Name it: llmfleet:kubernetes.gguf: {claim: <PersistentVolumeClaim>} or "
                         "{host_path: <directory on the pools' nodes>} (mounted read-only at /models).")  # fmt: skip
            continue
        host = ctx.stack.host_of(pname)
        if not files or host not in ctx.stack.hosts or ctx.stack.hosts[host].gguf_dir:
            continue
        for path, gguf in files:
            ctx.warn(
                ctx.cat,
                path,
                f"'{gguf}' would be read from the volume llmfleet-{ctx.name}-gguf on host '{host}', "
                "which starts empty: nothing puts the file there",
                "gguf-without-dir",
                f"Put the file in a directory on host '{host}' and name it in the stack: "
                f"llmfleet:hosts.{host}.gguf_dir (mounted read-only at /models); "
                "or copy it into that volume before `pulumi up`.",
            )
