"""Build a real Kubernetes control plane and kwok from Go modules, once, into a cache: etcd,
kube-apiserver, kube-controller-manager and kube-scheduler, and kwok for fake nodes, which the
Kubernetes tests start on loopback (`tests/kubernetes_cluster.py`).

Only the Go module proxy is reachable here (no release tarballs, no images), so each piece is built
from a wrapper module under `tools/kubernetes/` whose go.mod and go.sum pin it and every dependency,
one module per dependency graph (they share no compiled packages):
- `etcd/`: `go.etcd.io/etcd/server/v3` (its main package is the module root);
- `kube/`: `k8s.io/kubernetes`, whose go.mod points its 33 staging modules (`k8s.io/api`, ...) at
  `./staging/src/...`, replaces that are ignored in a dependency: the wrapper's `replace` block maps
  each to the same version from the proxy, generated from the real go.mod (CONTRIBUTING.md says how);
- `kwok/`: `sigs.k8s.io/kwok/cmd/kwok`, with the stages that `kwokctl` would inject (the bare binary
  has none) joined from the module zip into `kwok-stages.yaml` beside the binaries.

Kubernetes stamps its version with `-X` ldflags (unstamped, `/version` says `v0.0.0-master`). The
cache directory is keyed by every file of the wrapper modules, the Go toolchain and the build flags;
a finished build is marked by a `complete` file written last, so an interrupted build is redone,
never half-used. The builds share a Go build cache of their own inside that directory, removed once
the binaries are in place (it grows to several GiB; only a rebuild would use it). `.ci/setup` calls
`python -m tests.kubernetes_build`, so the build's minutes never count against a test's timeout.

Run as a script it prints the bin directory, each binary's version and the time taken, and exits 0,
or exits 1 with the build log's tail.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.engine_build import GO, GO_ENV, _run, required_version
from tests.llama_build import CACHE_ROOT

SOURCES = Path(__file__).resolve().parent.parent / "tools" / "kubernetes"
KUBE_MODULE = "k8s.io/kubernetes"
ETCD_MODULE = "go.etcd.io/etcd/server/v3"
KWOK_MODULE = "sigs.k8s.io/kwok"
KUBE_VERSION = required_version(SOURCES / "kube", KUBE_MODULE)  # "v1.37.2"
ETCD_VERSION = required_version(SOURCES / "etcd", ETCD_MODULE)
KWOK_VERSION = required_version(SOURCES / "kwok", KWOK_MODULE)
CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
CONTROL_PLANE_MODULES = ("etcd", "kube", "kwok")
PROVIDER_MODULE = "github.com/pulumi/pulumi-kubernetes/provider/v4"
# The module is served only as pseudo-versions; this one is the commit tagged v4.25.0, the version
# of the pinned Python SDK (`pulumi-kubernetes` in requirements.txt), which the engine matches.
PROVIDER_VERSION = "4.25.0"
BUILD_FLAGS = ("-trimpath",)
# kwokctl's default stages without the node lease: nodes become Ready and keep a heartbeat, pods go
# Ready, Job pods complete, deleted pods go away.
KWOK_STAGES = (
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat/node-heartbeat.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
)


def _kube_version_ldflags(build_date: str) -> list[str]:
    """What `hack/lib/version.sh` stamps into both version packages, so `/version` and `--version`
    say the release rather than `v0.0.0-master`."""
    major, minor = KUBE_VERSION.removeprefix("v").split(".")[:2]
    flags = []
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        for name, value in (("gitVersion", KUBE_VERSION), ("gitMajor", major), ("gitMinor", minor),
                            ("gitTreeState", "clean"), ("buildDate", build_date)):  # fmt: skip
            flags.append(f"-X {package}.{name}={value}")
    return flags


def _inputs_digest(modules: tuple[str, ...], *extra: object) -> str:
    """A digest of every file of the given wrapper modules, the Go toolchain and `extra`."""
    digest = hashlib.sha256()
    for path in sorted(p for p in SOURCES.rglob("*") if p.is_file() and p.relative_to(SOURCES).parts[0] in modules):
        digest.update(str(path.relative_to(SOURCES)).encode() + b"\0" + path.read_bytes() + b"\0")
    go = subprocess.run([GO, "version"], capture_output=True, text=True, check=True).stdout.strip()
    digest.update(json.dumps([go, GO_ENV, BUILD_FLAGS, *extra]).encode())
    return digest.hexdigest()[:12]


def cache_dir() -> Path:
    return CACHE_ROOT / f"kubernetes-{KUBE_VERSION}-{_inputs_digest(CONTROL_PLANE_MODULES, KWOK_STAGES)}"


def bin_dir() -> Path:
    """Where the binaries are once built (`ensure_built` builds them)."""
    return cache_dir() / "bin"


def provider_cache_dir() -> Path:
    return CACHE_ROOT / f"pulumi-kubernetes-v{PROVIDER_VERSION}-{_inputs_digest(('provider',), PROVIDER_VERSION)}"


def ensure_built(log=sys.stderr) -> Path:
    """The bin directory of the cached build (the binaries and `kwok-stages.yaml`), building it first
    if the cache is cold. Safe to call concurrently."""
    return _cached(cache_dir(), _build, log)


def ensure_provider_built(log=sys.stderr) -> Path:
    """The directory holding `pulumi-resource-kubernetes` (what a Pulumi.yaml's `plugins.providers`
    path names), building it first if the cache is cold. Safe to call concurrently."""
    return _cached(provider_cache_dir(), _build_provider, log)


def _cached(root: Path, build, log) -> Path:
    if not (root / "complete").exists():
        root.mkdir(parents=True, exist_ok=True)
        with (root.parent / f"{root.name}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # a second caller waits for the first build, then reuses it
            if not (root / "complete").exists():
                build(root, log)
    return root / "bin"


def _build(root: Path, log) -> None:
    bin_path = root / "bin"
    gocache = root / "go-build"
    for stale in (bin_path, gocache):
        shutil.rmtree(stale, ignore_errors=True)
    bin_path.mkdir()
    build_log = root / "build.log"
    build_log.write_text("")
    env = {"GOCACHE": str(gocache)}
    started = time.monotonic()
    build_date = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def build(module: Path, package: str, name: str, ldflags: list[str]) -> None:
        partial = bin_path / f"{name}.partial"
        flags = [*BUILD_FLAGS, "-ldflags", " ".join(["-s", "-w", *ldflags])]
        _run([GO, "build", *flags, "-o", str(partial), package], build_log, module, env=env)
        partial.rename(bin_path / name)

    for module in ("etcd", "kube", "kwok"):
        _run([GO, "mod", "download"], build_log, SOURCES / module, env=env)
    print(f"kubernetes_build: building etcd {ETCD_VERSION} (about 2 minutes on 2 cores) ...", file=log, flush=True)
    build(SOURCES / "etcd", ETCD_MODULE, "etcd", [])
    for name in CONTROL_PLANE:
        print(f"kubernetes_build: building {name} {KUBE_VERSION} (the three take about 15 minutes) ...", file=log,
              flush=True)  # fmt: skip
        build(SOURCES / "kube", f"{KUBE_MODULE}/cmd/{name}", name, _kube_version_ldflags(build_date))
    print(f"kubernetes_build: building kwok {KWOK_VERSION} (about 4 minutes) ...", file=log, flush=True)
    build(SOURCES / "kwok", f"{KWOK_MODULE}/cmd/kwok", "kwok", [])
    kwok_dir = Path(_run([GO, "list", "-m", "-f", "{{.Dir}}", KWOK_MODULE], build_log, SOURCES / "kwok",
                         capture=True, env=env).strip())  # fmt: skip
    stages = "---\n".join((kwok_dir / stage).read_text().strip() + "\n" for stage in KWOK_STAGES)
    (bin_path / "kwok-stages.yaml").write_text(stages)

    shutil.rmtree(gocache, ignore_errors=True)  # several GiB that only a rebuild of these same inputs would use
    (root / "complete").write_text(f"{time.monotonic() - started:.0f} s\n")
    print(f"kubernetes_build: done in {time.monotonic() - started:.0f} s -> {bin_path}", file=log, flush=True)


def _build_provider(root: Path, log) -> None:
    bin_path, gocache, source = root / "bin", root / "go-build", root / "src"
    for stale in (bin_path, gocache, source):
        shutil.rmtree(stale, ignore_errors=True)
    bin_path.mkdir()
    shutil.copytree(SOURCES / "provider", source)
    build_log = root / "build.log"
    build_log.write_text("")
    env = {"GOCACHE": str(gocache)}
    started = time.monotonic()
    _run([GO, "mod", "download"], build_log, source, env=env)
    upstream = Path(_run([GO, "list", "-m", "-f", "{{.Dir}}", PROVIDER_MODULE], build_log, source, capture=True,
                         env=env).strip()) / "cmd" / "pulumi-resource-kubernetes"  # fmt: skip
    # What upstream's generate.go writes: the schema with its version set, and both files compact.
    schema = json.loads((upstream / "schema.json").read_text())
    schema["version"] = PROVIDER_VERSION
    (source / "schema-embed.json").write_text(json.dumps(schema, separators=(",", ":")))
    mapping = json.loads((upstream / "terraform-mapping.json").read_text())
    (source / "terraform-mapping-embed.json").write_text(json.dumps(mapping, separators=(",", ":")))
    print(f"kubernetes_build: building pulumi-resource-kubernetes {PROVIDER_VERSION} (about 6 minutes on 2 cores) ...",
          file=log, flush=True)  # fmt: skip
    partial = bin_path / "pulumi-resource-kubernetes.partial"
    ldflags = f"-s -w -X {PROVIDER_MODULE}/pkg/version.Version={PROVIDER_VERSION}"
    _run([GO, "build", *BUILD_FLAGS, "-ldflags", ldflags, "-o", str(partial), "."], build_log, source, env=env)
    partial.rename(bin_path / "pulumi-resource-kubernetes")
    for done in (gocache, source):
        shutil.rmtree(done, ignore_errors=True)
    (root / "complete").write_text(f"{time.monotonic() - started:.0f} s\n")
    print(f"kubernetes_build: provider done in {time.monotonic() - started:.0f} s -> {bin_path}", file=log, flush=True)


def versions(bins: Path) -> dict[str, str]:
    """What each built binary says its version is (its first line)."""

    def said(name: str) -> str:
        done = subprocess.run([str(bins / name), "--version"], capture_output=True, text=True, timeout=60,
                              check=False)  # fmt: skip
        return ((done.stdout or done.stderr).strip().splitlines() or [""])[0]

    return {name: said(name) for name in ("etcd", *CONTROL_PLANE, "kwok")}


def main() -> int:
    started = time.monotonic()
    try:
        bins = ensure_built()
        said = versions(bins)
        provider = ensure_provider_built()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        print(f"kubernetes_build: {exc}", file=sys.stderr)
        return 1
    print(f"kubernetes: {bins}")
    for name, version in said.items():
        print(f"{name}: {version}")
    print(f"pulumi-resource-kubernetes: {provider / 'pulumi-resource-kubernetes'}")
    print(f"kubernetes_build: ready in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
