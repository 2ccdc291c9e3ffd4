"""probe against a loopback stand-in gateway: what each answer means, external names, the
deadline, the key never shown. (tests/test_routes_real_servers.py runs it against real servers.)"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import llmfleet
from llmfleet import Limits, ProbeTarget, Verdict, probe_declared, probe_targets

from .fleetdir import BASE_STACK, fleet_of
from .standins import Route, json_route, standins

KEY = "sk-probe-0a1b2c3d4e"
CATALOG = """\
providers:
  ollama: {kind: ollama, models: [qwen2.5:0.5b]}
  native: {kind: llama_cpp, gguf: /models/m.gguf, alias: gemma}
  cloud:
    kind: external
    api: ollama
    base_url: https://ollama.com
    api_key_env: OLLAMA_API_KEY
    models: [{name: gpt-oss:20b-cloud, upstream: gpt-oss:20b}]
routes:
  aliases:
    chat: gemma
    cheap: gpt-oss:20b-cloud
    internal: {model: gemma, hidden: true}
"""


def run(url: str, targets: list[ProbeTarget], **kwargs) -> llmfleet.Report:
    limits = kwargs.pop("limits", Limits(timeout=2, retries=0, deadline=5))
    return asyncio.run(probe_declared(url, KEY, targets, stack="test", limits=limits, **kwargs))


def test_targets_are_the_declared_names_with_what_serves_them(tmp_path: Path) -> None:
    targets = probe_targets(fleet_of(CATALOG, tmp_path).catalog)
    assert [(t.name, t.kind, t.group, t.providers, t.external) for t in targets] == [
        ("gemma", "model", "gemma", ("native",), False),
        ("gpt-oss:20b-cloud", "model", "gpt-oss:20b-cloud", ("cloud",), True),
        ("qwen2.5:0.5b", "model", "qwen2.5:0.5b", ("ollama",), False),
        ("chat", "alias", "gemma", ("native",), False),
        ("cheap", "alias", "gpt-oss:20b-cloud", ("cloud",), True),
    ]
    assert sorted(t.name for t in targets) == llmfleet.declared_models(fleet_of(CATALOG, tmp_path).catalog)


def test_each_answer_has_its_verdict(tmp_path: Path) -> None:
    targets = probe_targets(fleet_of(CATALOG, tmp_path).catalog)

    def answer(body: dict) -> Route:
        model = body["model"]
        assert body["max_tokens"] == 1
        if model == "gemma":
            return json_route({"error": {"message": f"litellm.APIConnectionError: boom (key {KEY})"}}, 500)
        deployment = {"chat": "gemma@native", "qwen2.5:0.5b": "qwen2.5:0.5b@ollama"}.get(
            model, "gpt-oss:20b-cloud@cloud"
        )
        return litellm_answer(deployment, group=model)

    with standins(1) as (gateway,):
        gateway.posts["/v1/chat/completions"] = answer
        report = run(gateway.url, targets)
        external = run(gateway.url, targets, include_external=True)
    checks = {c.target: c for c in report.checks}
    assert {n: c.verdict for n, c in checks.items()} == {
        "chat": Verdict.ANSWERS, "cheap": Verdict.NOT_CHECKED, "gemma": Verdict.FAILS,
        "gpt-oss:20b-cloud": Verdict.NOT_CHECKED, "qwen2.5:0.5b": Verdict.ANSWERS,
    }  # fmt: skip
    assert checks["gemma"].detail == "HTTP 500: litellm.APIConnectionError: boom (key ***)"
    assert checks["cheap"].detail == "served by external (paid) providers only: run with --include-external"
    assert (report.exit_code, report.summary) == (2, "failing")
    assert {c.target: c.verdict for c in external.checks}["cheap"] is Verdict.ANSWERS
    assert all(auth == f"Bearer {KEY}" for _, auth in gateway.requests)


def litellm_answer(deployment: str, group: str, fallbacks: int = 0) -> Route:
    """A chat answer with the headers LiteLLM 1.108 sets: the deployment that answered, the group
    (for a request by alias, the alias itself) and the fallbacks tried."""
    route = json_route({"choices": [{"message": {"content": "x"}}]})
    route.headers = {"x-litellm-model-id": deployment, "x-litellm-model-group": group,
                     "x-litellm-attempted-fallbacks": str(fallbacks)}  # fmt: skip
    return route


def test_an_answer_from_a_deployment_the_catalog_does_not_declare_fails_naming_it(tmp_path: Path) -> None:
    # A probe of one stack's names against another stack's gateway: `chat` exists there too, but
    # routes to another model. LiteLLM's group header is the alias itself, so only the id tells.
    [chat] = [t for t in probe_targets(fleet_of(CATALOG, tmp_path).catalog) if t.name == "chat"]
    with standins(1) as (gateway,):
        gateway.posts["/v1/chat/completions"] = lambda body: litellm_answer("qwen2.5:0.5b@ollama", group="chat")
        report = run(gateway.url, [chat])
    [check] = report.checks
    assert (check.verdict, report.exit_code) == (Verdict.FAILS, 2)
    assert check.detail == "answered by qwen2.5:0.5b@ollama, which the catalog does not declare for chat " \
                           "(declared: gemma@native)"  # fmt: skip


def test_an_answer_from_a_declared_fallback_is_degraded(tmp_path: Path) -> None:
    catalog = CATALOG.replace("routes:\n", "routes:\n  fallbacks:\n    gemma: [qwen2.5:0.5b]\n")
    [gemma] = [t for t in probe_targets(fleet_of(catalog, tmp_path).catalog) if t.name == "gemma"]
    assert (gemma.deployments, gemma.fallback_deployments) == (("gemma@native",), ("qwen2.5:0.5b@ollama",))
    with standins(1) as (gateway,):
        gateway.posts["/v1/chat/completions"] = lambda body: litellm_answer("qwen2.5:0.5b@ollama", "qwen2.5:0.5b", 1)
        [check] = run(gateway.url, [gemma]).checks
    assert check.verdict is Verdict.DEGRADED
    assert check.detail == "answered only through a fallback: by qwen2.5:0.5b@ollama (group qwen2.5:0.5b) after " \
                           "1 fallback attempt"  # fmt: skip


def test_a_refused_key_is_could_not_check(tmp_path: Path) -> None:
    targets = [t for t in probe_targets(fleet_of(CATALOG, tmp_path).catalog) if t.name == "gemma"]
    with standins(1) as (gateway,):
        gateway.posts["/v1/chat/completions"] = lambda body: json_route(
            {"error": {"message": "Authentication Error, No connected db.", "type": "no_db_connection"}}, 400
        )
        report = run(gateway.url, targets)
    [check] = report.checks
    assert check.verdict is Verdict.UNAUTHORIZED and report.exit_code == 1


def test_the_whole_probe_keeps_its_deadline(tmp_path: Path) -> None:
    targets = [t for t in probe_targets(fleet_of(CATALOG, tmp_path).catalog) if not t.external]
    with standins(1) as (gateway,):
        gateway.posts["/v1/chat/completions"] = lambda body: Route(hang=True)
        started = time.monotonic()
        report = run(gateway.url, targets, limits=Limits(timeout=30, retries=0, deadline=1))
        took = time.monotonic() - started
    assert took < 3
    assert {c.verdict for c in report.checks} == {Verdict.UNREACHABLE}
    assert all("not finished within the whole check's 1 s deadline" in c.detail for c in report.checks)


def test_backends_it_cannot_reach_are_could_not_check_naming_what_to_set(tmp_path: Path) -> None:
    # `--backends` with Ollama not published where the probe runs: every name answers through the
    # gateway, llama-server answers directly, and the probe still exits 1, naming Ollama and the key.
    with standins(2) as (gateway, native):
        catalog = CATALOG.replace("alias: gemma}", f"alias: gemma, port: {native.port}}}")
        stack = BASE_STACK + "  llmfleet:providers:\n    native: {publish: true}\n"
        fleet = fleet_of(catalog, tmp_path, stack)
        answers = {"chat": "gemma@native", "gemma": "gemma@native", "qwen2.5:0.5b": "qwen2.5:0.5b@ollama"}
        gateway.posts["/v1/chat/completions"] = lambda body: litellm_answer(answers[body["model"]], body["model"])
        native.posts["/v1/chat/completions"] = lambda body: json_route({"choices": [{"message": {"content": "x"}}]})
        limits = Limits(timeout=2, retries=0, deadline=5)
        report = asyncio.run(llmfleet.probe(fleet, gateway.url, KEY, backends=True, limits=limits))
        without = asyncio.run(llmfleet.probe(fleet, gateway.url, KEY, limits=limits))
    checks = {c.target: c for c in report.checks}
    assert {n: c.verdict for n, c in checks.items()} == {
        "chat": Verdict.ANSWERS, "cheap": Verdict.NOT_CHECKED, "gemma": Verdict.ANSWERS,
        "gpt-oss:20b-cloud": Verdict.NOT_CHECKED, "qwen2.5:0.5b": Verdict.ANSWERS,
        "native": Verdict.ANSWERS, "ollama": Verdict.NOT_PUBLISHED,
    }  # fmt: skip
    assert checks["ollama"].detail == (
        "this check cannot reach it: set `llmfleet:providers.ollama.publish: true` in stacks/Pulumi.test.yaml "
        "(its port on 127.0.0.1 of the gateway's host) and run the check on that host, or check without --backends"
    )
    assert (report.exit_code, report.summary) == (1, "could not check")
    # Without --backends, as before: external names not probed are no reason to fail.
    assert (without.exit_code, without.summary) == (0, "every name answers")
