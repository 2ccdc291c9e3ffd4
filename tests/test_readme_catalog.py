"""The README's catalog example, every key of it, validates: what it shows can be copied."""

from __future__ import annotations

import re
from pathlib import Path

from .fleetdir import BASE_STACK, problems_of, short, write_project

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_readmes_full_catalog_example_has_no_problems(tmp_path: Path) -> None:
    blocks = re.findall(r"```yaml\n(providers:\n.*?)```", README.read_text(), re.S)
    example = max(blocks, key=len)  # the one that shows every kind and section
    assert "gateway:" in example and "kind: external" in example
    secrets = "".join(f"    {k}: {{secure: v1:EEEE}}\n" for k in ("AZURE_API_KEY", "AWS_SECRET"))
    stack = BASE_STACK.replace("  llmfleet:masterKey:", secrets + "  llmfleet:masterKey:")
    # The GPU host the example is written for: CUDA images, and its GPUs' memory (Ollama's budget a limit).
    stack = stack.replace("llama.cpp:server-b9628", "llama.cpp:server-cuda-b9628").replace(
        "ghcr.io/abetlen/llama-cpp-python:v0.3.16", "llmfleet/llama-cpp-python-cuda:0.3.16"
    )
    write_project(tmp_path, example, stack + "  llmfleet:hosts: {local: {gguf_dir: /srv/models, gpu_memory_gib: 80}}\n")
    assert [short(p) for p in problems_of(tmp_path)] == []
