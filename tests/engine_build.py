"""Build the real Pulumi engine from Go modules, once, into a cache: the CLI, the Python language
host and the Docker provider that the end-to-end tests run `pulumi preview/up/destroy` with.

Only the Go module proxy is reachable here (no get.pulumi.com, no GitHub releases), so each binary
is built from a small wrapper module under `tools/engine/` that pins what it builds:
- `pulumi`: pkg/v3's own `cmd/pulumi`, at the version in `tools/engine/pulumi/go.mod`;
- `pulumi-language-python`: a minimal Python language host on the CLI's own sdk libraries
  (`tools/engine/language-python/main.go` says why), with the `pulumi-language-python-exec` and
  `pulumi-resource-pulumi-python` scripts of that sdk module beside it;
- `pulumi-resource-docker`: kreuzwerker's Terraform provider behind Pulumi's Terraform bridge,
  mapped like pulumi-docker (`tools/engine/docker/main.go` says why and what differs).

The cache directory is keyed by every file of those modules and by the Go toolchain; a finished
build is marked by a `complete` file written last, so an interrupted build is redone, never
half-used. `.ci/run` calls `python -m tests.engine_build` before pytest, so the build's minutes
never count against a test's timeout.

Run as a script it prints the bin directory, each binary's version and the time taken, and exits 0,
or exits 1 with the build log's tail.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.llama_build import CACHE_ROOT

ENGINE_SOURCES = Path(__file__).resolve().parent.parent / "tools" / "engine"
PKG = "github.com/pulumi/pulumi/pkg/v3"
SDK = "github.com/pulumi/pulumi/sdk/v3"
VERSION_VAR = f"{SDK}/go/common/version.Version"
# What the Docker provider reports: the pulumi-docker SDK it stands in for, marked as our build.
DOCKER_PROVIDER_VERSION = "5.2.0+llmfleet"
# As upstream builds them: static, no cgo, no C toolchain. GOTOOLCHAIN=auto: an older Go (1.21+,
# a distribution's) fetches the Go that the modules' go.mod names from the module proxy.
GO_ENV = {"CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly -buildvcs=false", "GOTOOLCHAIN": "auto"}
# Go is not always on PATH (a CI shell, a fresh login): the toolchain's usual home is the fallback.
GO = shutil.which("go") or "/usr/local/go/bin/go"
BINARIES = (
    "pulumi",
    "pulumi-language-python",
    "pulumi-language-python-exec",
    "pulumi-resource-pulumi-python",
    "pulumi-resource-docker",
)


def required_version(module_dir: Path, module: str) -> str:
    """The version of `module` that a wrapper's go.mod requires."""
    text = (module_dir / "go.mod").read_text()
    found = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", text, re.MULTILINE)
    if not found:
        raise RuntimeError(f"{module_dir / 'go.mod'} requires no {module}")
    return found.group(1)


def cache_dir() -> Path:
    digest = hashlib.sha256()
    for path in sorted(p for p in ENGINE_SOURCES.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(ENGINE_SOURCES)).encode() + b"\0" + path.read_bytes() + b"\0")
    go = subprocess.run([GO, "version"], capture_output=True, text=True, check=True).stdout.strip()
    digest.update(go.encode())
    cli = required_version(ENGINE_SOURCES / "pulumi", PKG)
    return CACHE_ROOT / f"pulumi-engine-{cli}-{digest.hexdigest()[:12]}"


def ensure_built(log=sys.stderr) -> Path:
    """The bin directory of the cached engine, building it first if the cache is cold."""
    root = cache_dir()
    if (root / "complete").exists():
        return root / "bin"
    root.mkdir(parents=True, exist_ok=True)
    with (root.parent / f"{root.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second caller waits for the first build, then reuses it
        if not (root / "complete").exists():
            _build(root, log)
    return root / "bin"


def _run(cmd: list[str], log_path: Path, cwd: Path, capture: bool = False, env: dict[str, str] | None = None) -> str:
    env = {**os.environ, **GO_ENV, **(env or {})}
    with log_path.open("ab") as log_file:
        log_file.write(f"\n$ (cd {cwd} && {' '.join(cmd)})\n".encode())
        log_file.flush()
        done = subprocess.run(
            cmd, cwd=cwd, env=env, stdout=subprocess.PIPE if capture else log_file, stderr=log_file, check=False
        )
    if done.returncode != 0:
        tail = log_path.read_text(errors="replace")[-4000:]
        raise RuntimeError(f"`{' '.join(cmd[:3])} ...` failed ({done.returncode}); log {log_path}:\n{tail}")
    return done.stdout.decode() if capture else ""


def _go_build(module: Path, package: str, output: Path, ldflags: list[str], tags: str, log_path: Path) -> None:
    _run([GO, "mod", "download"], log_path, module)
    flags = ["-tags", tags, "-ldflags", " ".join(["-s", "-w", *ldflags])]
    _run([GO, "build", *flags, "-o", str(output), package], log_path, module)


def _build(root: Path, log) -> None:
    shutil.rmtree(root / "bin", ignore_errors=True)
    bin_dir = root / "bin"
    bin_dir.mkdir()
    build_log = root / "build.log"
    build_log.write_text("")
    started = time.monotonic()

    cli_dir = ENGINE_SOURCES / "pulumi"
    cli_version = required_version(cli_dir, PKG)
    print(f"engine_build: building pulumi {cli_version} (about 5 minutes on 2 cores) ...", file=log, flush=True)
    _go_build(cli_dir, f"{PKG}/cmd/pulumi", bin_dir / "pulumi", [f"-X {VERSION_VAR}={cli_version}"],
              "osusergo,grpcnotrace", build_log)  # fmt: skip

    host_dir = ENGINE_SOURCES / "language-python"
    print("engine_build: building pulumi-language-python ...", file=log, flush=True)
    _go_build(host_dir, ".", bin_dir / "pulumi-language-python", [f"-X {VERSION_VAR}={cli_version}"], "osusergo",
              build_log)  # fmt: skip
    # The scripts the host and the CLI run, from the CLI's own sdk module (the Python SDK's era).
    sdk_dir = Path(_run([GO, "list", "-m", "-f", "{{.Dir}}", SDK], build_log, cli_dir, capture=True).strip())
    for script in ("python/cmd/pulumi-language-python-exec", "python/dist/pulumi-resource-pulumi-python"):
        target = bin_dir / Path(script).name
        shutil.copyfile(sdk_dir / script, target)  # module-cache files are read-only: copy, then chmod
        target.chmod(0o755)

    print("engine_build: building pulumi-resource-docker (about 3 minutes) ...", file=log, flush=True)
    _go_build(ENGINE_SOURCES / "docker", ".", bin_dir / "pulumi-resource-docker",
              [f"-X main.version={DOCKER_PROVIDER_VERSION}"], "no_compose", build_log)  # fmt: skip

    (root / "complete").write_text(f"{time.monotonic() - started:.0f} s\n")
    print(f"engine_build: done in {time.monotonic() - started:.0f} s -> {bin_dir}", file=log, flush=True)


def versions(bin_dir: Path) -> dict[str, str]:
    """What each built binary says its version is."""

    def said(*argv: str) -> str:
        done = subprocess.run([str(bin_dir / argv[0]), *argv[1:]], capture_output=True, text=True, timeout=60,
                              check=False)  # fmt: skip
        return (done.stdout or done.stderr).strip()

    return {
        "pulumi": said("pulumi", "version"),
        "pulumi-language-python": said("pulumi-language-python", "-version"),
        "pulumi-resource-docker": said("pulumi-resource-docker", "-version"),
    }


def main() -> int:
    started = time.monotonic()
    try:
        bin_dir = ensure_built()
        said = versions(bin_dir)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        print(f"engine_build: {exc}", file=sys.stderr)
        return 1
    print(f"engine: {bin_dir}")
    for name, version in said.items():
        print(f"{name}: {version}")
    print(f"engine_build: ready in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
