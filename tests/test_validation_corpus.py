"""Each broken catalog under tests/broken_catalogs/ states, in `# expect:` lines above its YAML,
exactly which problems it must produce: position, severity, rule, key path, message and hint.
`# stack:` lines, if any, are added to the base stack's `config:` (indented by two spaces)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .fleetdir import BASE_STACK, problems_of, short, write_project

CORPUS = sorted((Path(__file__).parent / "broken_catalogs").glob("*.yaml"))


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_broken_catalog_reports_exactly_what_it_expects(path: Path, tmp_path: Path) -> None:
    text = path.read_text()
    expected = [line.removeprefix("# expect: ") for line in text.splitlines() if line.startswith("# expect: ")]
    assert expected, f"{path.name} states no expectations"
    stack = "".join(
        f"  {line.removeprefix('# stack: ')}\n" for line in text.splitlines() if line.startswith("# stack: ")
    )
    write_project(tmp_path, text, BASE_STACK + stack)
    assert [short(p) for p in problems_of(tmp_path)] == expected


def test_corpus_covers_every_rule_the_issue_names() -> None:
    rules = {line.split()[4] for p in CORPUS for line in p.read_text().splitlines() if line.startswith("# expect:")}
    wanted = {
        "yaml-syntax",
        "schema-extra-forbidden",
        "duplicate-key",
        "duplicate-model",
        "unknown-model",
        "provider-not-model",
        "fallback-cycle",
        "wildcard-model",
        "port-conflict",
        "gpu-budget",
    }
    assert wanted <= rules


def test_errors_carry_the_catalog_file_name(tmp_path: Path) -> None:
    write_project(tmp_path, (Path(__file__).parent / "broken_catalogs" / "fallback_cycle.yaml").read_text())
    problem = problems_of(tmp_path)[0]
    assert problem.format() == (
        "config/catalog.yaml:11:9: error: routes.fallbacks.c[0]: cycle: a -> b -> c -> a. "
        "Break the cycle: a fallback chain must end. (fallback-cycle)"
    )
