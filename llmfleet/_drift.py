"""Drift: compare what the live gateway (and, optionally, each backend) serves with the declared set.

One verdict per check. A check that could not see the truth (refused, timed out, 401, not JSON,
the wrong shape, too large, a redirect loop) is never reported as in sync. Requests run
concurrently through the HTTP layer `probe` shares (_http.py), all inside one overall deadline.
The master key is sent as a Bearer token and never written anywhere: error text that echoes it
is redacted.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx

from ._catalog import (
    LlamaCppProvider,
    LlamaCppPythonProvider,
    OllamaModel,
    OllamaProvider,
    VllmProvider,
    ollama_listed_name,
)
from ._declared import declared_models
from ._http import Failed, Limits, client, excerpt, key_problem, redact, request
from ._load import Fleet
from ._report import CheckResult, Report, Verdict
from ._stack import url_host
from ._wording import duration


async def _get(
    http: httpx.AsyncClient, url: str, limits: Limits, headers: dict[str, str] | None = None, want_json: bool = True
) -> tuple[int, Any]:
    """GET with retries; returns (status, parsed JSON, or the raw body for errors and `want_json=False`)."""
    answer = await request(http, "GET", url, limits, headers)
    if not want_json or answer.status >= 400:
        return answer.status, answer.body
    try:
        return answer.status, json.loads(answer.body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        text = answer.body[:80].decode("utf-8", "replace")
        raise Failed(Verdict.BAD_RESPONSE, f"{url}: HTTP {answer.status} but not JSON: {text!r}") from None


def _ids(payload: Any, url: str, key: str = "data", item: str = "id") -> list[str]:
    """The ids of an OpenAI-style list (`data: [{id}]`) or Ollama's tags (`models: [{name}]`).
    A null list is an empty one (Ollama answers `"data": null` with no models)."""
    if not isinstance(payload, dict) or key not in payload:
        raise Failed(Verdict.BAD_RESPONSE, f"{url}: expected a JSON object with `{key}`, got {_shape(payload)}")
    entries = payload[key]
    if entries is None:
        return []
    if not isinstance(entries, list) or not all(isinstance(e, dict) and isinstance(e.get(item), str) for e in entries):
        raise Failed(Verdict.BAD_RESPONSE, f"{url}: `{key}` is not a list of objects with a string `{item}`")
    return [e[item] for e in entries]


def _shape(payload: Any) -> str:
    if isinstance(payload, dict):
        return "an object with keys " + (", ".join(sorted(map(str, payload))[:5]) or "none")
    return type(payload).__name__


def _status_failure(status: int, body: bytes, url: str, secret: str | None, gateway: bool) -> Failed:
    text = excerpt(body, secret)
    if gateway and status in (400, 401, 403):
        # LiteLLM without a database answers an unknown key with 400 "No connected db".
        return Failed(Verdict.UNAUTHORIZED, f"{url}: HTTP {status}: the master key was refused: {text}")
    return Failed(Verdict.BAD_RESPONSE, f"{url}: HTTP {status}: {text}")


async def check_gateway(
    http: httpx.AsyncClient,
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
        problem = key_problem(key, key_source)
        if problem:
            raise Failed(Verdict.UNAUTHORIZED, problem)
        status, payload = await _get(http, models_url, limits, {"Authorization": f"Bearer {key}"})
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
    except Failed as failed:
        result.verdict, result.detail = failed.verdict, redact(failed.detail, key)
    result.seconds = time.perf_counter() - started
    return result


def _ollama_label(model: OllamaModel) -> str:
    return model.name if model.ollama_name == model.name else f"{model.name} (as {model.ollama_name})"


def _ollama_absent(model: OllamaModel, name: str, live: set[str]) -> str:
    """Why a declared model is missing: not there at all, or there under another spelling, which
    an Ollama before 0.16.2 does not answer chat for (it matches the listed spelling exactly)."""
    wanted = ollama_listed_name(model.ollama_name)
    spelled = sorted(t for t in live if t.casefold() == wanted.casefold())
    if spelled:
        return (f"{_ollama_label(model)}: listed on {name} only as '{spelled[0]}', a spelling that Ollama before "
                f"0.16.2 answers chat for instead of '{model.ollama_name}'")  # fmt: skip
    return f"{_ollama_label(model)}: not {'created' if model.gguf else 'pulled'} on {name}"


async def check_backend(http: httpx.AsyncClient, name: str, provider: Any, url: str, limits: Limits) -> CheckResult:
    started = time.perf_counter()
    result = CheckResult(name, provider.kind, url, Verdict.IN_SYNC)
    try:
        if isinstance(provider, OllamaProvider):
            status, payload = await _get(http, f"{url}/api/tags", limits)
            if status >= 400:
                raise _status_failure(status, payload, f"{url}/api/tags", None, gateway=False)
            live = {ollama_listed_name(t) for t in _ids(payload, f"{url}/api/tags", key="models", item="name")}
            absent = [m for m in provider.models if ollama_listed_name(m.ollama_name) not in live]
            result.missing = [m.name for m in absent]
            result.notes = [_ollama_absent(m, name, live) for m in absent]
        else:
            if isinstance(provider, LlamaCppProvider):
                status, body = await _get(http, f"{url}/health", limits, want_json=False)
                if status == 503:
                    result.verdict = Verdict.DRIFT
                    result.missing = list(provider.served_names)
                    result.notes = [f"{n}: not loaded on {name} (/health: 503, loading)" for n in result.missing]
                elif status != 200:
                    raise _status_failure(status, body, f"{url}/health", None, gateway=False)
            if result.verdict is Verdict.IN_SYNC:
                status, payload = await _get(http, f"{url}/v1/models", limits)
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
    except Failed as failed:
        result.verdict, result.detail = failed.verdict, failed.detail
    result.seconds = time.perf_counter() - started
    return result


def not_published(stack: str, name: str, kind: str) -> CheckResult:
    """A backend `--backends` was asked to check that the stack does not publish where checks run."""
    return CheckResult(name, kind, None, Verdict.NOT_PUBLISHED,
                       detail=f"this check cannot reach it: set `llmfleet:providers.{name}.publish: true` in "
                       f"stacks/Pulumi.{stack or '<stack>'}.yaml (its port on 127.0.0.1 of the gateway's host) and "
                       "run the check on that host, or check without --backends")  # fmt: skip


def backend_urls(fleet: Fleet) -> dict[str, str | None]:
    """Where each provisioned backend is reachable from where the check runs, if anywhere:
    a remote host's published port, or an opted-in loopback port on the gateway's host."""
    urls: dict[str, str | None] = {}
    for name, p in fleet.catalog.local_providers().items():
        ip = fleet.stack.publish_ip(name)
        urls[name] = f"http://{url_host(ip)}:{p.listen_port}" if ip else None
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
) -> Report:
    started = time.perf_counter()
    async with client(transport, len(targets) + 2) as http:
        coros = [check_gateway(http, url, key, declared, limits, key_source)]
        coros += [check_backend(http, n, p, u, limits) for n, p, u in targets if u]
        try:
            async with asyncio.timeout(limits.deadline):
                results = list(await asyncio.gather(*coros))
        except TimeoutError:
            late = f"not finished within the whole check's {duration(limits.deadline)} deadline"
            results = [CheckResult("gateway", "litellm", url, Verdict.UNREACHABLE, detail=late)]
            results += [CheckResult(n, p.kind, u, Verdict.UNREACHABLE, detail=late) for n, p, u in targets if u]
    unpublished = [not_published(stack, n, p.kind) for n, p, u in targets if not u]
    return Report(stack, url, declared, results + unpublished, seconds=time.perf_counter() - started)


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
    progress: Callable[[Report], None] | None = None,
) -> Report:
    """Check the gateway at `url` against `declared` (and optional backends). With `wait` > 0,
    check every `poll_interval` seconds until in sync or `wait` seconds have passed (right after
    a deploy, while backends are still loading); the last report wins. `progress` is handed each
    attempt's report as it comes in."""
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
        report.attempts = attempts
        if progress:
            progress(report)
        # Waiting publishes nothing: a report whose only gaps are unpublished backends is final.
        settled = all(c.verdict is Verdict.NOT_PUBLISHED for c in report.checks if c.verdict is not Verdict.IN_SYNC)
        if settled or time.monotonic() + poll_interval >= end:
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
    progress: Callable[[Report], None] | None = None,
    backend_addresses: Mapping[str, str | None] | None = None,
) -> Report:
    """Check a stack's gateway against the declared set computed from its catalog, and with
    `backends`, each provisioned backend reachable from here (at `backend_addresses` when given:
    the forwards to a cluster's Services, llmfleet/_reach.py)."""
    targets: list[tuple[str, Any, str | None]] = []
    if backends:
        urls = backend_addresses if backend_addresses is not None else backend_urls(fleet)
        local = fleet.catalog.local_providers().items()
        targets = [(n, p, urls.get(n)) for n, p in local if isinstance(p, _BACKEND_KINDS)]
    return await check_declared(
        url, key, declared_models(fleet.catalog), stack=fleet.name, wait=wait, poll_interval=poll_interval,
        limits=limits, transport=transport, backend_targets=targets, key_source=key_source, progress=progress,
    )  # fmt: skip
