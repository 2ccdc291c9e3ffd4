"""What a server's extra `args` and `env` may not set: what llmfleet derives from the catalog.

Each server kind reads its settings in its own way, and every way to set a derived value is
listed here, so an extra argument or variable cannot quietly change the served name, the port,
the model or the context the gateway was told about. Spellings were read from the real servers:
llama-server's `--help` (the build from llama-cpp-python 0.3.16's vendored llama.cpp: every
option with its short and long forms and its LLAMA_ARG_* variable), llama-cpp-python's
`llama_cpp/server/settings.py` (pydantic-settings: every field is also an environment variable,
matched ignoring case), vLLM's `vllm/engine/arg_utils.py` and `vllm/utils/argparse_utils.py`
(argparse: `--flag=value`, underscores read as dashes, unambiguous prefixes of long options
accepted, `--config FILE` sets any option), and Ollama's `envconfig/config.go`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Derived:
    """A setting llmfleet derives: what it is, and what to write instead."""

    what: str
    instead: str


def _key(key: str) -> str:
    return f"Set `{key}` in the catalog instead"


_NAME = Derived("the served name", _key("alias"))
_PORT = Derived("the port", _key("port"))
_HOST = Derived(
    "the listen address",
    "A server listens on 0.0.0.0 inside its container; where it is reachable is the stack's "
    "`llmfleet:providers` placement (`host`, `publish`)",
)
_GGUF = Derived("the model file", _key("gguf` or `hf"))
_CTX = Derived("the context length", _key("context_length"))
_SLOTS = Derived("the parallel slots", _key("parallel"))
_LAYERS = Derived("the GPU layers", _key("gpu_layers"))
_KEY = Derived(
    "the API key",
    "The gateway sends local servers no real key (a placeholder at most): with one set, every request "
    "through the gateway would fail (401)",
)
_TLS = Derived(
    "the scheme (plain HTTP)",
    "The gateway and the healthcheck speak plain HTTP to the server; put TLS in front of the gateway",
)
_GPUS = Derived("the GPUs", _key("gpus"))
_CACHE = Derived("the download cache", "llmfleet keeps downloads on the stack's cache volume, which this would bypass")
# The checks turn this one's hint into the command that sets the stack secret.
HF_TOKEN = Derived("the Hugging Face token", "It is the stack secret llmfleet:hfToken")
_HF_TOKEN = HF_TOKEN

# Long and short options of llama-server, as its --help spells them.
LLAMA_SERVER_FLAGS: dict[str, Derived] = {
    **dict.fromkeys(["-m", "--model", "-mu", "--model-url", "-hf", "-hfr", "--hf-repo", "-hff", "--hf-file"], _GGUF),
    **dict.fromkeys(["-a", "--alias"], _NAME),
    "--host": _HOST,
    "--port": _PORT,
    **dict.fromkeys(["-c", "--ctx-size"], _CTX),
    **dict.fromkeys(["-np", "--parallel"], _SLOTS),
    **dict.fromkeys(["-ngl", "--gpu-layers", "--n-gpu-layers"], _LAYERS),
    **dict.fromkeys(["--api-key", "--api-key-file"], _KEY),
    "--api-prefix": Derived("the URL path", "The gateway and the healthcheck expect the API at /v1 and /health"),
    **dict.fromkeys(["--ssl-key-file", "--ssl-cert-file"], _TLS),
    **dict.fromkeys(["-hft", "--hf-token"], _HF_TOKEN),
}
LLAMA_SERVER_ENV: dict[str, Derived] = {
    **dict.fromkeys(["LLAMA_ARG_MODEL", "LLAMA_ARG_MODEL_URL", "LLAMA_ARG_HF_REPO", "LLAMA_ARG_HF_FILE"], _GGUF),
    "LLAMA_ARG_ALIAS": _NAME,
    "LLAMA_ARG_HOST": _HOST,
    "LLAMA_ARG_PORT": _PORT,
    "LLAMA_ARG_CTX_SIZE": _CTX,
    "LLAMA_ARG_N_PARALLEL": _SLOTS,
    "LLAMA_ARG_N_GPU_LAYERS": _LAYERS,
    "LLAMA_API_KEY": _KEY,
    "LLAMA_ARG_API_PREFIX": LLAMA_SERVER_FLAGS["--api-prefix"],
    **dict.fromkeys(["LLAMA_ARG_SSL_KEY_FILE", "LLAMA_ARG_SSL_CERT_FILE"], _TLS),
    **dict.fromkeys(["LLAMA_CACHE", "HF_HOME"], _CACHE),
    "HF_TOKEN": _HF_TOKEN,
}

# vLLM's options, dashes only (it reads `--max_model_len` as `--max-model-len`).
VLLM_FLAGS: dict[str, Derived] = {
    "--model": Derived("the model", _key("model")),
    "--served-model-name": Derived("the served name", _key("served_name")),
    "--host": _HOST,
    "--port": _PORT,
    "--uds": Derived("the port (a Unix socket instead)", "The gateway and the healthcheck reach the server by port"),
    "--max-model-len": Derived("the context length", _key("max_model_len")),
    "--gpu-memory-utilization": Derived("the GPU memory share", _key("gpu_memory_utilization")),
    **dict.fromkeys(
        ["-tp", "--tensor-parallel-size"], Derived("the tensor parallel size", _key("tensor_parallel_size"))
    ),
    "--max-num-seqs": Derived("the parallel sequences", _key("max_num_seqs")),
    "--api-key": _KEY,
    **dict.fromkeys(["--ssl-keyfile", "--ssl-certfile"], _TLS),
    "--hf-token": _HF_TOKEN,
    "--config": Derived(
        "every option", "A config file can set every option llmfleet derives: give the options themselves in `args`"
    ),
}
VLLM_ENV: dict[str, Derived] = {"VLLM_API_KEY": _KEY, "HF_TOKEN": _HF_TOKEN, "HF_HOME": _CACHE}

# llama-cpp-python's server settings (pydantic-settings, names matched ignoring case).
LLAMA_CPP_PYTHON_ENV: dict[str, Derived] = {
    "MODEL": _GGUF,
    "HF_MODEL_REPO_ID": _GGUF,
    "MODEL_ALIAS": _NAME,
    "HOST": _HOST,
    "PORT": _PORT,
    "N_CTX": _CTX,
    "N_GPU_LAYERS": _LAYERS,
    "API_KEY": _KEY,
    **dict.fromkeys(["SSL_KEYFILE", "SSL_CERTFILE"], _TLS),
    "CONFIG_FILE": Derived(
        "every setting", "A config file replaces the settings llmfleet derives: give each setting in `env`"
    ),
}

OLLAMA_ENV: dict[str, Derived] = {
    "OLLAMA_HOST": Derived("the listen address and port", _key("port")),
    "OLLAMA_MODELS": Derived(
        "where models are kept",
        "Models live in /root/.ollama: the stack's models volume, or `llmfleet:providers.<name>.ollama_models`",
    ),
    "OLLAMA_CONTEXT_LENGTH": _CTX,
    "OLLAMA_NUM_PARALLEL": _SLOTS,
    "OLLAMA_GPU_OVERHEAD": Derived(
        "the GPU memory Ollama leaves alone",
        "Set `gpu_memory_budget` in the catalog and the host's `gpu_memory_gib` in the stack instead",
    ),
}

# Every kind: the GPUs a container sees follow from `gpus`.
COMMON_ENV: dict[str, Derived] = {"CUDA_VISIBLE_DEVICES": _GPUS, "NVIDIA_VISIBLE_DEVICES": _GPUS}

ENV: dict[str, dict[str, Derived]] = {
    "ollama": OLLAMA_ENV,
    "vllm": VLLM_ENV,
    "llama_cpp": LLAMA_SERVER_ENV,
    "llama_cpp_python": LLAMA_CPP_PYTHON_ENV,
}
FLAGS: dict[str, dict[str, Derived]] = {"vllm": VLLM_FLAGS, "llama_cpp": LLAMA_SERVER_FLAGS}
# Kinds whose server is configured by environment variables only (no command line of ours).
ENV_ONLY = {
    "ollama": "`ollama serve` takes no options: Ollama reads its settings from environment variables. "
    "Give them in `env` (OLLAMA_KEEP_ALIVE, OLLAMA_FLASH_ATTENTION, ...)",
    "llama_cpp_python": "the llama-cpp-python server is configured by environment variables here, one for each "
    "setting of its llama_cpp/server/settings.py. Give them in `env` (CHAT_FORMAT, N_BATCH, FLASH_ATTN, ...)",
}


def flag_name(kind: str, token: str) -> str | None:
    """The option a command-line token sets (`--port=1` sets `--port`), as the server reads it;
    None for a value."""
    if not token.startswith("-") or token == "-" or _is_number(token):
        return None
    name = token.split("=", 1)[0]
    if kind == "vllm" and name.startswith("--"):
        name = "--" + name[2:].split(".", 1)[0].replace("_", "-")
    return name


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def derived_flag(kind: str, token: str) -> tuple[str, Derived] | None:
    """The derived setting an argument would override, with the option it is read as."""
    flags = FLAGS.get(kind, {})
    name = flag_name(kind, token)
    if name is None:
        return None
    if name in flags:
        return name, flags[name]
    if kind == "vllm" and name.startswith("--") and len(name) > 3:
        # argparse accepts any unambiguous prefix of a long option (allow_abbrev is on).
        matches = [f for f in flags if f.startswith("--") and f.startswith(name)]
        if len(matches) == 1:
            return matches[0], flags[matches[0]]
    return None


def derived_env(kind: str, name: str) -> tuple[str, Derived] | None:
    """The derived setting an environment variable would override, with the variable it is read as."""
    table = {**COMMON_ENV, **ENV[kind]}
    # llama-cpp-python's settings are matched ignoring case; other servers read exact names.
    key = name.upper() if kind == "llama_cpp_python" else name
    return (key, table[key]) if key in table else None


def looks_secret(name: str) -> bool:
    """A variable named like a credential: it would be plain text in the catalog, a git file."""
    upper = name.upper()
    return upper.endswith(("_KEY", "_TOKEN")) or "SECRET" in upper or "PASSWORD" in upper
