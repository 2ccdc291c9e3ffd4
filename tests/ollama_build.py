"""Build the real Ollama from its Go module, once, into a cache: the `ollama` binary the tests start
with `ollama serve` on loopback and drive with its own CLI (`create`, `list`, `rm`).

Only the Go module proxy is reachable here (no GitHub releases, no Docker Hub), so Ollama is built
from `github.com/ollama/ollama` at the version the stacks pin (`ollama/ollama:0.14.1`), through a
wrapper module under `tools/ollama/` whose go.mod and go.sum pin it and every dependency (`go
install module@version` would do the same, but a wrapper's files are what the cache is keyed by, as
for the engine). CPU only, with cgo: Ollama compiles llama.cpp and ggml into the binary itself.

Module zips drop every `vendor/` directory, so llama.cpp's bundled third-party headers are missing
from the module cache: Debian's packages stand in for them (`.ci/system-packages` installs them):
`nlohmann-json3-dev` (`nlohmann/json_fwd.hpp`) and `libstb-dev` (`stb/stb_image.h`) are found in
/usr/include as llama.cpp includes them; `libminiaudio-dev` installs `miniaudio.h` at the top of
/usr/include while llama.cpp includes `miniaudio/miniaudio.h`, so a copy is laid out that way in the
cache and passed with `CGO_CPPFLAGS=-I<dir>`. The version is stamped with `-ldflags -X`, or the
binary says 0.0.0 (and the server reports it).

The cache directory is keyed by every file of the wrapper module, the Go toolchain, the build flags
and the three headers; a finished build is marked by a `complete` file written last, so an
interrupted build is redone, never half-used. `.ci/setup` calls `python -m tests.ollama_build`, so
the build's minutes (about 6 on an idle 2-core machine) never count against a test's timeout.

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

from tests.engine_build import GO, required_version
from tests.llama_build import CACHE_ROOT

OLLAMA_SOURCES = Path(__file__).resolve().parent.parent / "tools" / "ollama"
MODULE = "github.com/ollama/ollama"
VERSION = required_version(OLLAMA_SOURCES, MODULE)  # "v0.14.1"
VERSION_VAR = f"{MODULE}/version.Version"
# cgo on (llama.cpp and ggml are C/C++), no GPU build tags: the CPU backend only. GOTOOLCHAIN=auto:
# an older Go (1.21+, a distribution's) fetches the Go that the go.mod names from the module proxy.
GO_ENV = {"CGO_ENABLED": "1", "GOFLAGS": "-mod=readonly -buildvcs=false", "GOTOOLCHAIN": "auto"}
LDFLAGS = ("-s", "-w", f"-X {VERSION_VAR}={VERSION.removeprefix('v')}")
# The headers the module zip lacks: where llama.cpp includes them from, the Debian package that
# provides each, and where that package puts it.
HEADERS = (
    ("nlohmann/json_fwd.hpp", "nlohmann-json3-dev", ("/usr/include/nlohmann/json_fwd.hpp",)),
    ("stb/stb_image.h", "libstb-dev", ("/usr/include/stb/stb_image.h",)),
    ("miniaudio/miniaudio.h", "libminiaudio-dev", ("/usr/include/miniaudio/miniaudio.h", "/usr/include/miniaudio.h")),
)


def _headers() -> dict[str, Path]:
    """Each missing header's system file, or a RuntimeError naming the packages to install."""
    found: dict[str, Path] = {}
    missing = []
    for included, package, candidates in HEADERS:
        path = next((Path(c) for c in candidates if Path(c).is_file()), None)
        if path is None:
            missing.append(f"{package} ({included})")
        else:
            found[included] = path
    if missing:
        raise RuntimeError(
            f"the headers that Ollama's module zip lacks are not installed: {', '.join(missing)}. "
            "Install them with `bash .ci/system-packages` (as root or through sudo)."
        )
    return found


def cache_dir() -> Path:
    digest = hashlib.sha256()
    for path in sorted(p for p in OLLAMA_SOURCES.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(OLLAMA_SOURCES)).encode() + b"\0" + path.read_bytes() + b"\0")
    go = subprocess.run([GO, "version"], capture_output=True, text=True, check=True).stdout.strip()
    digest.update(json.dumps([go, GO_ENV, LDFLAGS]).encode())
    for included, path in sorted(_headers().items()):
        digest.update(included.encode() + b"\0" + path.read_bytes() + b"\0")
    return CACHE_ROOT / f"ollama-{VERSION}-{digest.hexdigest()[:12]}"


def _binary(root: Path) -> Path:
    return root / "bin" / "ollama"


def ensure_built(log=sys.stderr) -> Path:
    """The cached `ollama` binary, building it first if the cache is cold. Safe to call concurrently."""
    root = cache_dir()
    if (root / "complete").exists():
        return _binary(root)
    root.mkdir(parents=True, exist_ok=True)
    with (root.parent / f"{root.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second caller waits for the first build, then reuses it
        if not (root / "complete").exists():
            _build(root, log)
    return _binary(root)


def _run(cmd: list[str], log_path: Path, env: dict[str, str]) -> None:
    with log_path.open("ab") as log_file:
        log_file.write(f"\n$ (cd {OLLAMA_SOURCES} && {' '.join(cmd)})\n".encode())
        log_file.flush()
        done = subprocess.run(cmd, cwd=OLLAMA_SOURCES, env=env, stdout=log_file, stderr=log_file, check=False)
    if done.returncode != 0:
        tail = log_path.read_text(errors="replace")[-4000:]
        raise RuntimeError(f"`{' '.join(cmd[:3])} ...` failed ({done.returncode}); log {log_path}:\n{tail}")


def _build(root: Path, log) -> None:
    for stale in ("bin", "include"):
        shutil.rmtree(root / stale, ignore_errors=True)
    include = root / "include"
    for included, path in _headers().items():
        target = include / included
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    build_log = root / "build.log"
    build_log.write_text("")
    env = {**os.environ, **GO_ENV, "CGO_CPPFLAGS": f"-I{include}"}
    started = time.monotonic()

    print(f"ollama_build: building ollama {VERSION} (cgo, CPU; about 6 minutes on 2 cores) ...", file=log, flush=True)
    _run([GO, "mod", "download"], build_log, env)
    partial = root / "bin" / "ollama.partial"
    partial.parent.mkdir()
    _run([GO, "build", "-ldflags", " ".join(LDFLAGS), "-o", str(partial), MODULE], build_log, env)
    partial.rename(_binary(root))

    (root / "complete").write_text(f"{time.monotonic() - started:.0f} s\n")
    print(f"ollama_build: done in {time.monotonic() - started:.0f} s -> {_binary(root)}", file=log, flush=True)


def version(binary: Path) -> str:
    """What the built binary says its version is: `ollama -v` with no server to ask answers
    "Warning: client version is 0.14.1" (after a warning that no server runs)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), "OLLAMA_HOST": "127.0.0.1:1"}
    done = subprocess.run([str(binary), "-v"], capture_output=True, text=True, timeout=60, check=False, env=env)
    said = (done.stdout + done.stderr).strip()
    return said.rsplit("client version is ", 1)[-1] if "client version is " in said else said


def main() -> int:
    started = time.monotonic()
    try:
        binary = ensure_built()
        said = version(binary)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        print(f"ollama_build: {exc}", file=sys.stderr)
        return 1
    print(f"ollama: {binary}")
    print(f"version: {said}")
    print(f"ollama_build: ready in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
