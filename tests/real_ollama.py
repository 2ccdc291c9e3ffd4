"""Start the real Ollama (built by tests/ollama_build.py) on loopback for a test, drive it with its
own CLI, and always stop it.

`ollama serve` listens on `OLLAMA_HOST` (here 127.0.0.1 and a free port) and keeps its models under
`OLLAMA_MODELS` (here the test's directory); HOME is the test's too, since Ollama writes its key
pair to ~/.ollama at start. Nothing needs the network: models are created from the tests' tiny GGUF
(`ollama create NAME -f Modelfile`, as the Ollama model resource does in a container). Every test
Modelfile runs one thread and caps the reply: without them a reply of the random model can run
for a minute on a busy machine. The CLI commands use the same environment, so they talk to this
server, as `ollama` in a container talks to its own.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from .litellm_proxy import free_port, stop_process

STARTUP_DEADLINE = 60.0  # it starts in under a second when the machine is idle
CLI_TIMEOUT = 120.0  # `ollama create` of the tiny GGUF takes under a second idle
NUM_PREDICT = 4  # the token cap of every test model


@dataclass(frozen=True)
class Ollama:
    binary: Path
    url: str  # http://127.0.0.1:<port>
    env: dict[str, str]
    home: Path  # the test's directory: models, Modelfiles, logs
    pid: int = 0  # `ollama serve`'s process, as a container's first process

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`ollama <args>` against this server, bounded in time."""
        done = subprocess.run([str(self.binary), *args], env=self.env, capture_output=True, text=True,
                              timeout=CLI_TIMEOUT, check=False)  # fmt: skip
        if check and done.returncode != 0:
            raise AssertionError(f"`ollama {' '.join(args)}` failed ({done.returncode}): {done.stderr[-2000:]}")
        return done

    def create(self, name: str, gguf: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`ollama create <name>` from `gguf`, one thread, a token cap, and greedy decoding: sampled
        tokens of a random model can be its end token, and a reply would then stop before the cap."""
        modelfile = self.home / f"Modelfile-{len(list(self.home.glob('Modelfile-*')))}"
        modelfile.write_text(f"FROM {gguf}\nPARAMETER num_thread 1\nPARAMETER num_predict {NUM_PREDICT}\n"
                             "PARAMETER temperature 0\nPARAMETER seed 1\n")  # fmt: skip
        return self.cli("create", name, "-f", str(modelfile), check=check)

    def tags(self) -> list[str]:
        """The names `/api/tags` lists, sorted."""
        response = httpx.get(f"{self.url}/api/tags", timeout=10)
        response.raise_for_status()
        return sorted(m["name"] for m in response.json()["models"])

    def chat(self, model: str) -> httpx.Response:
        """One short reply through Ollama's native chat API, as LiteLLM's `ollama_chat/` asks."""
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": False}
        return httpx.post(f"{self.url}/api/chat", json=body, timeout=120)


def _environment(home: Path, port: int) -> dict[str, str]:
    # A clean environment: Ollama reads OLLAMA_* variables, so none of the runner's may leak in.
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "OLLAMA_HOST": f"127.0.0.1:{port}",
        "OLLAMA_MODELS": str(home / "models"),
        "OLLAMA_NUM_PARALLEL": "1",
        "OLLAMA_MAX_LOADED_MODELS": "1",
    }


@contextlib.contextmanager
def serving(binary: Path, home: Path) -> Iterator[Ollama]:
    """`ollama serve` on a free loopback port, ready (`/api/version` answers) or an error with its
    log's tail within STARTUP_DEADLINE; stopped, with the runners it started, on exit."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = _environment(home, port)
    log = home / "ollama.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(binary), "serve"], stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_DEADLINE
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"ollama serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/api/version", timeout=1.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"ollama serve not ready within {STARTUP_DEADLINE} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield Ollama(binary, url, env, home, proc.pid)
    finally:
        stop_process(proc)  # the process group: `ollama serve` and the runners it started


def server_log(ollama: Ollama) -> str:
    return (ollama.home / "ollama.log").read_text(errors="replace")[-3000:]
