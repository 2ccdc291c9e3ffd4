"""Build a throwaway llmfleet project (stack file + catalog) in a temporary directory."""

from __future__ import annotations

from pathlib import Path

import llmfleet

# Every kind's image, pinned, and a (dummy, encrypted-looking) master key: a stack with no
# problems of its own, so a test sees only what its catalog or its extra stack keys cause.
BASE_STACK = """\
config:
  llmfleet:catalog: config/catalog.yaml
  llmfleet:images:
    ollama: ollama/ollama:0.14.1
    vllm: vllm/vllm-openai:v0.18.0
    llama_cpp: ghcr.io/ggml-org/llama.cpp:server-b9628
    llama_cpp_python: ghcr.io/abetlen/llama-cpp-python:v0.3.16
  llmfleet:apiKeys:
    OPENAI_API_KEY: {secure: v1:CCCCCCCCCCCCCCCC}
    OLLAMA_API_KEY: {secure: v1:DDDDDDDDDDDDDDDD}
  llmfleet:masterKey:
    secure: v1:AAAAAAAAAAAAAAAA:BBBBBBBBBBBBBBBB
"""


def write_project(root: Path, catalog: str, stack: str = BASE_STACK, name: str = "test") -> Path:
    (root / "config").mkdir(parents=True, exist_ok=True)
    (root / "stacks").mkdir(exist_ok=True)
    (root / "config" / "catalog.yaml").write_text(catalog)
    (root / "stacks" / f"Pulumi.{name}.yaml").write_text(stack)
    return root


def problems_of(root: Path, name: str = "test") -> list[llmfleet.Problem]:
    """Every problem (errors and warnings) of loading the project's stack."""
    try:
        return llmfleet.load_fleet(root, name).warnings
    except llmfleet.ConfigError as exc:
        return exc.problems


def short(problem: llmfleet.Problem) -> str:
    """`line:col severity rule | keypath: message. hint`: what corpus files write after `# expect:`."""
    hint = f" {problem.hint}" if problem.hint else ""
    where = llmfleet.format_key_path(problem.path)
    return f"{problem.line}:{problem.col} {problem.severity} {problem.rule} | {where}: {problem.message}.{hint}"


def fleet_of(catalog: str, tmp_path: Path, stack: str = BASE_STACK) -> llmfleet.Fleet:
    return llmfleet.load_fleet(write_project(tmp_path, catalog, stack), "test")
