"""The post-deploy drift policy: after `pulumi up`, the live gateway's GET /v1/models must list
exactly the declared set.

Stack policies are analysed in every preview too, the preview phase of an interactive `pulumi up`
included (pulumi-policy's `TestUnknownValues`), and our gateway's outputs come from config, so they
are *known* there: checking then would poll the old gateway against the new declaration and abort
the update. pulumi-policy configures the runtime's dry-run flag from the engine's PULUMI_DRY_RUN
(policy.py `_configure_runtime_settings`), so in a dry run the policy is not applicable at once,
without a request.

Plain functions: tests call `validate_gateway_drift` with StackValidationArgs built by hand.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi.runtime
from pulumi_policy.proxy import UnknownValueError

from llmfleet import CertificatesError, Limits, ProbeTarget, Report, check_declared, probe_declared
from llmfleet._kube import KubeError, forwarded, load_kubeconfig
from llmfleet._wording import count

GATEWAY_TYPE = "llmfleet:index:Gateway"
NAME = "gateway-drift"
DESCRIPTION = (
    "After each deploy, the live LiteLLM gateway's GET /v1/models must list exactly the model names "
    "declared in the catalog (served names, load-balanced groups and visible aliases)."
)
# How long to poll for the gateway to come in sync after an update, and per request.
CONFIG_SCHEMA = {
    "waitSeconds": {"type": "integer", "default": 120, "minimum": 0},
    "timeoutSeconds": {"type": "number", "default": 5, "exclusiveMinimum": 0},
    "keyEnv": {"type": "string", "default": "LITELLM_MASTER_KEY"},
    # Once the list is in sync, send one tiny chat completion for every locally served name.
    "probe": {"type": "boolean", "default": True},
}

# Pulumi hands the policy config over as a protobuf Struct, where every number is a double (120
# arrives as 120.0): a whole number is any integral number here, as in JSON Schema's "integer".
_EXAMPLES = {"waitSeconds": "120", "timeoutSeconds": "5", "keyEnv": '"LITELLM_MASTER_KEY"', "probe": "true"}


@dataclass(frozen=True)
class PolicyConfig:
    wait_seconds: float
    timeout_seconds: float
    key_env: str
    probe: bool


def read_config(config: Mapping[str, Any]) -> tuple[PolicyConfig | None, list[str]]:
    """The policy's config, each value of the type its schema says and never coerced (the text
    "false" is not false, `true` is not the number 1), or the problems with it. The engine checks
    the schema too; a pack run another way (a test, `initial_config`) is checked here."""
    problems: list[str] = []

    def value(key: str) -> Any:
        return config.get(key, CONFIG_SCHEMA[key]["default"])

    def refuse(key: str, what: str, wanted: str) -> None:
        problems.append(
            f'the policy config\'s `{key}` is {what}, not {wanted}: write "{key}": {_EXAMPLES[key]} (JSON: no '
            "quotes around a number or a boolean) in the file given to --policy-pack-config"
        )

    def number(key: str, whole: bool) -> float:
        got = value(key)
        wanted = "a whole number" if whole else "a number"
        if isinstance(got, bool) or not isinstance(got, int | float):
            refuse(key, _shown(got), wanted)
        elif not math.isfinite(got) or (whole and not float(got).is_integer()):
            refuse(key, f"the number {got}", wanted)
        elif got < 0 or (got == 0 and "exclusiveMinimum" in CONFIG_SCHEMA[key]):
            least = "greater than 0" if "exclusiveMinimum" in CONFIG_SCHEMA[key] else "at least 0"
            refuse(key, f"the number {got}", f"a number {least}")
        else:
            return float(got)
        return 0.0

    wait, timeout = number("waitSeconds", whole=True), number("timeoutSeconds", whole=False)
    key_env, probe = value("keyEnv"), value("probe")
    if not isinstance(key_env, str) or not key_env:
        refuse("keyEnv", _shown(key_env), "the name of an environment variable")
    if not isinstance(probe, bool):
        refuse("probe", _shown(probe), "true or false")
    if problems:
        return None, problems
    return PolicyConfig(wait, timeout, key_env, probe), []


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the text {json.dumps(value)}"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return f"the number {value}"
    return f"a {'list' if isinstance(value, Sequence) else 'map'}"


AFTER_DEPLOY = "will run after deploy: the gateway's URL and declared models are not known in a preview"
IN_PREVIEW = "will run after deploy: a preview has not changed the live gateway yet"

ReportViolation = Callable[..., None]


def _known_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def violation_message(report: Report) -> str:
    gateway = report.gateway
    where = f"the gateway at {report.gateway_url}"
    if report.exit_code == 2:
        parts = []
        if gateway.missing:
            parts.append(f"missing (declared, not listed): {', '.join(gateway.missing)}")
        if gateway.undeclared:
            parts.append(f"not declared (listed): {', '.join(gateway.undeclared)}")
        stack = report.stack or "<stack>"
        return (
            f"{where} does not serve the declared models after {count(report.attempts, 'check')}: "
            f"{'; '.join(parts)}. "
            f"Run `llmfleet drift --stack {stack} --backends` to see why."
        )
    return (f"could not check {where}: {gateway.verdict.value}: {gateway.detail}. A deploy whose gateway cannot "
            "be checked is not known to be in sync.")  # fmt: skip


def validate_gateway_drift(
    args: Any, report_violation: ReportViolation, *, transport: Any = None
) -> Awaitable[None] | None:
    """The stack validation. Returns an awaitable (pulumi-policy awaits it) doing the live check."""
    if pulumi.runtime.is_dry_run():
        args.not_applicable(IN_PREVIEW)
    gateways = [r for r in args.resources if r.resource_type == GATEWAY_TYPE]
    if not gateways:
        args.not_applicable("no llmfleet gateway in this stack")
    config, problems = read_config(args.get_config())
    if config is None:
        for problem in problems:
            report_violation(problem)  # a check that cannot be set up as asked is not a pass
        return None
    checks = []
    for gateway in gateways:
        try:
            url = _known_str(gateway.props.get("url"))
            key = _known_str(gateway.props.get("master_key"))
        except UnknownValueError:
            url = key = None
        declared = _known_names(gateway.props, "declared_models")
        if url is None or declared is None:
            args.not_applicable(AFTER_DEPLOY)
        key_env = config.key_env
        source = f"the gateway's master_key output (or the environment variable {key_env})"
        probed = (_known_names(gateway.props, "probe_models") or []) if config.probe else []
        checks.append((gateway, url, declared, key or os.environ.get(key_env), source, probed, _reach(gateway.props)))

    async def run() -> None:
        for gateway, url, declared, key, source, probed, reach in checks:
            with contextlib.ExitStack() as forwards:
                if reach:  # a Kubernetes gateway not exposed outside its cluster: through the API server
                    try:
                        access = load_kubeconfig(reach["kubeconfig"], reach["context"])
                        forward = forwarded(access, reach["namespace"], reach["service"], int(reach["port"]))
                        url = str(forwards.enter_context(forward))
                    except KubeError as exc:
                        report_violation(f"could not reach the gateway through the Kubernetes API server: {exc}",
                                         gateway.urn)  # fmt: skip
                        continue
                await check_one(gateway, url, declared, key, source, probed)

    async def check_one(gateway: Any, url: str, declared: list[str], key: str | None, source: str,
                        probed: list[str]) -> None:  # fmt: skip
        limits = Limits(timeout=config.timeout_seconds)
        wait = config.wait_seconds
        started = time.monotonic()
        try:
            report = await check_declared(url, key, declared, stack=_stack_of(gateway.urn), wait=wait,
                                          limits=limits, transport=transport, key_source=source)  # fmt: skip
        except CertificatesError as exc:
            report_violation(f"could not check the gateway at {url}: {exc}", gateway.urn)
            return
        if report.exit_code != 0:
            report_violation(violation_message(report), gateway.urn)
            return
        if probed:  # listed is not enough: each local name must answer, within what is left of the wait
            budget = max(10.0, wait - (time.monotonic() - started))
            targets = [ProbeTarget(n, "model", n, (), external=False) for n in probed]
            probe_limits = Limits(timeout=budget, retries=1, deadline=budget)
            probed_report = await probe_declared(url, key, targets, stack=report.stack, limits=probe_limits,
                                                 transport=transport)  # fmt: skip
            if probed_report.exit_code != 0:
                report_violation(probe_violation(probed_report), gateway.urn)

    return run()


def _reach(props: Any) -> dict[str, str] | None:
    """How to reach a Kubernetes gateway through the API server (its `reach` output: kubeconfig,
    context, namespace, service, port), or None: a Docker gateway, or one with an external URL."""
    try:
        reach = props.get("reach")
        if not isinstance(reach, Mapping) or not reach:
            return None
        # Numbers arrive as doubles (4000.0), as the policy config's do.
        return {**{k: str(reach[k]) for k in ("kubeconfig", "context", "namespace", "service")},
                "port": str(int(reach["port"]))}  # fmt: skip
    except (UnknownValueError, KeyError, TypeError, ValueError):
        return None


def _known_names(props: Any, key: str) -> list[str] | None:
    """A list of names from the props, or None while it (or any name in it) is unknown. The engine
    hands lists over as pulumi-policy's Sequence proxy, never as a `list`, and an unknown element
    raises only when it is read."""
    try:
        names = props.get(key)
        if not isinstance(names, Sequence) or isinstance(names, str):
            return None
        names = list(names)
    except UnknownValueError:
        return None
    return names if all(isinstance(n, str) for n in names) else None


def probe_violation(report: Report) -> str:
    bad = [c for c in report.checks if c.verdict.failing or c.verdict.could_not_check]
    parts = "; ".join(f"{c.target}: {c.verdict.value}: {c.detail}" for c in bad)
    return (
        f"the gateway at {report.gateway_url} lists every declared model, but not every one answers a request: "
        f"{parts}. Run `llmfleet probe --stack {report.stack or '<stack>'} --backends` to see why."
    )


def _stack_of(urn: str) -> str:
    # urn:pulumi:<stack>::<project>::<type>::<name>
    parts = urn.split(":", 2)
    return parts[2].split("::", 1)[0] if len(parts) == 3 else ""
