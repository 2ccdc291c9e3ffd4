"""Numbers in messages read as English: a count agrees with its noun, a duration has the
precision that matters at its size."""

from __future__ import annotations

import pytest

from llmfleet._wording import count, duration


@pytest.mark.parametrize(("n", "expected"), [(0, "0 attempts"), (1, "1 attempt"), (2, "2 attempts"), (3, "3 attempts")])
def test_a_count_agrees_with_its_noun(n: int, expected: str) -> None:
    assert count(n, "attempt") == expected


def test_an_irregular_plural_is_given() -> None:
    assert (count(1, "alias", "aliases"), count(2, "alias", "aliases")) == ("1 alias", "2 aliases")


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (6.54174, "6.5 s"),
        (5.0, "5 s"),
        (9.96, "10 s"),
        (60.4, "60 s"),
        (0.3, "0.3 s"),
        (0.25, "0.25 s"),
        (0.05, "0.05 s"),
        (0.00312, "0.0031 s"),
        (0.0, "0 s"),
        (1e-300, "1e-300 s"),
    ],
)
def test_a_duration_has_the_precision_that_matters(seconds: float, expected: str) -> None:
    assert duration(seconds) == expected


def test_a_config_error_counts_its_errors_in_english() -> None:
    from llmfleet import ConfigError, Problem

    one = Problem("c.yaml", 1, 1, (), "wrong", "rule-x")
    assert str(ConfigError([one])).startswith("1 error in the fleet configuration:\n")
    two = Problem("c.yaml", 2, 1, (), "wrong too", "rule-x")
    assert str(ConfigError([one, two])).startswith("2 errors in the fleet configuration:\n")
