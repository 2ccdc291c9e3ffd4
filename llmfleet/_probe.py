"""Probe: listed is not enough, it must route. One tiny chat completion (max_tokens 1) through the
gateway for every declared name, concurrently, under one deadline.

Per name: `answers` (its own deployment answered), `degraded` (it answered only through a
fallback: LiteLLM's `x-litellm-attempted-fallbacks` header is above 0, or `x-litellm-model-group`
names another group), `fails` (the gateway answered with an error; LiteLLM's message is kept),
or could not check. Names served only by external (paid) providers are `not checked` unless asked.
With backends, each local deployment reachable from here is also asked directly, so a failing
name is explained ("tiny-native: connection refused"). The key is never shown.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ._catalog import Catalog, ExternalProvider, OllamaProvider, deployment_id
from ._drift import backend_urls, not_published
from ._http import Failed, Limits, client, excerpt, key_problem, redact, request
from ._load import Fleet
from ._report import CheckResult, Report, Verdict
from ._wording import count, duration

PROMPT = [{"role": "user", "content": "ping"}]
# A first request to a cold CPU server can take seconds: longer than drift's list requests.
PROBE_LIMITS = Limits(timeout=30.0, retries=1, deadline=60.0)
# A LiteLLM key refusal without a database is a 400 "No connected db"; with one, 401.
KEY_REFUSED = ("No connected db", "Authentication Error", "Invalid proxy server token")


@dataclass(frozen=True)
class ProbeTarget:
    """One declared name and what answers it."""

    name: str
    kind: str  # model, group or alias
    group: str  # the model group a request by this name routes to
    providers: tuple[str, ...]  # the deployments' providers
    external: bool  # served only by external (paid) providers
    # Which deployments may answer (`x-litellm-model-id`): the group's own, and those of the groups
    # it falls back to. Empty: not known (a target built without the catalog), nothing compared.
    deployments: tuple[str, ...] = ()
    fallback_deployments: tuple[str, ...] = ()


def probe_targets(catalog: Catalog) -> list[ProbeTarget]:
    """Every declared name (served names, groups, visible aliases), from the catalog alone."""
    providers: dict[str, list[str]] = {}
    for pname, p in catalog.providers.items():
        for served in p.served_names:
            providers.setdefault(served, []).append(pname)
    for gname, members in catalog.routes.groups.items():
        providers.setdefault(gname, []).extend(m.provider for m in members)

    routes = catalog.routes

    def deployments(group: str) -> tuple[str, ...]:
        return tuple(deployment_id(group, p) for p in dict.fromkeys(providers.get(group, [])))

    def target(name: str, kind: str, group: str) -> ProbeTarget:
        owners = tuple(dict.fromkeys(providers.get(group, [])))
        external = bool(owners) and all(isinstance(catalog.providers[o], ExternalProvider) for o in owners)
        chain = [*routes.fallbacks.get(group, []), *routes.context_window_fallbacks.get(group, [])]
        fallback = tuple(d for g in dict.fromkeys(chain) for d in deployments(g))
        return ProbeTarget(name, kind, group, owners, external, deployments(group), fallback)

    targets = [target(n, "group" if n in catalog.routes.groups else "model", n) for n in sorted(providers)]
    targets += [target(alias, "alias", a.model) for alias, a in sorted(catalog.routes.alias_entries().items())
                if not a.hidden]  # fmt: skip
    return targets


def _error_message(body: bytes, secret: str | None) -> str:
    """LiteLLM's `{"error": {"message": ...}}`, or the start of whatever came back."""
    try:
        error = json.loads(body).get("error")
        message = error.get("message") if isinstance(error, dict) else error
    except (ValueError, AttributeError):
        message = None
    text = redact(str(message), secret) if message else excerpt(body, secret)
    return text if len(text) <= 400 else text[:400] + "..."


async def probe_name(
    http: httpx.AsyncClient,
    url: str,
    key: str | None,
    target: ProbeTarget,
    limits: Limits,
    key_source: str = "the master key",
) -> CheckResult:
    started = time.perf_counter()
    chat_url = url.rstrip("/") + "/v1/chat/completions"
    result = CheckResult(target.name, target.kind, chat_url, Verdict.ANSWERS)
    try:
        problem = key_problem(key, key_source)
        if problem:
            raise Failed(Verdict.UNAUTHORIZED, problem)
        body = {"model": target.name, "messages": PROMPT, "max_tokens": 1}
        # No retry on an error status: a POST that reached LiteLLM was routed, and its error is the answer.
        answer = await request(http, "POST", chat_url, limits, {"Authorization": f"Bearer {key}"}, body,
                               retry_statuses=frozenset())  # fmt: skip
        if answer.status >= 400:
            message = _error_message(answer.body, key)
            if answer.status in (401, 403) or any(k in message for k in KEY_REFUSED):
                raise Failed(Verdict.UNAUTHORIZED, f"HTTP {answer.status}: the master key was refused: {message}")
            raise Failed(Verdict.FAILS, f"HTTP {answer.status}: {message}")
        headers = answer.headers
        answered_by = headers.get("x-litellm-model-id") or "?"
        group = headers.get("x-litellm-model-group") or target.group
        attempts = int(headers.get("x-litellm-attempted-fallbacks") or 0)
        # LiteLLM names the alias itself as the group of a request by alias: only the deployment
        # id says whether what answered is one the catalog declares for this name.
        if target.deployments and answered_by not in (*target.deployments, *target.fallback_deployments):
            declared = ", ".join((*target.deployments, *target.fallback_deployments))
            raise Failed(Verdict.FAILS, f"answered by {answered_by}, which the catalog does not declare for "
                                        f"{target.name} (declared: {declared})")  # fmt: skip
        if (
            attempts > 0
            or answered_by in set(target.fallback_deployments) - set(target.deployments)
            or (not target.deployments and group not in (target.group, target.name))
        ):
            result.verdict = Verdict.DEGRADED
            result.detail = (f"answered only through a fallback: by {answered_by} (group {group}) after "
                             f"{count(attempts, 'fallback attempt')}")  # fmt: skip
        else:
            result.notes = [f"answered by {answered_by}"]
    except Failed as failed:
        result.verdict, result.detail = failed.verdict, redact(failed.detail, key)
    result.seconds = time.perf_counter() - started
    return result


async def probe_backend(http: httpx.AsyncClient, name: str, provider: Any, url: str, limits: Limits) -> CheckResult:
    """Ask a local deployment directly, in its own API, for one token of each name it serves."""
    started = time.perf_counter()
    result = CheckResult(name, provider.kind, url, Verdict.ANSWERS)
    try:
        for served in provider.served_names:
            if isinstance(provider, OllamaProvider):
                path = "/api/chat"
                body: dict[str, Any] = {"model": provider.ollama_name(served), "messages": PROMPT, "stream": False,
                                        "options": {"num_predict": 1}}  # fmt: skip
            else:
                path, body = "/v1/chat/completions", {"model": served, "messages": PROMPT, "max_tokens": 1}
            answer = await request(http, "POST", url + path, limits, json_body=body, retry_statuses=frozenset())
            if answer.status >= 400:
                result.notes.append(f"{served}: HTTP {answer.status}: {_error_message(answer.body, None)}")
        if result.notes:
            result.verdict, result.detail = Verdict.FAILS, "; ".join(result.notes)
    except Failed as failed:
        result.verdict, result.detail = failed.verdict, f"{name}: {failed.detail.split(': ', 1)[-1]}"
    result.seconds = time.perf_counter() - started
    return result


async def _reported(check: Awaitable[CheckResult], progress: Callable[[CheckResult], None]) -> CheckResult:
    result = await check
    progress(result)
    return result


async def _bounded(coros: list[Awaitable[CheckResult]], fallbacks: list[CheckResult], deadline: float) -> list:
    """Run every check at once; one still running at the deadline is reported as not finished."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    if tasks:
        await asyncio.wait(tasks, timeout=deadline)
    results = []
    for task, late in zip(tasks, fallbacks, strict=True):
        if task.done():
            results.append(task.result())
        else:
            task.cancel()
            late.detail = f"not finished within the whole check's {duration(deadline)} deadline"
            results.append(late)
    return results


async def probe_declared(
    url: str,
    key: str | None,
    targets: Iterable[ProbeTarget],
    *,
    stack: str = "",
    include_external: bool = False,
    backend_targets: Iterable[tuple[str, Any, str | None]] = (),
    limits: Limits = PROBE_LIMITS,
    transport: httpx.AsyncBaseTransport | None = None,
    key_source: str = "the master key",
    progress: Callable[[CheckResult], None] | None = None,
) -> Report:
    """`progress`, if given, is handed each check as it finishes (a long probe shows it is alive)."""
    started = time.perf_counter()
    targets, backends = list(targets), list(backend_targets)
    chosen = [t for t in targets if include_external or not t.external]
    skipped = [CheckResult(t.name, t.kind, None, Verdict.NOT_CHECKED,
                           detail="served by external (paid) providers only: run with --include-external")
               for t in targets if t not in chosen]  # fmt: skip
    chat_url = url.rstrip("/") + "/v1/chat/completions"
    async with client(transport, len(chosen) + len(backends)) as http:
        coros = [probe_name(http, url, key, t, limits, key_source) for t in chosen]
        late = [CheckResult(t.name, t.kind, chat_url, Verdict.UNREACHABLE) for t in chosen]
        coros += [probe_backend(http, n, p, u, limits) for n, p, u in backends if u]
        late += [CheckResult(n, p.kind, u, Verdict.UNREACHABLE) for n, p, u in backends if u]
        if progress:
            coros = [_reported(c, progress) for c in coros]
        results = await _bounded(coros, late, limits.deadline)
    names, direct = results[: len(chosen)], results[len(chosen) :]
    _explain(names, chosen, direct)
    unpublished = [not_published(stack, n, p.kind) for n, p, u in backends if not u]
    checks = sorted(names + skipped, key=lambda c: c.target) + direct + unpublished
    declared = sorted(t.name for t in targets)
    return Report(stack, url, declared, checks, seconds=time.perf_counter() - started, command="probe")


def _explain(names: list[CheckResult], targets: list[ProbeTarget], direct: list[CheckResult]) -> None:
    """Add to each name that did not simply answer what its own deployments said when asked directly."""
    by_provider = {c.target: c for c in direct}
    for result, target in zip(names, targets, strict=True):
        if result.verdict is Verdict.ANSWERS:
            continue
        for provider in target.providers:
            backend = by_provider.get(provider)
            if backend and backend.verdict is not Verdict.ANSWERS:
                result.notes.append(backend.detail if backend.detail.startswith(provider) else
                                    f"{provider}: {backend.detail}")  # fmt: skip


async def probe(
    fleet: Fleet,
    url: str,
    key: str | None,
    *,
    include_external: bool = False,
    backends: bool = False,
    limits: Limits = PROBE_LIMITS,
    transport: httpx.AsyncBaseTransport | None = None,
    key_source: str = "the master key",
    progress: Callable[[CheckResult], None] | None = None,
    backend_addresses: Mapping[str, str | None] | None = None,
) -> Report:
    """Probe every declared name of a stack through its gateway (and, with `backends`, each
    local deployment reachable from here, at `backend_addresses` when given)."""
    targets: list[tuple[str, Any, str | None]] = []
    if backends:
        urls = backend_addresses if backend_addresses is not None else backend_urls(fleet)
        targets = [(n, p, urls.get(n)) for n, p in fleet.catalog.local_providers().items()]
    return await probe_declared(url, key, probe_targets(fleet.catalog), stack=fleet.name,
                                include_external=include_external, backend_targets=targets, limits=limits,
                                transport=transport, key_source=key_source, progress=progress)  # fmt: skip
