"""A second Docker host reached as users reach a remote one: `ssh://user@127.0.0.1:<port>` through an
OpenSSH server of the test's own on loopback, in front of a second Docker engine of the tests' own.

The sshd (Debian's openssh-server, `.ci/system-packages`) runs in the foreground (`-D`) with its own
config, host key and authorized key, all generated in the test's directory, on a free loopback port;
it is stopped by its pid and reaped when the test ends. It lets in one key, for the user running
the tests, and sets `DOCKER_HOST` to the second engine's socket in every session it starts (`SetEnv`):
the remote side of `docker --host ssh://...` (and of the Docker provider's `host`, the same code in
docker/cli's connhelper) runs `docker system dial-stdio`, which then talks to that engine, as it would
to the default socket of a real remote host.

The client side is the `ssh` binary the docker CLI and the Docker provider run from PATH. OpenSSH reads
`~/.ssh/config` from the user's home in the password database, never from `$HOME`, so the key and the
known host cannot be given through HOME: a directory holding an `ssh` that runs `/usr/bin/ssh -F
<config>` goes first on PATH instead, standing in for a user's own ~/.ssh/config. Host keys are
checked (StrictHostKeyChecking yes, the known_hosts written here), and BatchMode makes any prompt a
failure instead of a hang.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.litellm_proxy import free_port

START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 10
# Where sshd, started as root, looks for its privilege separation directory (compiled in; the
# package's service creates it at boot). Not needed by an sshd started by another user.
PRIVSEP_DIR = Path("/run/sshd")


class SshHostError(RuntimeError):
    pass


@dataclass(frozen=True)
class SshHost:
    user: str
    port: int
    bin_dir: Path  # goes first on PATH: its `ssh` knows the key and the host
    log: Path
    pid: int

    @property
    def endpoint(self) -> str:
        """What a stack writes as the host's `docker:`."""
        return f"ssh://{self.user}@127.0.0.1:{self.port}"

    def path(self, rest: str) -> str:
        return os.pathsep.join([str(self.bin_dir), rest])

    def connections(self) -> int:
        """How many sessions sshd accepted so far (each docker CLI call over ssh is one)."""
        return self.log.read_text(errors="replace").count("Accepted publickey")


def sshd_binary() -> str:
    found = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)
    if not found:
        raise SshHostError("no sshd: install openssh-server (.ci/system-packages installs it)")
    return found


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "llmfleet-tests", "-f", str(path)],
                   check=True, capture_output=True, timeout=30)  # fmt: skip


def write_config(root: Path, port: int, docker_host: str, user: str) -> tuple[Path, Path]:
    """The server's and the client's configs, keys and known_hosts under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    _keygen(root / "host_ed25519")
    _keygen(root / "id_ed25519")
    (root / "authorized_keys").write_text((root / "id_ed25519.pub").read_text())
    host_key = (root / "host_ed25519.pub").read_text().split()
    (root / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    server = root / "sshd_config"
    server.write_text(f"""\
Port {port}
ListenAddress 127.0.0.1
HostKey {root / "host_ed25519"}
PidFile none
AuthorizedKeysFile {root / "authorized_keys"}
AllowUsers {user}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
# The keys live in the test's temporary directory, under a world-writable /tmp.
StrictModes no
UsePAM no
# The remote side of docker's ssh transport runs `docker system dial-stdio`: to this engine.
SetEnv DOCKER_HOST={docker_host}
LogLevel VERBOSE
""")
    client = root / "ssh_config"
    client.write_text(f"""\
Host 127.0.0.1
  IdentityFile {root / "id_ed25519"}
  IdentitiesOnly yes
  UserKnownHostsFile {root / "known_hosts"}
  StrictHostKeyChecking yes
  BatchMode yes
  LogLevel ERROR
""")
    bin_dir = root / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "ssh"
    wrapper.write_text(f'#!/bin/sh\nexec {shutil.which("ssh") or "/usr/bin/ssh"} -F {client} "$@"\n')
    wrapper.chmod(0o755)
    return server, bin_dir


@contextmanager
def running_sshd(root: Path, docker_host: str) -> Iterator[SshHost]:
    """sshd on a free loopback port in front of the engine at `docker_host`, until the block ends."""
    user = getpass.getuser()
    port = free_port()
    config, bin_dir = write_config(root, port, docker_host, user)
    if os.geteuid() == 0:
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    log = root / "sshd.log"
    log.touch()
    with log.open("ab") as out:
        proc = subprocess.Popen([sshd_binary(), "-D", "-e", "-f", str(config)], stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    host = SshHost(user=user, port=port, bin_dir=bin_dir, log=log, pid=proc.pid)
    try:
        _wait_ready(proc, host)
        yield host
    finally:
        _stop(proc)


def _wait_ready(proc: subprocess.Popen, host: SshHost) -> None:
    """Until a session runs `docker version` on the far engine, as the docker CLI's ssh transport would."""
    env = {**os.environ, "PATH": host.path(os.environ.get("PATH", ""))}
    deadline = time.monotonic() + START_TIMEOUT_S
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SshHostError(f"sshd exited ({proc.returncode}):\n{host.log.read_text(errors='replace')[-2000:]}")
        done = subprocess.run(["docker", "--host", host.endpoint, "version", "--format", "{{.Server.Version}}"],
                              env=env, capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        if done.returncode == 0:
            return
        last = done.stderr.strip()
        time.sleep(0.5)
    raise SshHostError(f"no docker engine through {host.endpoint} within {START_TIMEOUT_S} s: {last}\n"
                       f"{host.log.read_text(errors='replace')[-2000:]}")  # fmt: skip


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        # The whole group it leads (start_new_session): sshd and any session still open.
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT_S)
