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
        # issue 21, escape hatches: what an extra argument, variable or LiteLLM setting may not do
        "derived-arg",
        "derived-env",
        "server-arg-form",
        "args-not-supported",
        "catalog-secret",
        "derived-setting",
        "unknown-setting",
        "setting-type",
        "unresolved-env",
    }
    assert wanted <= rules


def test_errors_carry_the_catalog_file_name(tmp_path: Path) -> None:
    write_project(tmp_path, (Path(__file__).parent / "broken_catalogs" / "fallback_cycle.yaml").read_text())
    problem = problems_of(tmp_path)[0]
    assert problem.format() == (
        "config/catalog.yaml:11:9: error: routes.fallbacks.c[0]: cycle: a -> b -> c -> a. "
        "Break the cycle: a fallback chain must end. (fallback-cycle)"
    )


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        ("    kind: ollama\n    model: qwen2.5:0.5b\n",  # the key at (4, 5)
         "4:5 error schema-extra-forbidden | providers.p.model: unknown key 'model'. Did you mean 'models'?"),
        ("    kind: external\n    api: openai\n    base_url: https://x.example/v1\n    model: [q]\n",
         "6:5 error schema-extra-forbidden | providers.p.model: unknown key 'model'. Did you mean 'models'?"),
        ("    kind: vllm\n    models: org/q\n    served_name: q\n    gpus: all\n",
         "4:5 error schema-extra-forbidden | providers.p.models: 'models' is not a key of a `kind: vllm` provider. "
         "Did you mean 'model'?"),
        ("    kind: llama_cpp\n    hf: org/repo\n    aliases: q\n",
         "5:5 error schema-extra-forbidden | providers.p.aliases: unknown key 'aliases'. Did you mean 'alias'?"),
    ],
)  # fmt: skip
def test_an_unknown_key_next_to_a_key_of_its_kind_is_called_a_typo(
    tmp_path: Path, provider: str, expected: str
) -> None:
    # `model` is a real key elsewhere (vLLM, aliases, groups): on an Ollama provider it is a typo of `models`.
    write_project(tmp_path, "providers:\n  p:\n" + provider)
    assert expected in [short(p) for p in problems_of(tmp_path)]
