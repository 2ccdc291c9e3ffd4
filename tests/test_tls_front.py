"""The README's TLS front for the gateway, run as written: its HAProxy block (only the listen port,
the certificate path and the gateway port changed) with a certificate made by `openssl`, in front
of loopback stand-ins for the gateway. A chat completion and `llmfleet drift` pass through it
(drift trusting the certificate through SSL_CERT_FILE), and the README's cut-over, pointing the
block at the new gateway and reloading HAProxy, drops no request."""

from __future__ import annotations

import os
import re
import signal
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from llmfleet._cli import main

from .fleetdir import write_project
from .litellm_proxy import free_port, stop_process
from .rollout import HAPROXY
from .standins import StandIn, json_route, openai_models, standins

PROJECT = Path(__file__).resolve().parent.parent
KEY = "sk-tls-test-5e6f7a8b9c"
pytestmark = pytest.mark.skipif(not Path(HAPROXY).exists(), reason="HAProxy is installed by .ci/system-packages")


def readme_haproxy_block() -> str:
    readme = (PROJECT / "README.md").read_text()
    [block] = re.findall(r"```haproxy\n(.*?)```", readme, re.DOTALL)
    return block


def config_for(block: str, listen_port: int, crt: Path, gateway_port: int) -> str:
    """The README's block with what differs here: where it listens, the certificate, the gateway's port."""
    for written, here in ((" :443 ", f" 127.0.0.1:{listen_port} "),
                          ("/etc/haproxy/certs/llm.example.com.pem", str(crt)),
                          ("127.0.0.1:4000", f"127.0.0.1:{gateway_port}")):  # fmt: skip
        assert block.count(written) == 1, written
        block = block.replace(written, here)
    # What /etc/haproxy/haproxy.cfg already has above the block on Debian, reduced to the minimum.
    return "global\n    maxconn 256\n\n" + block


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the PEM HAProxy reads: certificate then key; the certificate alone, for clients to trust)."""
    where = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=llm.test",
                    "-addext", "subjectAltName=DNS:llm.test,IP:127.0.0.1", "-keyout", str(where / "key.pem"),
                    "-out", str(where / "cert.pem")], check=True, capture_output=True, timeout=60)  # fmt: skip
    combined = where / "llm.pem"
    combined.write_bytes((where / "cert.pem").read_bytes() + (where / "key.pem").read_bytes())
    return combined, where / "cert.pem"


def gateway_standin(server: StandIn, who: str) -> None:
    server.routes["/v1/models"] = json_route(openai_models(["qwen2.5:0.5b"]))
    server.posts["/v1/chat/completions"] = lambda body: json_route({"choices": [{"message": {"content": who}}]})


@contextmanager
def haproxy(config: Path) -> Iterator[subprocess.Popen[bytes]]:
    """HAProxy as Debian's service runs it: master-worker (-Ws there; -W here, in the foreground)."""
    check = subprocess.run([HAPROXY, "-c", "-f", str(config)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr
    log = config.with_suffix(".log").open("wb")
    proc = subprocess.Popen([HAPROXY, "-W", "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    try:
        yield proc
    finally:
        stop_process(proc)
        log.close()


def ask(url: str, trust: ssl.SSLContext) -> str:
    with httpx.Client(verify=trust, timeout=5, limits=httpx.Limits(max_keepalive_connections=0)) as http:
        answer = http.post(f"{url}/v1/chat/completions", json={"model": "qwen2.5:0.5b", "messages": []})
        answer.raise_for_status()
        return answer.json()["choices"][0]["message"]["content"]


def wait_until_up(url: str, trust: ssl.SSLContext) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            ask(url, trust)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_the_readme_block_terminates_tls_for_clients_and_drift(
    certificate: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    crt, ca = certificate
    trust = ssl.create_default_context(cafile=str(ca))
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    project = write_project(tmp_path / "project", "providers:\n  ollama: {kind: ollama, models: [qwen2.5:0.5b]}\n")
    monkeypatch.setenv("LITELLM_MASTER_KEY", KEY)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    with standins(1) as (gateway,):
        gateway_standin(gateway, "gateway")
        config = tmp_path / "haproxy.cfg"
        config.write_text(config_for(readme_haproxy_block(), port, crt, gateway.port))
        with haproxy(config):
            wait_until_up(url, trust)
            assert ask(url, trust) == "gateway"
            with pytest.raises(httpx.HTTPError):  # the port speaks TLS only
                httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=5)

            drift = ["--project-dir", str(project), "drift", "--stack", "test", "--url", url, "--timeout", "3"]
            monkeypatch.setenv("SSL_CERT_FILE", str(ca))  # the internal CA, as the README says
            assert main(drift) == 0
            assert capsys.readouterr().out.splitlines()[1] == "  gateway [litellm]: in sync"
            assert gateway.requests[-1] == ("/v1/models", f"Bearer {KEY}")

            monkeypatch.delenv("SSL_CERT_FILE")  # a certificate no public CA signed: refused, exit 1
            assert main(drift) == 1
            assert "CERTIFICATE_VERIFY_FAILED" in capsys.readouterr().out

            monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
            assert main(drift) == 1
            err = capsys.readouterr().err
            assert err.startswith(f"stack 'test': could not check: cannot use the certificates SSL_CERT_FILE="
                                  f"{tmp_path / 'missing.pem'}: No such file or directory.")  # fmt: skip


def test_the_cut_over_reload_moves_clients_to_the_new_gateway_dropping_none(
    certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    crt, ca = certificate
    trust = ssl.create_default_context(cafile=str(ca))
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    with standins(2) as (old, new):
        gateway_standin(old, "old")
        gateway_standin(new, "new")
        config = tmp_path / "haproxy.cfg"
        config.write_text(config_for(readme_haproxy_block(), port, crt, old.port))
        with haproxy(config) as proc:
            wait_until_up(url, trust)
            answers: list[str] = []
            failures: list[str] = []
            stop = threading.Event()

            def load() -> None:  # a new TLS connection per request, as many clients open them
                while not stop.is_set():
                    try:
                        answers.append(ask(url, trust))
                    except httpx.HTTPError as exc:
                        failures.append(f"{exc.__class__.__name__}: {exc}")
                    time.sleep(0.02)

            loader = threading.Thread(target=load, daemon=True)
            loader.start()
            try:
                time.sleep(1)
                # The README's step: point the server line at the new gateway, `systemctl reload
                # haproxy` (Debian's unit: kill -USR2 the master).
                config.write_text(config.read_text().replace(f"127.0.0.1:{old.port}", f"127.0.0.1:{new.port}"))
                os.kill(proc.pid, signal.SIGUSR2)
                deadline = time.monotonic() + 15
                while "new" not in answers[-5:] and time.monotonic() < deadline:
                    time.sleep(0.1)
                time.sleep(1)
            finally:
                stop.set()
                loader.join(timeout=10)
    assert failures == [], failures[:5]
    assert answers[0] == "old" and answers[-1] == "new" and len(answers) > 40
    assert answers == ["old"] * answers.count("old") + ["new"] * answers.count("new")  # no going back
