"""Drift: compare what the live gateway (and, optionally, each backend) serves with the declared set.

One verdict per check. A check that could not see the truth (refused, timed out, 401, not JSON,
the wrong shape, too large, a redirect loop) is never reported as in sync. Requests run
concurrently in one httpx.AsyncClient, each with its own timeout and bounded retries with
backoff, all inside one overall deadline. The master key is sent as a Bearer token and never
written anywhere: error text that echoes it is redacted.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx

from ._catalog import LlamaCppProvider, LlamaCppPythonProvider, OllamaProvider, VllmProvider
from ._declared import declared_models
from ._load import Fleet

MAX_BODY_BYTES = 10 * 1024 * 1024  # a /v1/models answer is kilobytes; more is not a model list
RETRY_STATUSES = frozenset({500, 502, 503, 504})


class Verdict(StrEnum):
    IN_SYNC = "in sync"
    DRIFT = "drift"
    UNREACHABLE = "unreachable"
    UNAUTHORIZED = "unauthorized"
    BAD_RESPONSE = "bad response"
    NOT_CHECKED = "not checked"  # a backend not reachable from here by design (not published)

    @property
    def could_not_check(self) -> bool:
        return self in (Verdict.UNREACHABLE, Verdict.UNAUTHORIZED, Verdict.BAD_RESPONSE)


@dataclass
class CheckResult:
    target: str  # "gateway" or a provider name
    kind: str  # litellm, ollama, vllm, llama_cpp, llama_cpp_python
    url: str | None
    verdict: Verdict
    missing: list[str] = field(default_factory=list)
    undeclared: list[str] = field(default_factory=list)
    detail: str = ""  # why, when not in sync
    notes: list[str] = field(default_factory=list)  # per model: "llama3.1:latest: not pulled on ollama"
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target, "kind": self.kind, "url": self.url, "verdict": self.verdict.value,
            "missing": self.missing, "undeclared": self.undeclared, "detail": self.detail, "notes": self.notes,
            "seconds": round(self.seconds, 3),
        }  # fmt: skip


@dataclass
class DriftReport:
    stack: str
    gateway_url: str
    declared: list[str]
    checks: list[CheckResult]
    attempts: int = 1
    seconds: float = 0.0

    @property
    def gateway(self) -> CheckResult:
        return self.checks[0]

    @property
    def exit_code(self) -> int:
        """0 in sync; 2 drift found anywhere; 1 nothing drifted but something could not be checked."""
        if any(c.verdict is Verdict.DRIFT for c in self.checks):
            return 2
        if any(c.verdict.could_not_check for c in self.checks):
            return 1
        return 0

    @property
    def summary(self) -> str:
        return {0: "in sync", 1: "could not check", 2: "drift"}[self.exit_code]

    def to_dict(self) -> dict[str, Any]:
        return {
            "stack": self.stack, "gateway_url": self.gateway_url, "result": self.summary,
            "exit_code": self.exit_code, "declared": self.declared, "attempts": self.attempts,
            "seconds": round(self.seconds, 3), "checks": [c.to_dict() for c in self.checks],
        }  # fmt: skip


@dataclass(frozen=True)
class Limits:
    timeout: float = 5.0  # per request
    retries: int = 2  # after the first try, for refused connections, timeouts and 5xx
    backoff: float = 0.25  # seconds, doubled each retry
    deadline: float = 20.0  # for one whole check of every target


class _Failed(Exception):
    def __init__(self, verdict: Verdict, detail: str) -> None:
        super().__init__(detail)
        self.verdict, self.detail = verdict, detail


def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def _causes(exc: BaseException) -> Iterable[BaseException]:
    """The exception and what caused it (httpx wraps the OSError that says why)."""
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        if isinstance(seen, BaseExceptionGroup):
            for inner in seen.exceptions:
                yield from _causes(inner)
        seen = seen.__cause__ or seen.__context__


def _describe(exc: httpx.HTTPError, url: str) -> str:
    if isinstance(exc, httpx.TooManyRedirects):
        return f"{url}: too many redirects (a redirect loop?)"
    if isinstance(exc, httpx.ConnectTimeout):
        return f"{url}: connection timed out"
    if isinstance(exc, httpx.TimeoutException):
        return f"{url}: no answer within the timeout"
    if isinstance(exc, httpx.ConnectError):
        causes = list(_causes(exc))
        if any(isinstance(c, socket.gaierror) for c in causes):
            return f"{url}: the host name does not resolve"
        if any(isinstance(c, ConnectionRefusedError) for c in causes):
            return f"{url}: connection refused (is it running, on this address and port?)"
        return f"{url}: cannot connect ({exc or exc.__class__.__name__})"
    return f"{url}: {exc.__class__.__name__}: {exc}"


async def _get(
    client: httpx.AsyncClient, url: str, limits: Limits, headers: dict[str, str] | None = None, want_json: bool = True
) -> tuple[int, Any]:
    """GET with retries; returns (status, parsed JSON or None). Raises _Failed with a verdict."""
    delay = limits.backoff
    for attempt in range(limits.retries + 1):
        last = attempt == limits.retries
        try:
            async with client.stream("GET", url, headers=headers, timeout=limits.timeout) as response:
                if response.status_code in RETRY_STATUSES and not last:
                    await asyncio.sleep(delay)
                    delay *= 2
                    continue
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_BODY_BYTES:
                        raise _Failed(Verdict.BAD_RESPONSE, f"{url}: answer larger than {MAX_BODY_BYTES // 2**20} MB")
                status = response.status_code
        except (httpx.ConnectError, httpx.TimeoutException) as exc:
            if last:
                raise _Failed(Verdict.UNREACHABLE, _describe(exc, url)) from None
            await asyncio.sleep(delay)
            delay *= 2
            continue
        except httpx.TooManyRedirects as exc:
            raise _Failed(Verdict.BAD_RESPONSE, _describe(exc, url)) from None
        except httpx.HTTPError as exc:
            raise _Failed(Verdict.UNREACHABLE, _describe(exc, url)) from None
        if not want_json:
            return status, bytes(body)
        if status >= 400:
            return status, bytes(body)
        try:
            return status, json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            excerpt = bytes(body[:80]).decode("utf-8", "replace")
            raise _Failed(Verdict.BAD_RESPONSE, f"{url}: HTTP {status} but not JSON: {excerpt!r}") from None
    raise AssertionError("unreachable")  # the loop always returns or raises


def _ids(payload: Any, url: str, key: str = "data", item: str = "id") -> list[str]:
    """The ids of an OpenAI-style list (`data: [{id}]`) or Ollama's tags (`models: [{name}]`).
    A null list is an empty one (Ollama answers `"data": null` with no models)."""
    if not isinstance(payload, dict) or key not in payload:
        raise _Failed(Verdict.BAD_RESPONSE, f"{url}: expected a JSON object with `{key}`, got {_shape(payload)}")
    entries = payload[key]
    if entries is None:
        return []
    if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get(item), str) for e in entries):
        raise _Failed(Verdict.BAD_RESPONSE, f"{url}: `{key}` is not a list of objects with a string `{item}`")
    return [e[item] for e in entries]


def _shape(payload: Any) -> str:
    if isinstance(payload, dict):
        return "an object with keys " + (", ".join(sorted(map(str, payload))[:5]) or "none")
    return type(payload).__name__


def _status_failure(status: int, body: bytes, url: str, secret: str | None, gateway: bool) -> _Failed:
    excerpt = _redact(body[:200].decode("utf-8", "replace").strip(), secret)
    if gateway and status in (400, 401, 403):
        # LiteLLM without a database answers an unknown key with 400 "No connected db".
        return _Failed(Verdict.UNAUTHORIZED, f"{url}: HTTP {status}: the master key was refused: {excerpt}")
    return _Failed(Verdict.BAD_RESPONSE, f"{url}: HTTP {status}: {excerpt}")


async def check_gateway(
    client: httpx.AsyncClient,
    url: str,
    key: str | None,
    declared: Iterable[str],
    limits: Limits,
    key_source: str = "the master key",
) -> CheckResult:
    started = time.perf_counter()
    models_url = url.rstrip("/") + "/v1/models"
    result = CheckResult("gateway", "litellm", models_url, Verdict.IN_SYNC)
    try:
        if not key:
            raise _Failed(Verdict.UNAUTHORIZED, f"no master key: {key_source} is not set")
        status, payload = await _get(client, models_url, limits, {"Authorization": f"Bearer {key}"})
        if status >= 400:
            raise _status_failure(status, payload, models_url, key, gateway=True)
        live = set(_ids(payload, models_url))
        wanted = set(declared)
        result.missing, result.undeclared = sorted(wanted - live), sorted(live - wanted)
        if result.missing or result.undeclared:
            result.verdict = Verdict.DRIFT
            parts = []
            if result.missing:
                parts.append(f"missing: {', '.join(result.missing)}")
            if result.undeclared:
                parts.append(f"not declared: {', '.join(result.undeclared)}")
            result.detail = "; ".join(parts)
    except _Failed as failed:
        result.verdict, result.detail = failed.verdict, _redact(failed.detail, key)
    result.seconds = time.perf_counter() - started
    return result


def _listed(tag: str) -> str:
    return tag if ":" in tag else f"{tag}:latest"


async def check_backend(client: httpx.AsyncClient, name: str, provider: Any, url: str, limits: Limits) -> CheckResult:
    started = time.perf_counter()
    result = CheckResult(name, provider.kind, url, Verdict.IN_SYNC)
    try:
        if isinstance(provider, OllamaProvider):
            status, payload = await _get(client, f"{url}/api/tags", limits)
            if status >= 400:
                raise _status_failure(status, payload, f"{url}/api/tags", None, gateway=False)
            live = {_listed(t) for t in _ids(payload, f"{url}/api/tags", key="models", item="name")}
            result.missing = [t for t in provider.models if _listed(t) not in live]
            result.notes = [f"{t}: not pulled on {name}" for t in result.missing]
        else:
            if isinstance(provider, LlamaCppProvider):
                status, body = await _get(client, f"{url}/health", limits, want_json=False)
                if status == 503:
                    result.verdict = Verdict.DRIFT
                    result.missing = list(provider.served_names)
                    result.notes = [f"{n}: not loaded on {name} (/health: 503, loading)" for n in result.missing]
                elif status != 200:
                    raise _status_failure(status, body, f"{url}/health", None, gateway=False)
            if result.verdict is Verdict.IN_SYNC:
                status, payload = await _get(client, f"{url}/v1/models", limits)
                if status >= 400:
                    raise _status_failure(status, payload, f"{url}/v1/models", None, gateway=False)
                live = set(_ids(payload, f"{url}/v1/models"))
                result.missing = [n for n in provider.served_names if n not in live]
                result.undeclared = sorted(live - set(provider.served_names))
                result.notes = [f"{n}: not served by {name} (it serves: {', '.join(sorted(live)) or 'nothing'})"
                                for n in result.missing]  # fmt: skip
        if result.missing:
            result.verdict = Verdict.DRIFT
            result.detail = "; ".join(result.notes)
    except _Failed as failed:
        result.verdict, result.detail = failed.verdict, failed.detail
    result.seconds = time.perf_counter() - started
    return result


def backend_urls(fleet: Fleet) -> dict[str, str | None]:
    """Where each provisioned backend is reachable from where the check runs, if anywhere:
    a remote host's published port, or an opted-in loopback port on the gateway's host."""
    urls: dict[str, str | None] = {}
    for name, p in fleet.catalog.local_providers().items():
        ip = fleet.stack.publish_ip(name)
        urls[name] = f"http://{ip}:{p.listen_port}" if ip else None
    return urls


_BACKEND_KINDS = (OllamaProvider, VllmProvider, LlamaCppProvider, LlamaCppPythonProvider)


async def _check_once(
    stack: str,
    url: str,
    key: str | None,
    declared: list[str],
    targets: list[tuple[str, Any, str | None]],
    limits: Limits,
    transport: httpx.AsyncBaseTransport | None,
    key_source: str,
) -> DriftReport:
    started = time.perf_counter()
    async with httpx.AsyncClient(
        transport=transport,
        follow_redirects=True,
        max_redirects=5,
        limits=httpx.Limits(max_connections=max(10, len(targets) + 2), max_keepalive_connections=0),
        trust_env=False,  # the check talks to our own hosts, never through a proxy from the environment
    ) as client:
        coros = [check_gateway(client, url, key, declared, limits, key_source)]
        coros += [check_backend(client, n, p, u, limits) for n, p, u in targets if u]
        try:
            async with asyncio.timeout(limits.deadline):
                results = list(await asyncio.gather(*coros))
        except TimeoutError:
            late = f"not finished within the whole check's {limits.deadline:g} s deadline"
            results = [CheckResult("gateway", "litellm", url, Verdict.UNREACHABLE, detail=late)]
            results += [CheckResult(n, p.kind, u, Verdict.UNREACHABLE, detail=late) for n, p, u in targets if u]
    skipped = [
        CheckResult(n, p.kind, None, Verdict.NOT_CHECKED,
                    detail=f"not published where this check runs (set llmfleet:providers.{n}.publish: true)")
        for n, p, u in targets if not u
    ]  # fmt: skip
    return DriftReport(stack, url, declared, results + skipped, seconds=time.perf_counter() - started)


async def check_declared(
    url: str,
    key: str | None,
    declared: Iterable[str],
    *,
    stack: str = "",
    wait: float = 0.0,
    poll_interval: float = 2.0,
    limits: Limits = Limits(),
    transport: httpx.AsyncBaseTransport | None = None,
    backend_targets: Iterable[tuple[str, Any, str | None]] = (),
    key_source: str = "the master key",
) -> DriftReport:
    """Check the gateway at `url` against `declared` (and optional backends). With `wait` > 0,
    check every `poll_interval` seconds until in sync or `wait` seconds have passed (right after
    a deploy, while backends are still loading); the last report wins."""
    declared, targets = sorted(declared), list(backend_targets)
    started = time.perf_counter()
    end = time.monotonic() + wait
    attempts = 0
    while True:
        attempts += 1
        remaining = end - time.monotonic()
        round_limits = limits if wait <= 0 else Limits(
            limits.timeout, limits.retries, limits.backoff, max(0.5, min(limits.deadline, remaining))
        )  # fmt: skip
        report = await _check_once(stack, url, key, declared, targets, round_limits, transport, key_source)
        if report.exit_code == 0 or time.monotonic() + poll_interval >= end:
            report.attempts = attempts
            report.seconds = time.perf_counter() - started
            return report
        await asyncio.sleep(poll_interval)


async def check(
    fleet: Fleet,
    url: str,
    key: str | None,
    *,
    backends: bool = False,
    wait: float = 0.0,
    poll_interval: float = 2.0,
    limits: Limits = Limits(),
    transport: httpx.AsyncBaseTransport | None = None,
    key_source: str = "the master key",
) -> DriftReport:
    """Check a stack's gateway against the declared set computed from its catalog, and with
    `backends`, each provisioned backend reachable from here."""
    targets: list[tuple[str, Any, str | None]] = []
    if backends:
        urls = backend_urls(fleet)
        local = fleet.catalog.local_providers().items()
        targets = [(n, p, urls.get(n)) for n, p in local if isinstance(p, _BACKEND_KINDS)]
    return await check_declared(
        url, key, declared_models(fleet.catalog), stack=fleet.name, wait=wait, poll_interval=poll_interval,
        limits=limits, transport=transport, backend_targets=targets, key_source=key_source,
    )  # fmt: skip
