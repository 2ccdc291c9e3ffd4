"""The docker CLI where `pulumi up` runs, for the dynamic providers (Ollama pulls through
`docker exec`, each host's engine version check): one way to run it and to say why it failed.

Importing it must register nothing: the providers that use it are pickled by reference and loaded
in a fresh `python -m pulumi.dynamic` (see ollama_model.py)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence

# (argv, timeout seconds) -> (exit code, stdout, stderr); tests pass a fake one.
Runner = Callable[[Sequence[str], float], tuple[int, str, str]]


def run_docker(argv: Sequence[str], timeout: float) -> tuple[int, str, str]:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        return 127, "", "the docker CLI is not installed where `pulumi up` runs"
    except subprocess.TimeoutExpired:
        return 124, "", f"timed out after {timeout:.0f} s"
    return done.returncode, done.stdout, done.stderr
