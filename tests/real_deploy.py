"""A throwaway copy of the llmfleet project deployed by the real Pulumi engine into the tests'
Docker engine: the program, components, library and policy pack as they are, a test stack and a
catalog written here, a `file://` backend, passphrase secrets, no network.

The language host the tests build (tests/engine_build.py) ignores `virtualenv:` (it is older than
the CLI's way of passing runtime options), so the project's virtualenv goes first on PATH;
`pulumi-resource-pulumi-python` (the Ollama model resources) still finds it through the CLI's
PULUMI_RUNTIME_VIRTUALENV, as with a user's CLI.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests import ollama_build, ollama_registry, real_ollama
from tests.docker_engine import DockerEngine
from tests.images import FleetImages
from tests.litellm_proxy import (
    MASTER_KEY,  # the key tests.rollout's Load sends
    free_port,
)
from tests.tiny_gguf import write_tiny_gguf

PROJECT = Path(__file__).resolve().parent.parent
STACK = "e2e"
# What the program, its components and its policy pack are made of: copied as they are.
PROGRAM_FILES = ("Pulumi.yaml", "__main__.py", "requirements.txt", "components", "llmfleet", "policy")
PASSPHRASE = "llmfleet-e2e-passphrase"


CATALOG = """\
providers:
  ollama:
    kind: ollama
    port: {ports[0]}
    models: [{ollama_models}]
  vllm:
    kind: vllm
    port: {ports[1]}
    model: Qwen/Qwen2.5-0.5B-Instruct
    served_name: tiny-vllm
  native:
    kind: llama_cpp
    port: {ports[2]}
    gguf: /models/{native_gguf}
    alias: tiny-native
    context_length: 512
    parallel: 2
  python:
    kind: llama_cpp_python
    port: {ports[3]}
    gguf: /models/tiny.gguf
    alias: tiny-python
    context_length: 512
routes:
  fallbacks:
    tiny-native: [tiny-python]
  aliases:
    chat: {pulled_name}
{extra_alias}"""


def stack_file(catalog: str, images: FleetImages, gguf_dir: Path, gateway_port: int) -> str:
    return f"""\
config:
  llmfleet:catalog: config/{catalog}
  llmfleet:hosts:
    local: {{gguf_dir: {gguf_dir}}}
  llmfleet:gateway: {{bind: 127.0.0.1, port: {gateway_port}}}
  llmfleet:providers:
    native: {{publish: true}}
    python: {{publish: true}}
    ollama: {{publish: true}}
    vllm: {{publish: true}}
  llmfleet:images:
    ollama: {images.ollama}
    vllm: {{image: {images.vllm}, cpu: true}}  # the stand-in serves on CPU
    llama_cpp: {images.llama_server}
    llama_cpp_python: {images.llama_cpp_python}
    litellm: {images.litellm}
    haproxy: {images.haproxy}
"""


@dataclass
class Project:
    root: Path
    engine_bin: Path
    docker: DockerEngine
    stack: str = STACK
    log: list[str] = field(default_factory=list)  # every command and its output, for failures

    @property
    def env(self) -> dict[str, str]:
        return {**self.docker.env, **engine_env(self.root, [self.engine_bin])}

    def run(self, argv: list[str], timeout: float, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_logged(self.root, self.env, self.log, argv, timeout, stdin)

    def set_secret(self, key: str, value: str) -> None:
        """`pulumi config set --secret`, the value on stdin: never on a command line."""
        done = self.run(["pulumi", "config", "set", "--secret", key, "--stack", self.stack], 60, stdin=value)
        if done.returncode != 0:
            raise AssertionError(f"pulumi config set failed:\n{done.stderr}")

    def pulumi(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return self.run(["pulumi", *args, "--stack", self.stack, "--non-interactive"], timeout)

    def llmfleet(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return self.run([sys.executable, "-m", "llmfleet", "--project-dir", str(self.root), *args], timeout)

    def preview_steps(self, *args: str) -> dict[str, str]:
        """`pulumi preview --json`: each resource's URN -> the operation planned for it."""
        done = self.pulumi("preview", "--json", *args)
        if done.returncode != 0:
            raise AssertionError(f"preview failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return {step["urn"]: step["op"] for step in json.loads(done.stdout).get("steps", [])}

    def containers(self) -> dict[str, dict]:
        """The stack's containers by provider label: id, name, state."""
        ids = self.docker.ids("container", f"label=llmfleet.stack={self.stack}")
        if not ids:
            return {}
        found = json.loads(self.docker.docker("inspect", *ids).stdout)
        return {
            c["Config"]["Labels"]["llmfleet.provider"]: {"id": c["Id"], "name": c["Name"].lstrip("/"),
                                                         "state": c["State"]["Status"]}
            for c in found
        }  # fmt: skip

    def leftovers(self) -> list[str]:
        containers = self.docker.ids("container", f"label=llmfleet.stack={self.stack}")
        networks = self.docker.ids("network", f"name=llmfleet-{self.stack}")
        return containers + networks


REGISTRY_NETWORK = "llmfleet-test-registry"
# The models the fleet pulls, as the registry serves them: (repository, tag).
PULLED = {"tiny": ("library/tiny", "latest"), "second": ("library/second", "1b")}


@contextlib.contextmanager
def seeded_registry(docker: DockerEngine, gguf: Path, work: Path) -> Iterator[ollama_registry.Registry]:
    """The tests' model registry (tests/ollama_registry.py) where the deployed Ollama reaches it, with
    the models the fleet pulls pushed into it by the real Ollama on the host.

    The deployed containers have no DNS and no route out, so the registry listens on an address of
    this machine inside the tests' own address pool: the host side of a network made for it in the
    tests' Docker engine (its gateway address), which a container on the fleet's network reaches
    through its own gateway, this same machine. The models are created from the tiny GGUF by
    `ollama create` with the tests' Modelfile (one thread, a 4-token cap, greedy), so the parameters
    travel with the model, as a published model's do, and pushed with `ollama push --insecure`."""
    docker.docker("network", "create", REGISTRY_NETWORK)
    try:
        address = docker.docker("network", "inspect", "--format", "{{(index .IPAM.Config 0).Gateway}}",
                                REGISTRY_NETWORK).stdout.strip()  # fmt: skip
        with ollama_registry.running(address) as registry:
            with real_ollama.serving(ollama_build.ensure_built(), work / "seed-ollama") as ollama:
                for repo, tag in PULLED.values():
                    name = f"{registry.host}/{repo}:{tag}"
                    ollama.create(name, gguf)
                    ollama.cli("push", "--insecure", name)
            yield registry
    finally:
        docker.docker("network", "rm", REGISTRY_NETWORK, check=False)


def engine_env(root: Path, path: list[Path]) -> dict[str, str]:
    """The environment the real engine runs a copied project in: the virtualenv and `path` (the
    engine's binaries, a provider's) first on PATH, a `file://` backend and PULUMI_HOME of its own,
    passphrase secrets, no update check and no plugin download."""
    venv_bin = Path(sys.executable).parent
    return {
        "PATH": os.pathsep.join([str(venv_bin), *map(str, path), os.environ.get("PATH", "")]),
        "PULUMI_HOME": str(root / ".pulumi-home"),
        "PULUMI_BACKEND_URL": f"file://{root / '.state'}",
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        # The policy pack reads the gateway's key from here, as in the deploy workflow.
        "LITELLM_MASTER_KEY": MASTER_KEY,
        "NO_COLOR": "1",
    }


def run_logged(
    root: Path, env: dict[str, str], log: list[str], argv: list[str], timeout: float, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `argv` in the project, its command and output appended to `log` (for failures)."""
    done = subprocess.run(argv, cwd=root, env=env, input=stdin, capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip
    log.append(f"$ {' '.join(argv)} -> {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def copy_program(root: Path) -> None:
    """The program, components, library and policy pack copied as they are into `root`, with the
    directories a project needs and the tests' virtualenv where Pulumi.yaml and PulumiPolicy.yaml look."""
    root.mkdir(parents=True, exist_ok=True)
    for name in PROGRAM_FILES:
        source = PROJECT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__", "venv"))
        else:
            shutil.copy2(source, root / name)
    for directory in ("config", "stacks", ".state", ".pulumi-home"):
        (root / directory).mkdir()
    # The virtualenvs Pulumi.yaml and PulumiPolicy.yaml name: the tests' own.
    venv = Path(sys.executable).parent.parent
    (root / ".venv").symlink_to(venv)
    (root / "policy" / "venv").symlink_to(venv)


def make_project(root: Path, engine_bin: Path, docker: DockerEngine) -> Project:
    copy_program(root)
    return Project(root=root, engine_bin=engine_bin, docker=docker)


class Fleet:
    """The test's project and the knobs it turns between phases; `close()` stops what it started."""

    def __init__(self, project: Project, images: FleetImages, gguf_dir: Path,
                 registry: ollama_registry.Registry) -> None:  # fmt: skip
        self.project, self.images, self.gguf_dir, self.registry = project, images, gguf_dir, registry
        self.ports = [free_port() for _ in range(4)]
        self.gateway_port = free_port()
        self.pulled_name = "tiny-ollama"  # the gateway name of the model pulled from the registry
        self.cleanup = contextlib.ExitStack()

    def close(self) -> None:
        self.cleanup.close()

    def pull_ref(self, model: str) -> str:
        repo, tag = PULLED[model]
        return f"{self.registry.host}/{repo}:{tag}"

    def write(self, *, second_model: bool = False, missing_gguf: bool = False, gateway_url: str | None = None) -> None:
        # Tiny-House is created from the GGUF on the host (`ollama create`; its name keeps its case,
        # as Ollama does), the others pulled from the tests' registry over plain http.
        pulled = f'{{name: {self.pulled_name}, pull: "{self.pull_ref("tiny")}", insecure: true}}'
        second = f', {{name: second:1b, pull: "{self.pull_ref("second")}", insecure: true}}' if second_model else ""
        models = f"{pulled}, {{name: Tiny-House, gguf: /models/tiny.gguf}}{second}"
        alias = "    code: tiny-vllm\n" if second_model else ""
        native = "missing.gguf" if missing_gguf else "tiny.gguf"
        catalog = CATALOG.format(ports=self.ports, ollama_models=models, native_gguf=native, extra_alias=alias,
                                 pulled_name=self.pulled_name)  # fmt: skip
        (self.project.root / "config" / "e2e.yaml").write_text(catalog)
        stack_path = self.project.root / "stacks" / "Pulumi.e2e.yaml"
        secrets = ""
        if stack_path.exists():  # keep what `pulumi config set --secret` wrote
            text = stack_path.read_text()
            secrets = text[text.index("  llmfleet:masterKey:") :] if "llmfleet:masterKey" in text else ""
        stack = stack_file("e2e.yaml", self.images, self.gguf_dir, self.gateway_port)
        if gateway_url:
            stack = stack.replace(f"port: {self.gateway_port}}}", f"port: {self.gateway_port}, url: {gateway_url}}}")
        stack_path.write_text(stack + secrets)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"


def new_fleet(root: Path, engine_bin: Path, docker: DockerEngine, images: FleetImages) -> Fleet:
    """A project with its stack created and its master key set, a tiny GGUF in the host directory,
    and the registry the Ollama models are pulled from, seeded (stopped by `Fleet.close()`)."""
    gguf_dir = root / "gguf"
    gguf_dir.mkdir()
    write_tiny_gguf(gguf_dir / "tiny.gguf")
    cleanup = contextlib.ExitStack()
    try:
        registry = cleanup.enter_context(seeded_registry(docker, gguf_dir / "tiny.gguf", root))
        project = make_project(root / "project", engine_bin, docker)
        fleet = Fleet(project, images, gguf_dir, registry)
        fleet.cleanup = cleanup
        fleet.write()
        done = project.pulumi("stack", "init")
        if done.returncode != 0:
            raise AssertionError(f"pulumi stack init failed:\n{done.stderr}")
        project.set_secret("llmfleet:masterKey", MASTER_KEY)
    except BaseException:
        cleanup.close()
        raise
    return fleet
