"""The images the end-to-end tests deploy, built locally: no image registry can be reached here.

Everything starts from a Debian bookworm base made by `debootstrap` (cached as a tarball) and
imported into the tests' Docker engine. On it:
- `litellm`: the pinned LiteLLM proxy (wheels built on the host, installed without an index);
- `haproxy`: Debian's HAProxy, laid out like the official image the front proxy uses;
- `llama-server` and `llama-cpp-python`: CPU builds from the same sdist and flags as the tests'
  own (tests/llama_build.py), compiled inside bookworm (`llama-build`) so that the images never
  depend on the C library of the machine that builds them;
- `ollama`: the real Ollama that tests/ollama_build.py builds from its Go module (on this same
  Debian release), in the official image's shape (`/bin/ollama serve`);
- `vllm`: a stand-in that answers the real API, in the real image's entrypoint shape
  (`tests/images/vllm/vllm`): vLLM cannot run here.

Each image is tagged `llmfleet-test/<name>:<key>`, the key a hash of its build context and build
arguments, so an unchanged image is never rebuilt and a changed one always is. The tags are what
the test stack declares; pulumi-docker's RemoteImage uses an image already on the host as it is.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests import llama_build, ollama_build
from tests.docker_engine import DockerEngine, DockerEngineError, docker_cli
from tests.llama_build import CACHE_ROOT

IMAGES = Path(__file__).resolve().parent / "images"
PROJECT = IMAGES.parent.parent
SUITE = "bookworm"
LITELLM_REQUIREMENT = "litellm[proxy]==1.108.7"  # as requirements-dev.txt pins it
# The wheels are resolved by the tests' Python (3.11.7); the images run Debian's 3.11.2, for which
# redis also wants async-timeout (`python_full_version < "3.11.3"`).
IMAGE_PYTHON_EXTRAS = ["async-timeout==5.0.1"]
# llama-cpp-python's build backend (its pyproject: scikit-build-core[pyproject]>=0.9.2), pinned.
BUILD_BACKEND = "scikit-build-core[pyproject]==1.1.2"


@dataclass(frozen=True)
class FleetImages:
    litellm: str
    haproxy: str
    llama_server: str
    llama_cpp_python: str
    ollama: str
    vllm: str


def debian_mirror() -> str:
    """The machine's own Debian mirror, as apt is configured to use it."""
    sources = [*sorted(Path("/etc/apt").glob("sources.list.d/*.sources")), Path("/etc/apt/sources.list")]
    for path in sources:
        text = path.read_text() if path.is_file() else ""
        deb822 = re.search(r"^URIs:\s*(\S+/debian)/?\s*$", text, re.MULTILINE)
        one_line = re.search(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)/?\s+bookworm\b", text, re.MULTILINE)
        if deb822 or one_line:
            return (deb822 or one_line).group(1)
    return "http://deb.debian.org/debian"


def _run(cmd: list[str], log_path: Path, timeout: float = 1800) -> None:
    with log_path.open("ab") as log_file:
        log_file.write(f"\n$ {' '.join(cmd)}\n".encode())
        log_file.flush()
        done = subprocess.run(cmd, stdout=log_file, stderr=subprocess.STDOUT, timeout=timeout, check=False)
    if done.returncode != 0:
        tail = log_path.read_text(errors="replace")[-4000:]
        raise DockerEngineError(f"`{' '.join(cmd[:4])} ...` failed ({done.returncode}); log {log_path}:\n{tail}")


def _base_tarball(log) -> Path:
    tarball = CACHE_ROOT / f"debian-{SUITE}-minbase.tar"
    if tarball.exists():
        return tarball
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    build_log = CACHE_ROOT / "images.log"
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    with tempfile.TemporaryDirectory(dir=CACHE_ROOT) as work:
        rootfs = Path(work) / "rootfs"
        print(f"images: debootstrap {SUITE} (about 40 s) ...", file=log, flush=True)
        _run([debootstrap, "--variant=minbase", SUITE, str(rootfs), debian_mirror()], build_log)
        partial = tarball.with_suffix(".partial")
        _run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], build_log)
        partial.rename(tarball)  # written last: an interrupted run never leaves a half tarball
    return tarball


def _base(engine: DockerEngine, log) -> str:
    tarball = _base_tarball(log)
    digest = hashlib.sha256(f"{tarball.stat().st_size}:{tarball.stat().st_mtime_ns}".encode()).hexdigest()[:12]
    tag = f"llmfleet-test/debian:{SUITE}-{digest}"
    if engine.docker("image", "inspect", tag, check=False).returncode != 0:
        with tarball.open("rb") as data:
            done = subprocess.run(
                [docker_cli(), "import", "-", tag],
                stdin=data,
                env=engine.env,
                capture_output=True,
                timeout=600,
                check=False,
            )
        if done.returncode != 0:
            raise DockerEngineError(f"docker import of {tarball} failed: {done.stderr.decode(errors='replace')}")
    return tag


def _wheels(name: str, requirements: list[str], constraints: Path, log) -> Path:
    """Wheels for `requirements` under `constraints`, built with the tests' Python (the same
    3.11 as Debian's in the images), cached by what they were built from: a requirements file by its
    content, not its path (a checkout elsewhere would otherwise build them, and the image, again)."""
    named = [Path(r).read_text() if Path(r).is_file() else r for r in requirements]
    key = hashlib.sha256(("\n".join(named) + constraints.read_text()).encode()).hexdigest()[:12]
    target = CACHE_ROOT / f"wheels-{name}-{key}"
    if (target / "complete").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    print(f"images: building the wheels for {name} ...", file=log, flush=True)
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "-w", str(target), *requirements, "-c", str(constraints)],
         CACHE_ROOT / "images.log")  # fmt: skip
    (target / "complete").write_text("")
    return target


def _build(engine: DockerEngine, name: str, args: dict[str, str], extra: dict[str, Path], log) -> str:
    """Build tests/images/<name> with `extra` files or directories added to its context; the tag's
    key covers the context's own files, the build arguments and the extras (a cached directory by
    its name, which carries its own key; a file by its content)."""
    source = IMAGES / name
    digest = hashlib.sha256()
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for key in sorted(args):
        digest.update(f"{key}={args[key]}".encode())
    for target in sorted(extra):
        path = extra[target]
        digest.update(target.encode() + b"\0" + (path.name.encode() if path.is_dir() else path.read_bytes()))
    tag = f"llmfleet-test/{name}:{digest.hexdigest()[:12]}"
    if engine.docker("image", "inspect", tag, check=False).returncode == 0:
        return tag
    print(f"images: building {tag} ...", file=log, flush=True)
    with tempfile.TemporaryDirectory(dir=CACHE_ROOT) as work:
        context = Path(work) / "context"
        shutil.copytree(source, context)
        for target, path in extra.items():
            copy = shutil.copytree if path.is_dir() else shutil.copy2
            copy(path, context / target)
        build_args = [f for key, value in sorted(args.items()) for f in ("--build-arg", f"{key}={value}")]
        done = subprocess.run(
            [docker_cli(), "build", "--network", "host", "-t", tag, *build_args, str(context)],
            env={**engine.env, "DOCKER_BUILDKIT": "0"},
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
    if done.returncode != 0:
        raise DockerEngineError(f"docker build of {name} failed:\n{(done.stdout + done.stderr)[-4000:]}")
    return tag


def _llama_sdist(log) -> Path:
    """The pinned llama-cpp-python sdist (it vendors llama.cpp), downloaded once."""
    target = CACHE_ROOT / f"sdist-llama-cpp-python-{llama_build.VERSION}"
    if (target / "complete").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    print(f"images: downloading llama-cpp-python=={llama_build.VERSION} (sdist) ...", file=log, flush=True)
    _run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
          f"llama-cpp-python=={llama_build.VERSION}", "-d", str(target)], CACHE_ROOT / "images.log")  # fmt: skip
    (target / "complete").write_text("")
    return target


def _llama_cmake_flags(sdist: Path) -> str:
    """llama_build's flags, with the optional switches the vendored tree declares."""
    (tarball,) = sdist.glob("llama_cpp_python-*.tar.gz")
    root = f"llama_cpp_python-{llama_build.VERSION}/vendor/llama.cpp"
    with tarfile.open(tarball) as tar:
        declared = "".join(
            tar.extractfile(f"{root}/{name}").read().decode()
            for name in ("CMakeLists.txt", "tools/server/CMakeLists.txt")
        )
    optional = [f"-D{name}=OFF" for name in llama_build.OPTIONAL_OFF if f"option({name} " in declared]
    return " ".join([*llama_build.CMAKE_FLAGS, *optional])


def ensure_images(engine: DockerEngine, log=sys.stderr) -> FleetImages:
    """Every image the test stack declares, built if missing (in an engine that is not air-gapped:
    the builds reach Debian's mirror by name)."""
    base = _base(engine, log)
    python = _build(engine, "python", {"BASE": base}, {}, log)
    litellm_wheels = _wheels("litellm", [LITELLM_REQUIREMENT, *IMAGE_PYTHON_EXTRAS], PROJECT / "constraints.txt", log)
    server_pins = llama_build.SERVER_CONSTRAINTS
    server_wheels = _wheels("llama-cpp-python-server", ["-r", str(server_pins)], server_pins, log)
    build_wheels = _wheels("llama-build", [BUILD_BACKEND], server_pins, log)
    sdist = _llama_sdist(log)
    llama = _build(
        engine,
        "llama-build",
        {"PYTHON": python, "BUILD_BACKEND": BUILD_BACKEND, "CMAKE_FLAGS": _llama_cmake_flags(sdist),
         "WHEEL_CMAKE_ARGS": llama_build.WHEEL_CMAKE_ARGS, "JOBS": str(os.cpu_count() or 2)},
        {"buildwheels": build_wheels, "sdist": sdist},
        log,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(dir=CACHE_ROOT) as work:
        litellm_req = Path(work) / "litellm.txt"
        litellm_req.write_text(LITELLM_REQUIREMENT + "\n")
        standins = IMAGES.parent / "standins.py"
        return FleetImages(
            litellm=_build(engine, "litellm", {"PYTHON": python},
                           {"wheels": litellm_wheels, "requirements.txt": litellm_req}, log),
            haproxy=_build(engine, "haproxy", {"BASE": base}, {}, log),
            llama_server=_build(engine, "llama-server", {"BASE": base, "BUILD": llama}, {}, log),
            llama_cpp_python=_build(engine, "llama-cpp-python", {"PYTHON": python, "BUILD": llama},
                                    {"wheels": server_wheels}, log),
            # The build's cache directory, whose name carries its key (the Go module, Go, the flags).
            ollama=_build(engine, "ollama", {"BASE": base}, {"ollama-build": ollama_build.ensure_built().parents[1]},
                          log),
            vllm=_build(engine, "vllm", {"PYTHON": python}, {"standins.py": standins}, log),
        )  # fmt: skip


def main() -> int:
    """Build (or find) every test image in a throwaway engine run: `.ci/run` calls this so no
    test's timeout pays for a cold build."""
    from tests.docker_engine import running_engine

    try:
        with running_engine(air_gapped=False) as engine:
            images = ensure_images(engine)
    except (DockerEngineError, OSError, subprocess.SubprocessError, RuntimeError) as exc:
        print(f"images: {exc}", file=sys.stderr)
        return 1
    for name, tag in vars(images).items():
        print(f"{name}: {tag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
