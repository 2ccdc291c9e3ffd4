"""The post-deploy policy's validator, called directly with StackValidationArgs built by hand:
a compliant baseline, then one change per test."""

from __future__ import annotations

import asyncio
import runpy
from collections.abc import Callable, Iterator
from pathlib import Path

import pulumi.runtime
import pytest
from pulumi.runtime import settings
from pulumi_policy import StackValidationArgs
from pulumi_policy.policy import PolicyCustomTimeouts, PolicyResource, PolicyResourceOptions, _NotApplicableError
from pulumi_policy.proxy import unknown_checking_proxy

from policy.gateway_drift import (
    AFTER_DEPLOY,
    GATEWAY_TYPE,
    IN_PREVIEW,
    PolicyConfig,
    read_config,
    validate_gateway_drift,
)

from .litellm_proxy import free_port
from .standins import StandIn, json_route, openai_models, standins

KEY = "sk-policy-5e4d3c2b1a09"
DECLARED = ["chat", "gemma-3-1b", "qwen2.5:0.5b"]
URN = "urn:pulumi:prod::llmfleet::llmfleet:index:Gateway::gateway"


def resource(props: dict, resource_type: str = GATEWAY_TYPE, urn: str = URN) -> PolicyResource:
    """A resource as pulumi-policy's analyzer hands it over: its props behind the proxy that raises
    on unknown values, lists as a Sequence proxy (not a `list`), as the real engine showed."""
    opts = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)
    wrapped = unknown_checking_proxy(props)
    return PolicyResource(resource_type, wrapped, urn, urn.rsplit("::", 1)[1], opts, None, None, [], {})


def validate(resources: list[PolicyResource], config: dict | None = None) -> list[tuple[str, str | None]]:
    violations: list[tuple[str, str | None]] = []
    args = StackValidationArgs(resources, {"waitSeconds": 0, "timeoutSeconds": 0.5, **(config or {})})
    result = validate_gateway_drift(args, lambda message, urn=None: violations.append((message, urn)))
    if result is not None:
        asyncio.run(result)
    return violations


@pytest.fixture
def gateway() -> Iterator[StandIn]:
    with standins(1) as (server,):
        server.routes["/v1/models"] = json_route(openai_models(DECLARED))
        yield server


def props(gateway: StandIn, **changes) -> dict:
    return {"url": gateway.url, "declared_models": DECLARED, "master_key": KEY, **changes}


def test_compliant(gateway: StandIn) -> None:
    assert validate([resource(props(gateway))]) == []
    assert gateway.requests == [("/v1/models", f"Bearer {KEY}")]


def test_missing_and_undeclared_models_are_named(gateway: StandIn) -> None:
    gateway.routes["/v1/models"] = json_route(openai_models(["chat", "qwen2.5:0.5b", "gpt-4o"]))
    assert validate([resource(props(gateway))]) == [(
        f"the gateway at {gateway.url} does not serve the declared models after 1 check: "
        "missing (declared, not listed): gemma-3-1b; not declared (listed): gpt-4o. "
        "Run `llmfleet drift --stack prod --backends` to see why.",
        URN,
    )]  # fmt: skip


def test_a_gateway_that_cannot_be_checked_is_a_violation() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    [(message, urn)] = validate([resource({"url": url, "declared_models": DECLARED, "master_key": KEY})])
    assert urn == URN
    assert message.startswith(f"could not check the gateway at {url}: unreachable: {url}/v1/models: connection refused")
    assert KEY not in message


def test_waits_for_the_gateway_to_come_in_sync(gateway: StandIn) -> None:
    answers = iter([openai_models(DECLARED[:1])])
    gateway.routes["/v1/models"] = lambda: json_route(next(answers, openai_models(DECLARED)))
    assert validate([resource(props(gateway))], {"waitSeconds": 10}) == []
    assert len(gateway.requests) == 2


@pytest.fixture
def engine_run() -> Iterator[Callable[[bool], None]]:
    """Configure the runtime as pulumi-policy does from the engine's environment
    (policy.py `_configure_runtime_settings`: Settings(project, stack, dry_run=PULUMI_DRY_RUN == "true")),
    and restore whatever was there."""
    saved = settings.SETTINGS

    def configure(dry_run: bool) -> None:
        pulumi.runtime.configure(pulumi.runtime.Settings(project="llmfleet", stack="prod", dry_run=dry_run))

    try:
        yield configure
    finally:
        settings.configure(saved)


def test_a_preview_with_known_outputs_sends_no_request(gateway: StandIn, engine_run) -> None:
    # The new catalog declares a model the live (old) gateway does not list yet: checking in the
    # preview would fail the update before it ran. The outputs are known: they come from config.
    engine_run(True)
    with pytest.raises(_NotApplicableError) as raised:
        validate([resource(props(gateway, declared_models=[*DECLARED, "new-model"]))], {"waitSeconds": 30})
    assert raised.value.reason == IN_PREVIEW
    assert gateway.requests == []


def test_after_the_update_the_same_gateway_is_checked(gateway: StandIn, engine_run) -> None:
    engine_run(False)
    assert validate([resource(props(gateway))]) == []
    assert gateway.requests == [("/v1/models", f"Bearer {KEY}")]


def test_after_the_update_a_gateway_that_is_down_is_a_violation(engine_run) -> None:
    engine_run(False)
    url = f"http://127.0.0.1:{free_port()}"
    [(message, urn)] = validate([resource({"url": url, "declared_models": DECLARED, "master_key": KEY})])
    assert (urn, message.startswith(f"could not check the gateway at {url}: unreachable")) == (URN, True)


def test_preview_says_it_runs_after_deploy() -> None:
    with pytest.raises(_NotApplicableError) as raised:
        validate([resource({"url": None, "declared_models": None, "master_key": None})])
    assert raised.value.reason == AFTER_DEPLOY


def test_key_from_the_environment_when_the_output_is_absent(gateway: StandIn, monkeypatch) -> None:
    monkeypatch.setenv("FLEET_KEY", KEY)
    assert validate([resource(props(gateway, master_key=None))], {"keyEnv": "FLEET_KEY"}) == []


def test_stacks_without_a_gateway_are_not_applicable() -> None:
    other = resource(
        {}, "docker:index/container:Container", "urn:pulumi:prod::llmfleet::docker:index/container:Container::x"
    )
    with pytest.raises(_NotApplicableError) as raised:
        validate([other])
    assert raised.value.reason == "no llmfleet gateway in this stack"


def test_the_pack_is_mandatory_and_holds_the_validator(monkeypatch: pytest.MonkeyPatch) -> None:
    import pulumi_policy

    packs: list[dict] = []
    # The real PolicyPack starts the analyzer's gRPC server and blocks: record what it is given.
    monkeypatch.setattr(pulumi_policy, "PolicyPack", lambda **kwargs: packs.append(kwargs))
    monkeypatch.syspath_prepend(str(Path(__file__).parent.parent / "policy"))
    runpy.run_path(str(Path(__file__).parent.parent / "policy" / "__main__.py"), run_name="__main__")
    [pack] = packs
    [policy] = pack["policies"]
    assert (pack["name"], pack["enforcement_level"]) == ("llmfleet", pulumi_policy.EnforcementLevel.MANDATORY)
    assert (policy.name, policy.description.startswith("After each deploy")) == ("gateway-drift", True)
    assert policy.config_schema.properties["waitSeconds"]["default"] == 120


def test_no_key_anywhere_names_where_it_was_looked_for(gateway: StandIn, monkeypatch) -> None:
    monkeypatch.delenv("LITELLM_MASTER_KEY", raising=False)
    [(message, _)] = validate([resource(props(gateway, master_key=None))])
    assert message == (
        f"could not check the gateway at {gateway.url}: unauthorized: no master key: the gateway's master_key "
        "output (or the environment variable LITELLM_MASTER_KEY) is not set. A deploy whose gateway cannot be "
        "checked is not known to be in sync."
    )
    assert gateway.requests == []


def _chat_answers(failing: set[str]):
    def answer(body: dict):
        if body["model"] in failing:
            return json_route({"error": {"message": f"litellm.APIConnectionError: {body['model']} is down"}}, 500)
        return json_route({"choices": [{"message": {"content": "x"}}]})

    return answer


def test_after_the_list_is_in_sync_every_local_name_is_probed(gateway: StandIn) -> None:
    gateway.posts["/v1/chat/completions"] = _chat_answers(set())
    assert validate([resource(props(gateway, probe_models=["gemma-3-1b", "qwen2.5:0.5b"]))]) == []
    assert [p for p, _ in gateway.requests].count("/v1/chat/completions") == 2


def test_a_listed_name_that_does_not_answer_is_a_violation(gateway: StandIn) -> None:
    gateway.posts["/v1/chat/completions"] = _chat_answers({"gemma-3-1b"})
    [(message, urn)] = validate([resource(props(gateway, probe_models=["gemma-3-1b", "qwen2.5:0.5b"]))])
    assert urn == URN
    assert message == (
        f"the gateway at {gateway.url} lists every declared model, but not every one answers a request: "
        "gemma-3-1b: fails: HTTP 500: litellm.APIConnectionError: gemma-3-1b is down. "
        "Run `llmfleet probe --stack prod --backends` to see why."
    )


def test_the_probe_can_be_turned_off(gateway: StandIn) -> None:
    gateway.posts["/v1/chat/completions"] = _chat_answers({"gemma-3-1b"})
    assert validate([resource(props(gateway, probe_models=["gemma-3-1b"]))], {"probe": False}) == []
    assert "/v1/chat/completions" not in [p for p, _ in gateway.requests]


def test_the_config_defaults_and_the_numbers_the_engine_sends() -> None:
    assert read_config({}) == (PolicyConfig(120.0, 5.0, "LITELLM_MASTER_KEY", True), [])
    # The engine hands every number over as a double (a protobuf Struct): 30 arrives as 30.0.
    assert read_config({"waitSeconds": 30.0, "timeoutSeconds": 2, "probe": False, "keyEnv": "K"}) == (
        PolicyConfig(30.0, 2.0, "K", False), [])  # fmt: skip


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"probe": "false"}, "the policy config's `probe` is the text \"false\", not true or false: write "
         "\"probe\": true (JSON: no quotes around a number or a boolean) in the file given to --policy-pack-config"),
        ({"probe": 0}, "the policy config's `probe` is the number 0, not true or false: write \"probe\": true"),
        ({"waitSeconds": True}, "the policy config's `waitSeconds` is the boolean true, not a whole number: write "
         "\"waitSeconds\": 120"),
        ({"waitSeconds": "120"}, "the policy config's `waitSeconds` is the text \"120\", not a whole number"),
        ({"waitSeconds": 1.5}, "the policy config's `waitSeconds` is the number 1.5, not a whole number"),
        ({"waitSeconds": -1}, "the policy config's `waitSeconds` is the number -1, not a number at least 0"),
        ({"timeoutSeconds": 0}, "the policy config's `timeoutSeconds` is the number 0, not a number greater than 0"),
        ({"timeoutSeconds": float("inf")}, "the policy config's `timeoutSeconds` is the number inf, not a number"),
        ({"timeoutSeconds": None}, "the policy config's `timeoutSeconds` is null, not a number"),
        ({"keyEnv": ""}, "the policy config's `keyEnv` is the text \"\", not the name of an environment variable"),
    ],
)  # fmt: skip
def test_a_config_value_of_the_wrong_type_is_a_violation_not_a_default(
    gateway: StandIn, config: dict, problem: str
) -> None:
    # Before, `probe: "false"` was truthy (probed anyway) and `waitSeconds: true` waited 1 s.
    assert read_config(config)[0] is None
    [(message, urn)] = validate([resource(props(gateway))], config)
    assert message.startswith(problem) and urn is None, message
    assert gateway.requests == []  # nothing is checked with a config not as written


def test_a_kubernetes_gateway_is_reached_through_its_cluster_and_an_unreachable_one_is_a_violation(
    tmp_path: Path,
) -> None:
    """A Kubernetes gateway not exposed outside its cluster carries how to reach it (`reach`); the
    forward itself runs against the real API server in tests/test_kubernetes_checks_real.py."""
    reach = {"kubeconfig": str(tmp_path / "absent"), "context": "gpu-cluster", "namespace": "llm",
             "service": "gateway", "port": 4000.0}  # fmt: skip
    in_cluster = {"url": "http://gateway.llm.svc:4000", "declared_models": DECLARED, "master_key": KEY, "reach": reach}
    [(message, urn)] = validate([resource(in_cluster)])
    assert urn == URN
    assert message.startswith("could not reach the gateway through the Kubernetes API server: ")
    assert "absent" in message and "gpu-cluster" in message, message
