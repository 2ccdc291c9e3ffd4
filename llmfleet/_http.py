"""The HTTP layer `drift` and `probe` share: one client per check, per-request timeouts, bounded
retries with backoff, bounded bodies, failures turned into verdicts with a reason, and the key
redacted from anything shown."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from ._report import Verdict
from ._wording import duration

MAX_BODY_BYTES = 10 * 1024 * 1024  # a model list or a 1-token answer is kilobytes; more is not one
RETRY_STATUSES = frozenset({500, 502, 503, 504})


@dataclass(frozen=True)
class Limits:
    timeout: float = 5.0  # per request
    retries: int = 2  # after the first try, for refused connections, timeouts and (GETs) 5xx
    backoff: float = 0.25  # seconds, doubled each retry
    deadline: float = 20.0  # for one whole check of every target


@dataclass(frozen=True)
class Answer:
    status: int
    headers: httpx.Headers
    body: bytes


class Failed(Exception):
    def __init__(self, verdict: Verdict, detail: str) -> None:
        super().__init__(detail)
        self.verdict, self.detail = verdict, detail


def redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def key_problem(key: str | None, source: str) -> str | None:
    """Why `key` (read from `source`) cannot be sent as a Bearer token, or None. `LITELLM_MASTER_KEY=`
    is set, and calling it "not set" would send the user to look in the wrong place; a newline or a
    non-ASCII character cannot go into an HTTP header, and the client's error would echo the key."""
    if key is None:
        return f"no master key: {source} is not set"
    if not key:
        return f"no master key: {source} is empty"
    if not (key.isascii() and key.isprintable()):
        return (f"no usable master key: {source} holds a character an HTTP header cannot carry (a control "
                "character such as a newline, or a non-ASCII one)")  # fmt: skip
    return None


def _causes(exc: BaseException) -> Iterable[BaseException]:
    """The exception and what caused it (httpx wraps the OSError that says why)."""
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        if isinstance(seen, BaseExceptionGroup):
            for inner in seen.exceptions:
                yield from _causes(inner)
        seen = seen.__cause__ or seen.__context__


def describe(exc: httpx.HTTPError, url: str, timeout: float) -> str:
    """What went wrong, for a report: `timeout` is the per-request one, so a reader can tell a
    slow server from a short --timeout."""
    if isinstance(exc, httpx.TooManyRedirects):
        return f"{url}: too many redirects (a redirect loop?)"
    if isinstance(exc, httpx.LocalProtocolError):  # its text would echo the header, the key with it
        return f"{url}: the request could not be sent: a header value is not valid HTTP"
    if isinstance(exc, httpx.ConnectTimeout):
        return f"{url}: no connection within the {duration(timeout)} timeout"
    if isinstance(exc, httpx.TimeoutException):
        return f"{url}: no answer within the {duration(timeout)} timeout"
    if isinstance(exc, httpx.ConnectError):
        causes = list(_causes(exc))
        if any(isinstance(c, socket.gaierror) for c in causes):
            return f"{url}: the host name does not resolve"
        if any(isinstance(c, ConnectionRefusedError) for c in causes):
            return f"{url}: connection refused (is it running, on this address and port?)"
        return f"{url}: cannot connect ({exc or exc.__class__.__name__})"
    return f"{url}: {exc.__class__.__name__}: {exc}"


def trusted_certificates() -> ssl.SSLContext | bool:
    """What an https gateway URL is verified against: the certificates named by SSL_CERT_FILE, else
    SSL_CERT_DIR (an internal CA in front of the gateway), as httpx reads them when it trusts the
    environment, else httpx's default (certifi's public CAs). The client below ignores the
    environment (no proxies from it), which would otherwise ignore these too."""
    if os.environ.get("SSL_CERT_FILE"):
        name, where = "SSL_CERT_FILE", {"cafile": os.environ["SSL_CERT_FILE"]}
    elif os.environ.get("SSL_CERT_DIR"):
        name, where = "SSL_CERT_DIR", {"capath": os.environ["SSL_CERT_DIR"]}
    else:
        return True
    value = os.environ[name]
    try:
        return ssl.create_default_context(**where)
    except (OSError, ssl.SSLError) as exc:  # missing, unreadable, not PEM
        raise CertificatesError(f"cannot use the certificates {name}={value}: {getattr(exc, 'strerror', None) or exc}. "
                                "Name a PEM file (or a directory prepared by c_rehash) of the CA that "
                                "signed the gateway's certificate, or unset it") from None  # fmt: skip


class CertificatesError(Exception):
    """SSL_CERT_FILE or SSL_CERT_DIR names something that holds no usable certificate."""


@asynccontextmanager
async def client(transport: httpx.AsyncBaseTransport | None, connections: int) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=transport,
        verify=trusted_certificates(),
        follow_redirects=True,
        max_redirects=5,
        limits=httpx.Limits(max_connections=max(10, connections), max_keepalive_connections=0),
        trust_env=False,  # the checks talk to our own hosts, never through a proxy from the environment
    ) as http:
        yield http


async def request(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    limits: Limits,
    headers: dict[str, str] | None = None,
    json_body: Any = None,
    retry_statuses: frozenset[int] = RETRY_STATUSES,
) -> Answer:
    """One request with retries on refused connections and timeouts (and `retry_statuses`).
    Raises Failed with a verdict when no answer could be had."""
    delay = limits.backoff
    for attempt in range(limits.retries + 1):
        last = attempt == limits.retries
        try:
            async with http.stream(method, url, headers=headers, json=json_body, timeout=limits.timeout) as response:
                if response.status_code in retry_statuses and not last:
                    await asyncio.sleep(delay)
                    delay *= 2
                    continue
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_BODY_BYTES:
                        raise Failed(Verdict.BAD_RESPONSE, f"{url}: answer larger than {MAX_BODY_BYTES // 2**20} MB")
                return Answer(response.status_code, response.headers, bytes(body))
        except (httpx.ConnectError, httpx.TimeoutException) as exc:
            if last:
                raise Failed(Verdict.UNREACHABLE, describe(exc, url, limits.timeout)) from None
            await asyncio.sleep(delay)
            delay *= 2
        except httpx.TooManyRedirects as exc:
            raise Failed(Verdict.BAD_RESPONSE, describe(exc, url, limits.timeout)) from None
        except httpx.HTTPError as exc:
            raise Failed(Verdict.UNREACHABLE, describe(exc, url, limits.timeout)) from None
        except httpx.InvalidURL as exc:  # a URL not checked like --url (the stack's gateway.bind)
            raise Failed(Verdict.UNREACHABLE, f"{url}: not a usable URL: {exc}") from None
    raise AssertionError("unreachable")  # the loop always returns or raises


def excerpt(body: bytes, secret: str | None, size: int = 200) -> str:
    return redact(body[:size].decode("utf-8", "replace").strip(), secret)
