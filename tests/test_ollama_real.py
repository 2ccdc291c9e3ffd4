"""Names as the real Ollama handles them (0.14.1, the version the stacks pin, built by
tests/ollama_build.py and started on loopback), checked against what llmfleet derives: the name
Ollama lists (`:latest`, case as written), the name the gateway sends to chat (matched
case-sensitively by 0.14.1), what drift and probe compare, the Ollama model resource's reading of
`ollama list`, and what `ollama rm` and a deleted model give. Then one request routed by the real
LiteLLM proxy, on the rendered gateway config, to a model on the real Ollama."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

import llmfleet
from components.docker.ollama_model import OllamaModelProvider
from llmfleet._cli import main
from llmfleet._drift import check_backend
from llmfleet._http import Limits
from llmfleet._probe import probe_backend

from . import ollama_registry
from .fleetdir import BASE_STACK, write_project
from .litellm_proxy import MASTER_KEY, free_port, running_proxy
from .ollama_build import ensure_built
from .real_ollama import CLI_TIMEOUT, Ollama, serving
from .tiny_gguf import write_tiny_gguf

pytestmark = [pytest.mark.real_ollama, pytest.mark.timeout(300)]

HF_REF = "hf.co/TinyOrg/Tiny-GGUF:Q4_K_M"  # what a Hugging Face pull is listed as: case kept
# A fleet whose Ollama is the test's: on a host whose address is loopback, so the gateway and the
# backend checks reach it at 127.0.0.1:<its port>.
STACK = (
    BASE_STACK
    + """\
  llmfleet:hosts:
    gateway-host: {}
    box: {docker: "unix:///var/run/docker.sock", address: 127.0.0.1, gguf_dir: GGUF_DIR}
  llmfleet:gateway: {host: gateway-host, port: GATEWAY_PORT}
  llmfleet:providers:
    ollama: {host: box}
"""
)


@pytest.fixture(scope="module")
def binary() -> Path:
    return ensure_built()  # seconds when cached; .ci/setup builds it before pytest


@pytest.fixture
def ollama(binary: Path, tmp_path: Path) -> Iterator[Ollama]:
    with serving(binary, tmp_path / "ollama") as server:
        yield server


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    return write_tiny_gguf(tmp_path / "tiny.gguf")


def fleet_for(ollama: Ollama, gguf: Path, models: str) -> tuple[Path, llmfleet.Fleet]:
    """A project whose one Ollama provider is `ollama`, declaring `models` (YAML list items)."""
    catalog = f"providers:\n  ollama:\n    kind: ollama\n    port: {ollama.port}\n    models:\n{models}"
    stack = STACK.replace("GATEWAY_PORT", str(free_port())).replace("GGUF_DIR", str(gguf.parent))
    project = write_project(ollama.home.parent / "project", catalog, stack)
    return project, llmfleet.load_fleet(project, "test")


# Ollama's own spelling in a name: a library-style name with capitals, and a Hugging Face reference.
MODELS = f"""\
      - {{name: Tiny-Case, gguf: /models/tiny.gguf}}
      - {{name: tiny-hf, pull: "{HF_REF}"}}
"""


def on_backend(fleet: llmfleet.Fleet, check) -> llmfleet.CheckResult:
    """drift's (check_backend) or probe's (probe_backend) check of the Ollama provider, as
    `--backends` runs it, at the URL the stack publishes it on."""
    provider = fleet.catalog.providers["ollama"]

    async def run() -> llmfleet.CheckResult:
        async with httpx.AsyncClient() as http:
            url = f"http://127.0.0.1:{provider.listen_port}"
            return await check(http, "ollama", provider, url, Limits(timeout=60.0, deadline=120.0))

    return asyncio.run(run())


def gateway_sends(fleet: llmfleet.Fleet) -> dict[str, str]:
    """{declared name: the model the rendered gateway config asks Ollama for (`ollama_chat/` off)}."""
    entries = llmfleet.gateway_config(fleet)["model_list"]
    return {e["model_name"]: e["litellm_params"]["model"].removeprefix("ollama_chat/") for e in entries}


def test_ollama_lists_names_with_latest_and_case_kept(ollama: Ollama, gguf: Path) -> None:
    # The version the stacks pin, stamped by the build (unstamped it would say 0.0.0).
    assert httpx.get(f"{ollama.url}/api/version", timeout=10).json() == {"version": "0.14.1"}
    for name in ("Tiny-Case", HF_REF, "tiny:q8"):
        created = ollama.create(name, gguf)
        # `ollama create` reports on stderr only (progress lines, then "success").
        assert created.stdout == "" and "success" in created.stderr, created
    listed = ollama.tags()
    assert listed == sorted(["Tiny-Case:latest", HF_REF, "tiny:q8"])
    assert [llmfleet.ollama_listed_name(n) for n in ("Tiny-Case", HF_REF, "tiny:q8")] == [
        "Tiny-Case:latest", HF_REF, "tiny:q8"
    ]  # fmt: skip
    # /v1/models: the same names; owned_by is the namespace (`library` for a bare name).
    models = httpx.get(f"{ollama.url}/v1/models", timeout=10).json()["data"]
    assert {m["id"]: m["owned_by"] for m in models} == {
        "Tiny-Case:latest": "library", HF_REF: "TinyOrg", "tiny:q8": "library"
    }  # fmt: skip
    # The Ollama model resource reads `ollama list` (NAME ID SIZE MODIFIED): the names as listed, the
    # ID the first 12 hex digits of the manifest's digest.
    digests = {m["name"]: m["digest"][:12] for m in httpx.get(f"{ollama.url}/api/tags", timeout=10).json()["models"]}
    assert OllamaModelProvider.list_tags(ollama.cli("list").stdout) == digests


def test_chat_finds_a_model_only_by_its_listed_spelling(ollama: Ollama, gguf: Path) -> None:
    _, fleet = fleet_for(ollama, gguf, MODELS)
    sends = gateway_sends(fleet)
    assert sends == {"Tiny-Case": "Tiny-Case", "tiny-hf": HF_REF}  # as declared: case kept, no `:latest`
    ollama.create("Tiny-Case", gguf)
    ollama.create(HF_REF, gguf)
    for name in sends.values():
        answer = ollama.chat(name)
        assert answer.status_code == 200, answer.text
        assert answer.json()["done_reason"] == "length"  # the Modelfile's token cap
    assert ollama.chat("Tiny-Case:latest").status_code == 200
    # 0.14.1 looks a name up in chat as spelled: any other case is not found, natively and on /v1.
    for other in ("tiny-case", "TINY-CASE:LATEST", HF_REF.lower()):
        answer = ollama.chat(other)
        assert (answer.status_code, answer.json()) == (404, {"error": f"model '{other}' not found"})
    answer = httpx.post(f"{ollama.url}/v1/chat/completions", timeout=60,
                        json={"model": "tiny-case", "messages": [{"role": "user", "content": "hi"}]})  # fmt: skip
    assert answer.status_code == 404 and answer.json()["error"]["message"] == "model 'tiny-case' not found"


def test_create_cp_and_rm_ignore_case_and_keep_the_first_spelling(ollama: Ollama, gguf: Path) -> None:
    ollama.create("Tiny-Case", gguf)
    # Another spelling is the same model: create and cp succeed and leave it listed as first created.
    assert ollama.create("tiny-case", gguf).returncode == 0
    assert ollama.cli("cp", "Tiny-Case", "TINY-CASE").stdout == "copied 'Tiny-Case' to 'TINY-CASE'\n"
    assert ollama.tags() == ["Tiny-Case:latest"]
    assert ollama.chat("tiny-case").status_code == 404
    # rm of any spelling removes it; deleting through the API answers an empty body.
    ollama.create(HF_REF, gguf)
    removed = ollama.cli("rm", HF_REF.upper())
    assert removed.stdout == f"deleted '{HF_REF.upper()}'\n"
    deleted = httpx.request("DELETE", f"{ollama.url}/api/delete", json={"model": "TINY-case"}, timeout=30)
    assert (deleted.status_code, deleted.content) == (200, b"")
    assert ollama.tags() == []
    # A deleted model is not found, by chat, by delete and by the CLI.
    answer = ollama.chat("Tiny-Case")
    assert (answer.status_code, answer.json()) == (404, {"error": "model 'Tiny-Case' not found"})
    again = httpx.request("DELETE", f"{ollama.url}/api/delete", json={"model": "Tiny-Case"}, timeout=30)
    assert (again.status_code, again.json()) == (404, {"error": "model 'Tiny-Case' not found"})
    missing = ollama.cli("rm", "Tiny-Case", check=False)
    assert missing.returncode == 1 and missing.stderr.endswith("Error: model 'Tiny-Case' not found\n")
    # Unknown paths and methods: plain text.
    unknown = httpx.get(f"{ollama.url}/api/nothing", timeout=10)
    assert (unknown.status_code, unknown.headers["content-type"], unknown.text) == (
        404,
        "text/plain",
        "404 page not found",
    )
    wrong = httpx.get(f"{ollama.url}/api/chat", timeout=10)
    assert (wrong.status_code, wrong.text) == (405, "405 method not allowed")


class OllamaRunner:
    """The model resource's `docker exec <container> ...` run on the test's Ollama instead: the
    command after the container name, with the real `ollama` first on PATH and OLLAMA_HOST set, as
    the CLI in a container finds its own server."""

    def __init__(self, ollama: Ollama) -> None:
        self.env = {**ollama.env, "PATH": f"{ollama.binary.parent}:{ollama.env['PATH']}"}
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str], timeout: float) -> tuple[int, str, str]:
        command = list(argv[argv.index("exec") + 2 :])
        self.calls.append(command)
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=min(timeout, CLI_TIMEOUT),
                              check=False)  # fmt: skip
        return done.returncode, done.stdout, done.stderr


def test_the_model_resource_against_real_ollama(ollama: Ollama, gguf: Path) -> None:
    runner = OllamaRunner(ollama)
    provider = OllamaModelProvider(runner)
    props = {"docker_host": None, "container": "c", "tag": "Tiny-Case", "digest": None, "gguf": str(gguf)}
    created = provider.create(props)  # `ollama create` from a Modelfile written in the "container"
    assert ollama.tags() == ["Tiny-Case:latest"]
    assert provider.read(created.id, props).outs["digest"] == created.outs["digest"]
    # Another spelling of a name already there: refused, saying what to do, not adopted.
    with pytest.raises(RuntimeError, match=r"has this model as 'Tiny-Case:latest', not 'tiny-case'.*ollama rm"):
        provider.create({**props, "tag": "tiny-case"})
    with pytest.raises(RuntimeError, match=r"has this model as 'Tiny-Case:latest', not 'TINY-CASE'"):
        provider.create({**props, "tag": "TINY-CASE", "gguf": None})  # adopting it: no pull tried
    assert not any(c[:2] == ["ollama", "pull"] for c in runner.calls)
    assert provider.read("id", {**props, "tag": "tiny-case"}).id is None
    # Deleting another spelling removes nothing (`ollama rm` would remove this one); this one goes.
    provider.delete("id", {**props, "tag": "tiny-case"})
    assert ollama.tags() == ["Tiny-Case:latest"]
    provider.delete(created.id, props)
    assert ollama.tags() == []
    assert provider.read(created.id, props).id is None


def test_a_server_s_models_deleted_in_parallel_are_all_removed(ollama: Ollama, gguf: Path) -> None:
    """As `destroy` deletes them (the engine runs a server's model deletes at once): Ollama 0.14.1's
    `rm` can fail while pruning the directories another `rm` empties (about one `rm` in seventy
    here: not every run sees it), and the resource's delete checks and retries
    (OllamaModelProvider.delete; tests/test_ollama_model_provider.py makes it happen each time)."""
    provider = OllamaModelProvider(OllamaRunner(ollama))
    names = [f"10.0.0.1:5000/library/m{i}:latest" for i in range(5)] + ["Tiny-House", "other"]
    for _ in range(8):
        for name in names:
            ollama.create(name, gguf)
        props = [{"docker_host": None, "container": "c", "tag": name, "digest": None} for name in names]
        with ThreadPoolExecutor(len(names)) as pool:
            list(pool.map(lambda p: provider.delete("id", p), props))  # raises what a delete raised
        assert ollama.tags() == []


def test_drift_and_probe_of_the_backend_compare_as_ollama_answers(ollama: Ollama, gguf: Path) -> None:
    _, fleet = fleet_for(ollama, gguf, MODELS)
    drift = on_backend(fleet, check_backend)
    assert (drift.verdict, drift.missing) == (llmfleet.Verdict.DRIFT, ["Tiny-Case", "tiny-hf"])
    assert drift.notes == ["Tiny-Case: not created on ollama", f"tiny-hf (as {HF_REF}): not pulled on ollama"]
    probe = on_backend(fleet, probe_backend)
    assert probe.verdict is llmfleet.Verdict.FAILS
    assert probe.notes == ["Tiny-Case: HTTP 404: model 'Tiny-Case' not found",
                           f"tiny-hf: HTTP 404: model '{HF_REF}' not found"]  # fmt: skip

    ollama.create("Tiny-Case", gguf)
    ollama.create(HF_REF, gguf)
    assert on_backend(fleet, check_backend).verdict is llmfleet.Verdict.IN_SYNC
    assert on_backend(fleet, probe_backend).verdict is llmfleet.Verdict.ANSWERS

    # The same model under another spelling (created so by hand, or before a catalog changed case):
    # chat does not find the declared one, and drift says which spelling is there.
    ollama.cli("rm", "Tiny-Case")
    ollama.create("tiny-case", gguf)
    drift = on_backend(fleet, check_backend)
    assert (drift.verdict, drift.missing) == (llmfleet.Verdict.DRIFT, ["Tiny-Case"])
    assert drift.notes == ["Tiny-Case: listed on ollama only as 'tiny-case:latest', a spelling that Ollama before "
                           "0.16.2 answers chat for instead of 'Tiny-Case'"]  # fmt: skip
    probe = on_backend(fleet, probe_backend)
    assert probe.notes == ["Tiny-Case: HTTP 404: model 'Tiny-Case' not found"]


@pytest.mark.litellm
def test_a_request_routed_by_the_real_gateway_reaches_real_ollama(
    ollama: Ollama, gguf: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project, fleet = fleet_for(ollama, gguf, MODELS)
    ollama.create("Tiny-Case", gguf)
    ollama.create(HF_REF, gguf)
    with running_proxy(llmfleet.render_gateway_config(fleet), ollama.home.parent) as gateway:
        for name in ("Tiny-Case", "tiny-hf"):
            answer = httpx.post(f"{gateway}/v1/chat/completions", headers={"Authorization": f"Bearer {MASTER_KEY}"},
                                json={"model": name, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2},
                                timeout=120)  # fmt: skip
            assert answer.status_code == 200, answer.text[:500]
            assert answer.headers["x-litellm-model-id"] == f"{name}@ollama"
        monkeypatch.setenv("LITELLM_MASTER_KEY", MASTER_KEY)
        reports = {}
        for command in ("drift", "probe"):
            argv = ["--project-dir", str(project), command, "--stack", "test", "--url", gateway, "--backends",
                    "--format", "json", "--timeout", "60", "--deadline", "180"]  # fmt: skip
            code = main(argv)
            out, err = capsys.readouterr()
            assert code == 0, out + err
            reports[command] = {c["target"]: c["verdict"] for c in json.loads(out)["checks"]}
    assert reports == {
        "drift": {"gateway": "in sync", "ollama": "in sync"},
        "probe": {"Tiny-Case": "answers", "tiny-hf": "answers", "ollama": "answers"},
    }


def test_a_model_pushed_to_a_registry_is_pulled_by_the_model_resource(
    ollama: Ollama, binary: Path, gguf: Path, tmp_path: Path
) -> None:
    """The pull path, for real: one Ollama pushes a model to the tests' registry (tests/ollama_registry.py),
    and the model resource pulls it into another with `ollama pull --insecure`, over the registry protocol."""
    with ollama_registry.running() as registry, serving(binary, tmp_path / "puller") as puller:
        ref = registry.reference("tiny", "1b")
        ollama.create(ref, gguf)
        pushed = ollama.cli("push", "--insecure", ref)
        assert "success" in pushed.stderr, pushed
        # Without --insecure Ollama speaks https to the registry, which a plain-http one cannot answer.
        secure = puller.cli("pull", ref, check=False)
        assert secure.returncode == 1 and "first record does not look like a TLS handshake" in secure.stderr, secure
        assert registry.store.manifest_pulls("library/tiny", "1b") == 0

        provider = OllamaModelProvider(OllamaRunner(puller))
        props = {"docker_host": None, "container": "c", "tag": ref, "digest": None, "insecure": True}
        created = provider.create(props)
        assert registry.store.manifest_pulls("library/tiny", "1b") == 1
        assert puller.tags() == [ref]  # listed under the whole reference, the registry's port included
        answer = puller.chat(ref)  # the pushed Modelfile's parameters came along: the 4-token cap
        assert answer.status_code == 200 and answer.json()["done_reason"] == "length", answer.text
        # What the blob downloads asked: a HEAD for the size, then GETs (the first for the Location).
        methods = {method for method, path in registry.store.requests if "/blobs/sha256:" in path}
        assert methods == {"HEAD", "GET"}
        provider.delete(created.id, props)
        assert puller.tags() == []
