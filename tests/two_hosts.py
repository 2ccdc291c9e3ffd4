"""The real-deploy fleet across two Docker hosts: the gateway's host (the tests' engine, the local
endpoint) and a remote one (a second engine of the tests' own behind an sshd on loopback,
tests/ssh_host.py), the stack naming it as users name a remote host: `docker: ssh://...` and the
`address` the gateway reaches its published ports at.

Both engines run on this machine, so the remote host's `address` is one of this machine's own
addresses that is not loopback: a container's 127.0.0.1 is its own, so the gateway's container could
never reach a port published on the host's loopback, and the route from the gateway (a container
on engine A's network) to a backend on engine B goes through the machine's address and engine B's
published port, as it goes through a LAN between two machines.
"""

from __future__ import annotations

import ipaddress
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.docker_engine import ADDRESS_POOL, DockerEngine, DockerEngineError, docker_cli
from tests.images import FleetImages
from tests.litellm_proxy import free_port
from tests.llama_build import CACHE_ROOT
from tests.real_deploy import Project
from tests.ssh_host import SshHost
from tests.tiny_gguf import write_tiny_gguf

# The second engine's data root: its images survive from one run to the next, as the first's do.
REMOTE_DATA_ROOT = CACHE_ROOT / "docker-data-remote"
COPY_TIMEOUT_S = 900

CATALOG = """\
providers:
  ollama:
    kind: ollama
    port: {ports[0]}
    models: [{{name: tiny-house, gguf: /models/remote.gguf}}]
  vllm:
    kind: vllm
    port: {ports[1]}
    model: Qwen/Qwen2.5-0.5B-Instruct
    served_name: tiny-vllm
  native:
    kind: llama_cpp
    port: {ports[2]}
    gguf: /models/remote.gguf
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
    chat: tiny-house
"""


def next_pool(pool: str = ADDRESS_POOL) -> str:
    """The address pool right after `pool`, for the second engine: 10.201.0.0/16 -> 10.202.0.0/16."""
    network = ipaddress.ip_network(pool)
    return str(ipaddress.ip_network(f"{network.broadcast_address + 1}/{network.prefixlen}"))


def machine_address() -> str:
    """An IPv4 address of this machine that is not loopback, where a container reaches the host."""
    done = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True,
                          timeout=10, check=False)  # fmt: skip
    for line in done.stdout.splitlines():
        fields = line.split()
        if "inet" in fields:
            address = fields[fields.index("inet") + 1].split("/")[0]
            if not ipaddress.ip_address(address).is_loopback:
                return address
    raise DockerEngineError(f"this machine has no IPv4 address but loopback (`ip -4 addr`: {done.stdout!r})")


def copy_images(source: DockerEngine, target: DockerEngine, images: FleetImages) -> list[str]:
    """Every test image into the second engine (`docker save | docker load`), those it lacks only:
    its data root is kept between runs, so this costs once per image change. Returns what it copied."""
    missing = [tag for tag in vars(images).values() if target.docker("image", "inspect", tag, check=False).returncode]
    if not missing:
        return []
    with tempfile.TemporaryFile() as errors:
        save = subprocess.Popen([docker_cli(), "save", *missing], env=source.env, stdout=subprocess.PIPE,
                                stderr=errors)  # fmt: skip
        try:
            load = subprocess.run([docker_cli(), "load", "--quiet"], env=target.env, stdin=save.stdout,
                                  capture_output=True, timeout=COPY_TIMEOUT_S, check=False)  # fmt: skip
        except subprocess.TimeoutExpired:
            save.kill()
            raise DockerEngineError(f"copying {missing} to the second engine took over {COPY_TIMEOUT_S} s") from None
        finally:
            save.stdout.close()
            saved = save.wait(timeout=60)
        errors.seek(0)
        if saved != 0 or load.returncode != 0:
            raise DockerEngineError(f"copying {missing} to the second engine failed: save {saved} "
                                    f"{errors.read().decode(errors='replace')}; load {load.returncode} "
                                    f"{load.stderr.decode(errors='replace')}")  # fmt: skip
    return missing


@dataclass
class SshProject(Project):
    """The project, its commands run with the test's `ssh` first on PATH (what the Docker provider,
    the engine check, the health waits and Ollama's `docker exec` run to reach the remote host)."""

    ssh: SshHost | None = None

    @property
    def env(self) -> dict[str, str]:
        env = super().env
        if self.ssh:
            env["PATH"] = self.ssh.path(env["PATH"])
        return env

    def on(self, engine: DockerEngine) -> Project:
        """The same project, its containers and leftovers looked up in another engine."""
        return Project(root=self.root, engine_bin=self.engine_bin, docker=engine, stack=self.stack, log=self.log)


class TwoHostFleet:
    """The catalog and the stack: which provider runs where, written again for each phase."""

    def __init__(self, project: SshProject, images: FleetImages, root: Path, ssh: SshHost, address: str) -> None:
        self.project, self.images, self.ssh, self.address = project, images, ssh, address
        # Each host's own GGUF directory: remote.gguf is only on the remote host, so a server that
        # finds it was given that host's directory.
        self.local_gguf, self.remote_gguf = root / "gguf-local", root / "gguf-remote"
        for directory in (self.local_gguf, self.remote_gguf):
            directory.mkdir()
            write_tiny_gguf(directory / "tiny.gguf")
        write_tiny_gguf(self.remote_gguf / "remote.gguf")
        self.ports = [free_port() for _ in range(4)]
        self.gateway_port = free_port()

    def write(self, remote: tuple[str, ...], endpoint: str | None = None, gateway: str = "local") -> None:
        """Place the providers in `remote` on the remote host, the others on the local one; `endpoint`:
        the remote host's `docker:`, when not the test's sshd; `gateway`: the gateway's host."""
        (self.project.root / "config" / "two.yaml").write_text(CATALOG.format(ports=self.ports))
        placement = "".join(
            f"    {name}: {{host: remote}}\n" if name in remote else f"    {name}: {{publish: true}}\n"
            for name in ("ollama", "vllm", "native", "python")
        )
        images = self.images
        stack = f"""\
config:
  llmfleet:catalog: config/two.yaml
  llmfleet:hosts:
    local: {{gguf_dir: {self.local_gguf}}}
    remote: {{docker: "{endpoint or self.ssh.endpoint}", address: {self.address}, gguf_dir: {self.remote_gguf}}}
  llmfleet:gateway: {{host: {gateway}, bind: 127.0.0.1, port: {self.gateway_port}}}
  llmfleet:providers:
{placement}  llmfleet:images:
    ollama: {images.ollama}
    vllm: {{image: {images.vllm}, cpu: true}}
    llama_cpp: {images.llama_server}
    llama_cpp_python: {images.llama_cpp_python}
    litellm: {images.litellm}
    haproxy: {images.haproxy}
"""
        path = self.project.root / "stacks" / f"Pulumi.{self.project.stack}.yaml"
        if path.exists():  # keep what `pulumi config set --secret` wrote
            text = path.read_text()
            stack += text[text.index("  llmfleet:masterKey:") :] if "llmfleet:masterKey" in text else ""
        path.write_text(stack)

    def endpoint(self, provider: str) -> str:
        """The api_base root the gateway should use for `provider` when it is on the remote host."""
        return f"http://{self.address}:{self.ports[('ollama', 'vllm', 'native', 'python').index(provider)]}"
