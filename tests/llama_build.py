"""Build the two real llama.cpp servers from the llama-cpp-python sdist on PyPI, once, into a cache.

The sdist vendors llama.cpp with `tools/server`, so one pinned download gives both kinds llmfleet
deploys: the native `llama-server` (cmake, only that target) and the llama-cpp-python server (a
wheel built from the same sdist, installed with its `[server]` extra into a venv of its own, so its
FastAPI/uvicorn pins cannot disturb LiteLLM's). CPU only, `-O1`: the tests need a server that loads
a tiny GGUF and answers, not speed.

The cache directory is keyed by the version and every build flag; a finished build is marked by a
`complete` file written last, so an interrupted build is redone, never half-used. `.ci/run` calls
`python -m tests.llama_build` before pytest, so the build's minutes never count against a test's
timeout; the test fixtures call `ensure_built()` too, which costs nothing when the cache is warm.

Run as a script it prints the two paths (and the time taken) and exits 0, or exits 1 with the
build log's tail.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

VERSION = "0.3.16"  # llama-cpp-python; its sdist vendors the llama.cpp whose server we build
# Every download is off (curl, and the prebuilt web UI where the tree declares it): nothing but
# PyPI is reachable here, and the tests serve a local file.
CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DCMAKE_C_FLAGS_RELEASE=-O1",
    "-DCMAKE_CXX_FLAGS_RELEASE=-O1",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DGGML_NATIVE=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_CURL=OFF",
)
OPTIONAL_OFF = ("LLAMA_OPENSSL", "LLAMA_USE_PREBUILT_UI", "LLAMA_BUILD_UI")
# The wheel: pip's own CMake invocation (scikit-build-core) with the same switches.
WHEEL_CMAKE_ARGS = "-DGGML_NATIVE=OFF -DLLAMA_CURL=OFF -DCMAKE_C_FLAGS_RELEASE=-O1 -DCMAKE_CXX_FLAGS_RELEASE=-O1"
# The server extra's dependencies, pinned (what a cold build installs).
SERVER_CONSTRAINTS = Path(__file__).with_name("llama_server_constraints.txt")
CACHE_ROOT = Path(os.environ.get("LLMFLEET_TEST_CACHE", Path.home() / ".cache" / "llmfleet-tests"))


@dataclass(frozen=True)
class LlamaServers:
    llama_server: Path  # the native binary
    python: Path  # a Python with `llama_cpp.server` importable


def cache_dir() -> Path:
    key = json.dumps(
        [VERSION, CMAKE_FLAGS, OPTIONAL_OFF, WHEEL_CMAKE_ARGS, sys.version_info[:2], SERVER_CONSTRAINTS.read_text()]
    )
    return CACHE_ROOT / f"llama-cpp-python-{VERSION}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def _paths(root: Path) -> LlamaServers:
    return LlamaServers(llama_server=root / "bin" / "llama-server", python=root / "venv" / "bin" / "python")


def ensure_built(log=sys.stderr) -> LlamaServers:
    """The cached servers, building them first if the cache is cold. Safe to call concurrently."""
    root = cache_dir()
    if (root / "complete").exists():
        return _paths(root)
    root.mkdir(parents=True, exist_ok=True)
    with (root.parent / f"{root.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second caller waits for the first build, then reuses it
        if not (root / "complete").exists():
            _build(root, log)
    return _paths(root)


def _run(cmd: list[str], log_path: Path, **kwargs) -> None:
    with log_path.open("ab") as log_file:
        log_file.write(f"\n$ {' '.join(cmd)}\n".encode())
        log_file.flush()
        done = subprocess.run(cmd, stdout=log_file, stderr=subprocess.STDOUT, check=False, **kwargs)
    if done.returncode != 0:
        tail = log_path.read_text(errors="replace")[-4000:]
        raise RuntimeError(f"`{' '.join(cmd[:3])} ...` failed ({done.returncode}); log {log_path}:\n{tail}")


def _build(root: Path, log) -> None:
    for stale in ("bin", "venv", "work"):
        shutil.rmtree(root / stale, ignore_errors=True)
    work = root / "work"
    work.mkdir()
    build_log = root / "build.log"
    build_log.write_text("")
    jobs = str(os.cpu_count() or 2)
    started = time.monotonic()

    print(f"llama_build: downloading llama-cpp-python=={VERSION} (sdist) ...", file=log, flush=True)
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--no-cache-dir",
            f"llama-cpp-python=={VERSION}",
            "-d",
            str(work),
        ],
        build_log,
    )
    (sdist,) = work.glob("llama_cpp_python-*.tar.gz")
    with tarfile.open(sdist) as tar:
        tar.extractall(work, filter="data")
    source = work / f"llama_cpp_python-{VERSION}"
    vendored = source / "vendor" / "llama.cpp"

    print("llama_build: building llama-server (cmake, -O1) ...", file=log, flush=True)
    declared = (vendored / "CMakeLists.txt").read_text() + (
        vendored / "tools" / "server" / "CMakeLists.txt"
    ).read_text()
    optional = [f"-D{name}=OFF" for name in OPTIONAL_OFF if f"option({name} " in declared]
    build_dir = work / "build"
    _run(["cmake", "-S", str(vendored), "-B", str(build_dir), *CMAKE_FLAGS, *optional], build_log)
    _run(["cmake", "--build", str(build_dir), "--target", "llama-server", "-j", jobs], build_log)
    (root / "bin").mkdir()
    binary = root / "bin" / "llama-server"
    shutil.copy2(build_dir / "bin" / "llama-server", binary)
    _run(["strip", str(binary)], build_log)

    print("llama_build: building the llama-cpp-python wheel ...", file=log, flush=True)
    wheels = work / "wheels"
    env = {**os.environ, "CMAKE_ARGS": WHEEL_CMAKE_ARGS, "CMAKE_BUILD_PARALLEL_LEVEL": jobs}
    # --no-cache-dir: pip's wheel cache is keyed by the sdist alone and ignores CMAKE_ARGS.
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", str(sdist), "-w", str(wheels)],
        build_log,
        env=env,
    )
    (wheel,) = wheels.glob("llama_cpp_python-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], build_log)
    _run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-cache-dir",
            f"{wheel}[server]",
            "-c",
            str(SERVER_CONSTRAINTS),
        ],
        build_log,
    )
    shutil.rmtree(work)
    (root / "complete").write_text(f"{time.monotonic() - started:.0f} s\n")
    print(f"llama_build: done in {time.monotonic() - started:.0f} s -> {root}", file=log, flush=True)


def main() -> int:
    started = time.monotonic()
    try:
        servers = ensure_built()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        print(f"llama_build: {exc}", file=sys.stderr)
        return 1
    print(f"llama-server: {servers.llama_server}")
    print(f"llama-cpp-python: {servers.python}")
    print(f"llama_build: ready in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
