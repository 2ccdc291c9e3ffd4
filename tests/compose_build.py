"""Build Docker Compose from its Go module, once, into the tests' cache: what bench/deploy.py deploys
the same fleet with (`docker compose up -d --wait`), side by side with llmfleet's `pulumi up`.

Only the Go module proxy is reachable here (no GitHub releases, no Docker Hub), so Compose is built
from `github.com/docker/compose/v5` (its main package is `cmd`) through a wrapper module under
`tools/compose/` whose go.mod and go.sum pin it and every dependency, as for the engine and Ollama:
the wrapper's files are what the cache is keyed by. As upstream builds it (its Makefile and
Dockerfile): no cgo, `-trimpath`, the version stamped into `internal.Version` with `-ldflags -X`
(else it says "dev"). The build runs under `nice -n 10`: the machine's cores are shared.

The binary is laid out as a Docker CLI plugin, `<cache>/docker-config/cli-plugins/docker-compose`:
with `DOCKER_CONFIG` set to that directory, `docker compose ...` runs it, the way users run Compose
(`compose_env()`). The same file also runs standalone (`docker-compose ...`).

The cache directory is keyed by every file of the wrapper module, the Go toolchain and the build
flags; a finished build is marked by a `complete` file written last, so an interrupted build is
redone, never half-used. `.ci/setup` calls `python -m tests.compose_build`, so the build's minutes
never count against a test's or the benchmark's time.

Run as a script it prints the binary, its version and the time taken, and exits 0, or exits 1 with
the build log's tail.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.engine_build import GO, GO_ENV, _run, required_version
from tests.llama_build import CACHE_ROOT

COMPOSE_SOURCES = Path(__file__).resolve().parent.parent / "tools" / "compose"
MODULE = "github.com/docker/compose/v5"
VERSION = required_version(COMPOSE_SOURCES, MODULE)  # "v5.6.0"
LDFLAGS = ("-s", "-w", f"-X {MODULE}/internal.Version={VERSION}")
NICE = ("nice", "-n", "10")


def cache_dir() -> Path:
    digest = hashlib.sha256()
    for path in sorted(p for p in COMPOSE_SOURCES.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(COMPOSE_SOURCES)).encode() + b"\0" + path.read_bytes() + b"\0")
    go = subprocess.run([GO, "version"], capture_output=True, text=True, check=True).stdout.strip()
    digest.update(json.dumps([go, GO_ENV, LDFLAGS]).encode())
    return CACHE_ROOT / f"compose-{VERSION}-{digest.hexdigest()[:12]}"


def _config_dir(root: Path) -> Path:
    return root / "docker-config"


def _binary(root: Path) -> Path:
    return _config_dir(root) / "cli-plugins" / "docker-compose"


def ensure_built(log=sys.stderr) -> Path:
    """The cached `docker-compose` binary, building it first if the cache is cold. Safe to call
    concurrently."""
    root = cache_dir()
    if (root / "complete").exists():
        return _binary(root)
    root.mkdir(parents=True, exist_ok=True)
    with (root.parent / f"{root.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second caller waits for the first build, then reuses it
        if not (root / "complete").exists():
            _build(root, log)
    return _binary(root)


def _build(root: Path, log) -> None:
    shutil.rmtree(_config_dir(root), ignore_errors=True)
    build_log = root / "build.log"
    build_log.write_text("")
    started = time.monotonic()
    print(f"compose_build: building docker compose {VERSION} (about a minute on 2 cores) ...", file=log, flush=True)
    _run([*NICE, GO, "mod", "download"], build_log, COMPOSE_SOURCES)
    partial = root / "docker-compose.partial"
    _run([*NICE, GO, "build", "-trimpath", "-ldflags", " ".join(LDFLAGS), "-o", str(partial), f"{MODULE}/cmd"],
         build_log, COMPOSE_SOURCES)  # fmt: skip
    _binary(root).parent.mkdir(parents=True)
    partial.rename(_binary(root))
    (root / "complete").write_text(f"{time.monotonic() - started:.0f} s\n")
    print(f"compose_build: done in {time.monotonic() - started:.0f} s -> {_binary(root)}", file=log, flush=True)


def compose_env(binary: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (the process's environment by default) with DOCKER_CONFIG pointing at the directory
    whose `cli-plugins/` holds `binary`: `docker compose` then runs the build."""
    return {**(os.environ if base is None else base), "DOCKER_CONFIG": str(binary.parent.parent)}


def version(binary: Path) -> str:
    """What the built binary says its version is, standalone: `docker-compose version --short`."""
    done = subprocess.run([str(binary), "version", "--short"], capture_output=True, text=True, timeout=60,
                          check=False)  # fmt: skip
    return (done.stdout or done.stderr).strip()


def main() -> int:
    started = time.monotonic()
    try:
        binary = ensure_built()
        said = version(binary)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        print(f"compose_build: {exc}", file=sys.stderr)
        return 1
    print(f"compose: {binary}")
    print(f"version: {said}")
    print(f"compose_build: ready in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
