"""Build actionlint from the Go module proxy, once, into the tests' cache.

The native binary runs `shellcheck` (Debian's package, on PATH) over every `run:` script, so the
scripts inside the workflows are linted too; the WebAssembly build on npm cannot start other
programs. `go install <module>@<version>` builds with the module's own go.sum, so the version
below pins everything. `.ci/run` calls `python -m tests.actionlint_build` before pytest.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.engine_build import GO
from tests.llama_build import CACHE_ROOT

VERSION = "v1.7.12"
MODULE = "github.com/rhysd/actionlint/cmd/actionlint"


def binary() -> Path:
    return CACHE_ROOT / f"actionlint-{VERSION}" / "actionlint"


def ensure_built() -> Path:
    path = binary()
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.parent / "partial"
    partial.mkdir(exist_ok=True)
    env = {**os.environ, "GOBIN": str(partial), "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false", "GOTOOLCHAIN": "auto"}
    done = subprocess.run([GO, "install", f"{MODULE}@{VERSION}"], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"`go install {MODULE}@{VERSION}` failed ({done.returncode}):\n{done.stderr[-3000:]}")
    (partial / "actionlint").rename(path)  # in place only once complete
    return path


if __name__ == "__main__":
    try:
        print(ensure_built())
    except RuntimeError as exc:
        print(f"actionlint_build: {exc}", file=sys.stderr)
        sys.exit(1)
