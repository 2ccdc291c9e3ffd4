"""deploy_fleet under mocks: a provider's extra args and env reach its container as written, after
llmfleet's own; the secrets the catalog's gateway settings name reach the gateway, and only as
secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pulumi.runtime import rpc

import llmfleet
from components import FleetSecrets, deploy_fleet, required_api_keys

from .fleetdir import BASE_STACK, write_project
from .pulumi_program import plain_strings, run_program

CATALOG = """\
providers:
  ollama:
    kind: ollama
    models: [qwen2.5:0.5b]
    env: {OLLAMA_KEEP_ALIVE: 24h}
  vllm:
    kind: vllm
    model: Qwen/Qwen2.5-0.5B-Instruct
    served_name: qwen
    gpus: all
    args: [--enable-auto-tool-choice, --tool-call-parser, hermes]
    env: {VLLM_LOGGING_LEVEL: DEBUG}
    limits: {rpm: 60}
gateway:
  litellm_settings:
    success_callback: [s3]
    s3_callback_params: {s3_bucket_name: logs, s3_aws_secret_access_key: os.environ/AWS_SECRET_ACCESS_KEY}
"""
STACK = BASE_STACK.replace(
    "  llmfleet:masterKey:", "    AWS_SECRET_ACCESS_KEY: {secure: v1:EEEE}\n  llmfleet:masterKey:"
)
CONTAINER = "docker:index/container:Container"


def test_args_env_and_gateway_secrets_reach_the_containers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = llmfleet.load_fleet(write_project(tmp_path, CATALOG, STACK), "test")
    assert required_api_keys(fleet) == ["AWS_SECRET_ACCESS_KEY"]
    secrets = FleetSecrets(master_key="sk-x-123456", api_keys={"AWS_SECRET_ACCESS_KEY": "aws-secret-value"})
    run = run_program("test", {}, [], program=lambda: deploy_fleet(fleet, secrets, tmp_path), monkeypatch=monkeypatch)

    vllm = run.one(CONTAINER, "vllm-container").inputs
    assert vllm["command"][0] == "Qwen/Qwen2.5-0.5B-Instruct"
    assert vllm["command"][-3:] == ["--enable-auto-tool-choice", "--tool-call-parser", "hermes"]
    assert "VLLM_LOGGING_LEVEL=DEBUG" in vllm["envs"]
    assert "OLLAMA_KEEP_ALIVE=24h" in run.one(CONTAINER, "ollama-container").inputs["envs"]

    gateway = run.one(CONTAINER, "gateway-container").inputs
    config = yaml.safe_load(gateway["uploads"][0]["content"])
    assert config["litellm_settings"]["s3_callback_params"]["s3_aws_secret_access_key"] == (
        "os.environ/AWS_SECRET_ACCESS_KEY"
    )
    assert config["model_list"][1]["litellm_params"]["rpm"] == 60
    # The value reaches the gateway's environment, inside a secret only.
    envs = gateway["envs"]
    secret_envs = rpc.unwrap_rpc_secret(envs) if rpc.is_rpc_secret(envs) else None
    assert secret_envs is not None and "AWS_SECRET_ACCESS_KEY=aws-secret-value" in secret_envs
    for resource in run.resources:
        assert not [s for s in plain_strings(resource.inputs) if "aws-secret-value" in s]
