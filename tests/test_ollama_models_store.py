"""`llmfleet:providers.<name>.ollama_models`: an existing Ollama models store (a host directory or a
named volume) mounted instead of a new volume, so a fleet moved to llmfleet does not download its
models again; llmfleet neither creates nor deletes it, nor removes a model from it. Checked in the
stack, then under the SDK's mocks."""

from __future__ import annotations

from pathlib import Path

import pytest

import llmfleet
from components import FleetSecrets, deploy_fleet

from .fleetdir import BASE_STACK, problems_of, short, write_project
from .pulumi_program import run_program

CATALOG = """\
providers:
  ollama: {kind: ollama, models: ["llama3.1:latest", "qwen2.5-coder:7b"]}
  native: {kind: llama_cpp, hf: org/repo, alias: native}
"""
CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"


def deploy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, placement: str):
    stack = BASE_STACK + f"  llmfleet:providers:\n    ollama: {placement}\n"
    fleet = llmfleet.load_fleet(write_project(tmp_path, CATALOG, stack), "test")
    return run_program("test", {}, [], program=lambda: deploy_fleet(fleet, FleetSecrets("sk-x-123456"), tmp_path),
                       monkeypatch=monkeypatch)  # fmt: skip


def model_requests(run) -> list:
    return [run.request("pulumi-python:dynamic:Resource", r.name) for r in run.ollama_models()]


def test_by_default_llmfleet_creates_the_volume_and_owns_the_models(tmp_path: Path, monkeypatch) -> None:
    run = deploy(tmp_path, monkeypatch, "{}")
    assert run.one(VOLUME, "ollama-models").inputs["name"] == "llmfleet-test-ollama-models"
    assert run.request(VOLUME, "ollama-models").retain_on_delete  # kept on destroy, as before
    assert run.one(CONTAINER, "ollama-container").inputs["volumes"] == [
        {"containerPath": "/root/.ollama", "volumeName": "llmfleet-test-ollama-models"}
    ]
    assert [r.retain_on_delete for r in model_requests(run)] == [False, False]  # removed from the catalog: ollama rm


def test_an_existing_host_directory_is_mounted_and_nothing_is_created(tmp_path: Path, monkeypatch) -> None:
    run = deploy(tmp_path, monkeypatch, "{ollama_models: /usr/share/ollama/.ollama}")
    assert run.one(CONTAINER, "ollama-container").inputs["volumes"] == [
        {"containerPath": "/root/.ollama", "hostPath": "/usr/share/ollama/.ollama"}
    ]
    assert [r.name for r in run.of_type(VOLUME) if r.name.startswith("ollama")] == []
    # Neither destroy nor a model dropped from the catalog runs `ollama rm` in a store that is not ours.
    assert [r.retain_on_delete for r in model_requests(run)] == [True, True]


def test_an_existing_volume_is_read_not_managed_so_destroy_cannot_delete_it(tmp_path: Path, monkeypatch) -> None:
    run = deploy(tmp_path, monkeypatch, "{ollama_models: {volume: ollama}}")
    assert run.one(CONTAINER, "ollama-container").inputs["volumes"] == [
        {"containerPath": "/root/.ollama", "volumeName": "ollama"}
    ]
    # Read (Volume.get): the engine has no resource of ours to delete, and the `up` fails on a
    # volume that does not exist instead of Docker creating an empty one.
    read = run.one(VOLUME, "ollama-models")
    assert (VOLUME, "ollama-models") not in run.requests
    assert read.inputs == {}  # a read sends only the id
    urns = run.request(CONTAINER, "ollama-container").dependencies
    assert any(u.endswith("::ollama-models") for u in urns)  # the container waits for the read
    assert [r.retain_on_delete for r in model_requests(run)] == [True, True]
    # The models are still pulled into it: `ollama pull` of a model already there downloads nothing.
    assert sorted(r.inputs["tag"] for r in run.ollama_models()) == ["llama3.1:latest", "qwen2.5-coder:7b"]


@pytest.mark.parametrize(
    ("placement", "expected"),
    [
        ("native: {ollama_models: /srv/ollama}",
         "14:14 error ollama-models | config['llmfleet:providers'].native.ollama_models: 'native' is not an Ollama "
         "provider: only Ollama keeps a models store. Remove this key."),
        ("ollama: {ollama_models: /usr/share/ollama/.ollama/models/}",
         "14:14 warning ollama-models | config['llmfleet:providers'].ollama.ollama_models: "
         "'/usr/share/ollama/.ollama/models/' looks like Ollama's models/ directory itself; it is mounted at "
         "/root/.ollama, where Ollama looks for models/ inside it. Give the directory that holds models/: "
         "/usr/share/ollama/.ollama"),
    ],
)  # fmt: skip
def test_the_stack_checks_the_store(tmp_path: Path, placement: str, expected: str) -> None:
    write_project(tmp_path, CATALOG, BASE_STACK + f"  llmfleet:providers:\n    {placement}\n")
    assert [short(p) for p in problems_of(tmp_path)] == [expected]


@pytest.mark.parametrize("bad", ["relative/dir", "{volume: -x}", "{volume: a, extra: 1}", "5", "[/a]"])
def test_a_store_that_is_neither_an_absolute_directory_nor_a_volume_is_an_error(tmp_path: Path, bad: str) -> None:
    write_project(tmp_path, CATALOG, BASE_STACK + f"  llmfleet:providers:\n    ollama: {{ollama_models: {bad}}}\n")
    [problem] = problems_of(tmp_path)  # one problem, from the shape the value has (not one per shape)
    assert problem.severity == "error" and "ollama_models" in llmfleet.format_key_path(problem.path)
