"""The llmfleet policy pack: `pulumi up --policy-pack policy`. Only assembles the pack:
constructing PolicyPack starts the analyzer server, so the validator lives in gateway_drift.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the llmfleet library beside it

from gateway_drift import CONFIG_SCHEMA, DESCRIPTION, NAME, validate_gateway_drift
from pulumi_policy import EnforcementLevel, PolicyConfigSchema, PolicyPack, StackValidationPolicy

PolicyPack(
    name="llmfleet",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        StackValidationPolicy(
            name=NAME,
            description=DESCRIPTION,
            validate=validate_gateway_drift,
            config_schema=PolicyConfigSchema(properties=CONFIG_SCHEMA),
        )
    ],
)
