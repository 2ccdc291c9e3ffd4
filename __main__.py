"""The Pulumi program: load the stack's catalog and placement, create the components, export."""

from pathlib import Path

import pulumi

from components import FleetSecrets, deploy_fleet, missing_api_keys, required_api_keys
from llmfleet import ConfigError, load_fleet
from llmfleet._stack import set_secret_command

PROJECT_DIR = Path(__file__).resolve().parent
STACK = pulumi.get_stack()

try:
    fleet = load_fleet(PROJECT_DIR, STACK)
except ConfigError as exc:
    raise pulumi.RunError(f"{exc}\nSee: llmfleet validate --stack {STACK}") from None
for warning in fleet.warnings:
    pulumi.log.warn(warning.format())

# Secrets are read here, not checked: a missing one stops the program with our own hint (the
# value read from the terminal, an API key set by --path), never Pulumi's `require_*` hint, whose
# `pulumi config set --secret llmfleet:apiKeys <value>` writes the whole map as one secret.
config = pulumi.Config("llmfleet")
needed = required_api_keys(fleet)
missing_api_keys(pulumi.runtime.get_config("llmfleet:apiKeys"), needed, STACK)  # before anything is created
api_keys = config.get_secret_object("apiKeys") if needed else None
master_key = config.get_secret("masterKey")
if master_key is None:
    raise pulumi.RunError(
        f"stack '{STACK}': no gateway master key (llmfleet:masterKey). Run: "
        + set_secret_command("llmfleet:masterKey", STACK)
    )
secrets = FleetSecrets(
    master_key=master_key,
    hf_token=config.get_secret("hfToken"),
    api_keys={k: api_keys.apply(lambda keys, k=k: keys[k]) for k in needed} if api_keys else {},
)
deployed = deploy_fleet(fleet, secrets, PROJECT_DIR)

pulumi.export("gateway_url", deployed.gateway.url)
pulumi.export("declared_models", deployed.gateway.declared_models)
pulumi.export(
    "providers",
    {name: {"endpoint": deployed.endpoints[name], "served_names": server.served_names}
     for name, server in deployed.servers.items()},
)  # fmt: skip
pulumi.export("master_key", deployed.gateway.master_key)  # a secret output: `pulumi stack output --show-secrets`
