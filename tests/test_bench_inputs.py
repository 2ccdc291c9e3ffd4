"""The benchmarks time valid fleets: each one's generated project loads without an error (a new
check must not leave a benchmark timing the path that refuses its input), at a small size."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import yaml

import llmfleet

from .fleetdir import write_project

BENCH = Path(__file__).resolve().parent.parent / "bench"


def bench(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_render_benchmark_s_catalog_is_valid(tmp_path: Path) -> None:
    render = bench("render")
    write_project(tmp_path, yaml.safe_dump(render.generate(100, 10)), render.BASE_STACK)
    fleet = llmfleet.load_fleet(tmp_path, "test")
    assert len(llmfleet.declared_models(fleet.catalog)) >= 100


def test_the_program_benchmark_s_catalog_is_valid(tmp_path: Path) -> None:
    program = bench("program")
    placement = json.dumps({f"p{i}": {"host": "gpu-1"} for i in range(0, 20, 2)})
    write_project(tmp_path, yaml.safe_dump(program.catalog(20)), program.STACK.replace("PLACEMENT", placement))
    assert len(llmfleet.load_fleet(tmp_path, "test").catalog.providers) == 20


def test_the_drift_benchmark_s_project_is_valid(tmp_path: Path) -> None:
    drift = bench("drift")
    drift.project(tmp_path, [20000 + i for i in range(6)])
    assert len(llmfleet.load_fleet(tmp_path, "bench").catalog.providers) == 6
