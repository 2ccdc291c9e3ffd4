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
    write_project(tmp_path, example, stack + "  llmfleet:hosts: {local: {gguf_dir: /srv/models}}\n")
    assert [short(p) for p in problems_of(tmp_path)] == []
