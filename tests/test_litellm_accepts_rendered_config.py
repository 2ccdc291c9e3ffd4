"""The real LiteLLM proxy (1.108.7), started on what we render, lists exactly the declared set."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import llmfleet

from .litellm_proxy import listed_models, running_proxy, validate_config

PROJECT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.litellm


def expected_validate_count(catalog: llmfleet.Catalog) -> int:
    """What `litellm --validate_config` counts, from the catalog: every deployment, plus, for each
    visible alias, the deployments of the group it points to (verified on 1.108.7)."""
    per_group: dict[str, int] = {}
    grouped = {
        (m.provider, m.model or catalog.providers[m.provider].served_names[0])
        for members in catalog.routes.groups.values()
        for m in members
    }
    for pname, provider in catalog.providers.items():
        for name in provider.served_names:
            if (pname, name) in grouped and name in catalog.routes.groups:
                continue
            per_group[name] = per_group.get(name, 0) + 1
    for gname, members in catalog.routes.groups.items():
        per_group[gname] = per_group.get(gname, 0) + len(members)
    aliases = catalog.routes.alias_entries().values()
    return sum(per_group.values()) + sum(per_group[a.model] for a in aliases if not a.hidden)


@pytest.mark.parametrize("stack", llmfleet.stack_names(PROJECT))
def test_shipped_stack_is_served_exactly_as_declared(stack: str, tmp_path: Path) -> None:
    fleet = llmfleet.load_fleet(PROJECT, stack)
    rendered = llmfleet.render_gateway_config(fleet)
    with running_proxy(rendered, tmp_path) as url:
        assert listed_models(url) == llmfleet.declared_models(fleet.catalog)

    result = validate_config(rendered, tmp_path)
    assert result.returncode == 0, result.stderr
    counted = re.search(r"config OK \((\d+) models\)", result.stdout)
    assert counted, result.stdout
    assert int(counted.group(1)) == expected_validate_count(fleet.catalog)


def test_shipped_prod_stack_has_the_replaced_systems_12_models() -> None:
    fleet = llmfleet.load_fleet(PROJECT, "prod")
    served = {n for p in fleet.catalog.providers.values() for n in p.served_names}
    assert len(served) == 12
    assert set(fleet.catalog.routes.alias_entries()) == {
        "code",
        "chat",
        "reasoning",
        "creative",
        "analytical",
        "large_context",
    }
    assert {(m.provider, m.weight) for m in fleet.catalog.routes.groups["llama3.1:latest"]} == {
        ("ollama", 0.7),
        ("llama-cpp-python", 0.3),
    }
