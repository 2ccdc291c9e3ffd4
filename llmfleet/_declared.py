"""The declared set: the names the live gateway's GET /v1/models must list.

Computed from the catalog alone, never from the rendered LiteLLM config, so that a bug in the
renderer (a dropped deployment, a wrong prefix LiteLLM silently discards) shows up as drift
instead of being agreed with.
"""

from __future__ import annotations

from ._catalog import Catalog


def declared_models(catalog: Catalog) -> list[str]:
    """Every served name, every load-balanced group, every alias not marked hidden; sorted."""
    names: set[str] = set()
    for provider in catalog.providers.values():
        names.update(provider.served_names)
    names.update(catalog.routes.groups)
    names.update(alias for alias, a in catalog.routes.alias_entries().items() if not a.hidden)
    return sorted(names)
