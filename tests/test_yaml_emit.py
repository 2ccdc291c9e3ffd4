"""The YAML emitter: PyYAML must read back exactly the data that went in."""

from __future__ import annotations

import pytest
import yaml

from llmfleet._yaml_emit import dump_yaml

HOSTILE = [
    "llama3.1:latest",
    "qwen2.5-coder:7b",
    "gpt-oss:20b-cloud",
    "glm-4.6:cloud",
    "os.environ/KEY",
    "http://host:11434",
    "http://10.0.0.11:8001/v1",
    "yes",
    "No",
    "on",
    "OFF",
    "true",
    "null",
    "~",
    "",
    " leading",
    "trailing ",
    "a: b",
    "a #b",
    "#x",
    "- x",
    "[x]",
    "{x}",
    "*x",
    "&x",
    "!x",
    "|",
    ">",
    "%x",
    "@x",
    "`x",
    "'x'",
    '"x"',
    "1",
    "1.5",
    "1e3",
    "0x1F",
    "0o17",
    ".inf",
    "-.nan",
    "1_000",
    "12:30",
    "2026-11-26",
    "line\nbreak",
    "tab\tx",
    "back\\slash",
    "ünïcode",
    "emoji 🦙",
    "x:",
    ":x",
    "x:y:z",
    "a/b",
    "=",
    "<<",
    "?x",
    "model@provider",
    "llama3.1:latest@ollama",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_strings_round_trip_as_keys_and_values(text: str) -> None:
    data = {"v": text, text or "empty-key": [text, {"k": text}], "n": {text: text}}
    assert yaml.safe_load(dump_yaml(data)) == data


def test_nested_shapes_round_trip() -> None:
    data = {
        "model_list": [
            {"model_name": "a", "litellm_params": {"model": "openai/a", "weight": 0.7}, "model_info": {"id": "a@p"}},
            {"model_name": "b", "litellm_params": {"model": "x", "stream": False, "n": None, "k": 3}},
        ],
        "router_settings": {
            "fallbacks": [{"a": ["b", "c"]}],
            "model_group_alias": {"c": {"model": "a", "hidden": True}},
        },
        "empty": {"list": [], "dict": {}, "nested": [[], {}, ["x", ["y"]]]},
        "numbers": [0, -1, 1.0, 1e-09, 2.5e20, float("inf"), -float("inf"), 4096, True],
    }
    assert yaml.safe_load(dump_yaml(data)) == data


def test_plain_names_stay_readable() -> None:
    assert dump_yaml({"model_list": [{"model_name": "llama3.1:latest", "weight": 0.3}]}) == (
        "model_list:\n- model_name: llama3.1:latest\n  weight: 0.3\n"
    )
