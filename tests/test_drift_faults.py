"""Every way the gateway can fail to show the truth gives exit 1, a clear reason, no traceback,
within the deadline. Each fault is a real server on loopback (or a real closed port)."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import httpx
import pytest

from llmfleet._cli import main
from llmfleet._http import Failed, Limits, client, request
from llmfleet._report import Verdict

from .fleetdir import write_project
from .litellm_proxy import free_port
from .standins import Route, StandIn, json_route, openai_models, standins

CATALOG = "providers:\n  ollama:\n    kind: ollama\n    models: [qwen2.5:0.5b]\n"
KEY = "sk-drift-test-1f2e3d4c5b6a"
DEADLINE = 3.0


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path, CATALOG)


@pytest.fixture
def gateway() -> StandIn:
    with standins(1) as (server,):
        yield server


def drift(project: Path, url: str, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str, float]:
    started = time.monotonic()
    code = main(["--project-dir", str(project), "drift", "--stack", "test", "--url", url,
                 "--timeout", "0.3", "--deadline", str(DEADLINE), *extra])  # fmt: skip
    out, err = capsys.readouterr()
    return code, out, err, time.monotonic() - started


@pytest.fixture(autouse=True)
def master_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITELLM_MASTER_KEY", KEY)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def assert_could_not_check(result: tuple[int, str, str, float], reason: str) -> None:
    code, out, err, elapsed = result
    assert code == 1, out
    assert out.splitlines()[0].startswith("stack 'test': could not check")
    assert reason in out.splitlines()[1], out
    assert "Traceback" not in out + err and KEY not in out + err
    assert elapsed < DEADLINE + 1.0


def test_in_sync_baseline(project: Path, gateway: StandIn, capsys) -> None:
    gateway.routes["/v1/models"] = json_route(openai_models(["qwen2.5:0.5b"]))
    code, out, err, _ = drift(project, gateway.url, capsys)
    assert (code, err) == (0, "")
    assert out.splitlines()[1] == "  gateway [litellm]: in sync"
    assert gateway.requests == [("/v1/models", f"Bearer {KEY}")]


def test_refused(project: Path, capsys) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert_could_not_check(drift(project, url, capsys), "unreachable: " + url + "/v1/models: connection refused")


def test_accepts_and_never_answers(project: Path, gateway: StandIn, capsys) -> None:
    gateway.routes["/v1/models"] = Route(hang=True)
    assert_could_not_check(drift(project, gateway.url, capsys), "/v1/models: no answer within the 0.3 s timeout")


def test_answers_after_the_timeout(project: Path, gateway: StandIn, capsys) -> None:
    gateway.routes["/v1/models"] = json_route(openai_models(["qwen2.5:0.5b"]), delay=1.0)
    assert_could_not_check(drift(project, gateway.url, capsys), "no answer within the 0.3 s timeout")


@pytest.mark.parametrize("status", [400, 401, 403])
def test_refused_key(project: Path, gateway: StandIn, capsys, status: int) -> None:
    # LiteLLM echoes part of what it was sent; the report must not.
    gateway.routes["/v1/models"] = json_route({"error": {"message": f"Authentication Error, bad key {KEY}"}}, status)
    result = drift(project, gateway.url, capsys)
    assert_could_not_check(result, f"unauthorized: {gateway.url}/v1/models: HTTP {status}: the master key was refused")
    assert "bad key ***" in result[1]


def test_server_error_is_retried_then_reported(project: Path, gateway: StandIn, capsys) -> None:
    gateway.routes["/v1/models"] = json_route({"error": "boom"}, 500)
    assert_could_not_check(drift(project, gateway.url, capsys), "bad response: " + gateway.url + "/v1/models: HTTP 500")
    assert len(gateway.requests) == 3  # the first try and two retries


def test_not_json(project: Path, gateway: StandIn, capsys) -> None:
    gateway.routes["/v1/models"] = Route(body=b"<html>Bad Gateway</html>", content_type="text/html")
    assert_could_not_check(drift(project, gateway.url, capsys), "HTTP 200 but not JSON: '<html>Bad Gateway</html>'")


@pytest.mark.parametrize("payload", [[], {"models": []}, {"data": "qwen"}, {"data": [{"name": "qwen"}]}])
def test_wrong_shape(project: Path, gateway: StandIn, capsys, payload) -> None:
    gateway.routes["/v1/models"] = json_route(payload)
    assert_could_not_check(drift(project, gateway.url, capsys), "bad response: ")


def test_null_data_is_an_empty_list_not_a_bad_response(project: Path, gateway: StandIn, capsys) -> None:
    gateway.routes["/v1/models"] = json_route(openai_models(None))
    code, out, _, _ = drift(project, gateway.url, capsys)
    assert code == 2
    assert "    - qwen2.5:0.5b: declared, not served" in out.splitlines()


def test_body_over_10_mb_is_not_read_whole(project: Path, gateway: StandIn, capsys) -> None:
    gateway.routes["/v1/models"] = Route(huge=11 * 1024 * 1024)
    assert_could_not_check(drift(project, gateway.url, capsys), "answer larger than 10 MB")


def test_redirect_loop(project: Path, gateway: StandIn, capsys) -> None:
    gateway.routes["/v1/models"] = Route(status=302, location="/v1/models")
    assert_could_not_check(drift(project, gateway.url, capsys), "too many redirects (a redirect loop?)")


def test_name_that_does_not_resolve(project: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def resolver(host, *args, **kwargs):  # answer like a resolver that knows no such name, without asking one
        if host == "gateway.llmfleet.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    result = drift(project, "http://gateway.llmfleet.invalid:4000", capsys)
    assert_could_not_check(result, "the host name does not resolve")


def test_no_key_in_the_environment(project: Path, gateway: StandIn, capsys, monkeypatch) -> None:
    monkeypatch.delenv("LITELLM_MASTER_KEY")
    result = drift(project, gateway.url, capsys)
    assert_could_not_check(result, "no master key: the environment variable LITELLM_MASTER_KEY is not set")
    assert gateway.requests == []


@pytest.mark.parametrize(
    ("raised", "says"),
    [
        (httpx.ConnectTimeout, "no connection within the 2.5 s timeout"),
        (httpx.ReadTimeout, "no answer within the 2.5 s timeout"),
    ],
)
def test_a_timeout_names_its_length(raised: type[httpx.TimeoutException], says: str) -> None:
    # Loopback cannot make a connection time out: this one fault is raised by a mock transport.
    def transport(request: httpx.Request) -> httpx.Response:
        raise raised("timed out", request=request)

    async def once() -> None:
        async with client(httpx.MockTransport(transport), 1) as http:
            await request(http, "GET", "http://gw:4000/v1/models", Limits(timeout=2.5, retries=0))

    with pytest.raises(Failed) as failed:
        asyncio.run(once())
    assert failed.value.detail == f"http://gw:4000/v1/models: {says}"


@pytest.mark.parametrize("command", ["drift", "probe"])
def test_an_empty_key_is_called_empty_not_unset(project: Path, gateway: StandIn, capsys, monkeypatch, command) -> None:
    monkeypatch.setenv("LITELLM_MASTER_KEY", "")
    code = main(["--project-dir", str(project), command, "--stack", "test", "--url", gateway.url])
    out, err = capsys.readouterr()
    assert (code, err) == (1, "")
    assert ": no master key: the environment variable LITELLM_MASTER_KEY is empty" in out.splitlines()[1]
    assert gateway.requests == []


def test_a_url_the_http_client_refuses_is_a_verdict_not_a_crash() -> None:
    # --url and llmfleet:gateway.url are checked before; this is the last line behind them.
    async def once() -> None:
        async with client(httpx.MockTransport(lambda request: httpx.Response(200)), 1) as http:
            await request(http, "GET", "http://999.999.999.999:4000/v1/models", Limits(timeout=1, retries=0))

    with pytest.raises(Failed) as failed:
        asyncio.run(once())
    assert failed.value.verdict is Verdict.UNREACHABLE
    assert failed.value.detail == (
        "http://999.999.999.999:4000/v1/models: not a usable URL: Invalid IPv4 address: '999.999.999.999'"
    )
