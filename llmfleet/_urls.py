"""The gateway's base URL, checked the same way wherever it comes from (`--url`, or
`llmfleet:gateway.url` in a stack file): a URL the HTTP client would refuse, or one that asks for
the wrong path, is an input error with its fix, never a crash inside a check."""

from __future__ import annotations

from urllib.parse import urlsplit


def gateway_url_problem(text: str) -> str | None:
    """Why `text` is not a usable gateway base URL, or None when it is."""
    if any(c.isspace() or not c.isprintable() for c in text):
        return f"{text!r} contains a space or a control character"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not text.startswith(f"{parts.scheme}://"):
        return f"'{text}' is not an http:// or https:// URL"
    try:
        port = parts.port  # ValueError: out of range, or not a number
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        return f"'{text}' has no usable port: give one from 1 to 65535, or none for the scheme's default"
    if not parts.hostname:
        return f"'{text}' names no host"
    if "?" in text or "#" in text:  # even empty: `...:4000#` would turn /v1/models into a fragment
        return f"'{text}' has a query or fragment: give the gateway's base URL alone"
    if parts.path.rstrip("/").endswith("/v1"):
        return (f"'{text}' ends in /v1: give the gateway's base URL ({text.rstrip('/')[: -len('/v1')]}); "
                "llmfleet adds /v1/models and /v1/chat/completions itself")  # fmt: skip
    return _refused_by_http_client(text)


def _refused_by_http_client(text: str) -> str | None:
    """What httpx refuses that the checks above let through (`http://999.999.999.999`): said here,
    not raised from inside a check. httpx is imported only now, for a URL that got this far."""
    import httpx

    try:
        httpx.URL(text)
    except httpx.InvalidURL as exc:
        return f"'{text}' is not a usable URL: {exc}"
    return None
