"""Benchmark: validate + render + declared set on generated catalogs.

    .venv/bin/python bench/render.py            # 100 / 1,000 / 10,000 models

Targets (issue #2): 10,000 models across 1,000 providers in under 1 s on a 2-core machine,
and no worse than linear growth (10x the models: at most 12x the time). Exits 1 if missed.
The timed path is the real one the CLI takes: read both files from disk, parse YAML with
positions, validate with pydantic, run every cross-check, render YAML, compute the declared set.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import llmfleet
from tests.fleetdir import BASE_STACK, write_project

SIZES = [(100, 10), (1_000, 100), (10_000, 1_000)]  # (served models, providers)
KINDS = ["ollama", "vllm", "llama_cpp", "llama_cpp_python", "external"]


def generate(models: int, providers: int) -> dict:
    """A valid catalog: every kind, multi-model Ollama and external providers, routes on ~10% of models."""
    single = [i for i in range(providers) if KINDS[i % 5] in ("vllm", "llama_cpp", "llama_cpp_python")]
    multi = [i for i in range(providers) if i not in set(single)]
    per_multi, extra = divmod(models - len(single), len(multi))
    catalog: dict = {"providers": {}, "routes": {"fallbacks": {}, "aliases": {}, "groups": {}}}
    names: list[str] = []
    for i in range(providers):
        kind, name = KINDS[i % 5], f"p{i}"
        if kind == "ollama" or kind == "external":
            count = per_multi + (1 if multi.index(i) < extra else 0)
            tags = [f"m{i}-{j}:7b" for j in range(count)]
            names += tags
            if kind == "ollama":
                catalog["providers"][name] = {"kind": "ollama", "port": 10000 + i, "models": tags}
            else:
                catalog["providers"][name] = {
                    "kind": "external",
                    "api": "openai",
                    "base_url": f"https://api{i}.example.com/v1",
                    "api_key_env": f"KEY_{i}",
                    "models": tags,
                }
        elif kind == "vllm":
            names.append(f"v{i}")
            catalog["providers"][name] = {
                "kind": "vllm",
                "port": 10000 + i,
                "model": f"org/model-{i}",
                "served_name": f"v{i}",
                "max_model_len": 4096,
                "gpus": [i],  # vLLM's image needs a GPU: one each, so no GPU is over its budget
            }
        else:
            names.append(f"c{i}")
            catalog["providers"][name] = {
                "kind": kind,
                "port": 10000 + i,
                "gguf": f"/models/{i}.gguf",
                "alias": f"c{i}",
            }
    routes = catalog["routes"]
    for k in range(0, len(names) - 2, 10):  # chains point forward: no cycles
        routes["fallbacks"][names[k]] = [names[k + 1], names[k + 2]]
    for k in range(0, len(names), 100):
        routes["aliases"][f"alias-{k}"] = names[k]
    for k in range(0, providers - 5, 50):  # a load-balanced group over two single-model servers
        a, b = f"p{k + 1}", f"p{k + 2}"  # vllm and llama_cpp
        routes["groups"][f"group-{k}"] = [{"provider": a, "weight": 2}, {"provider": b, "weight": 1}]
    return catalog


def run_once(project: Path) -> tuple[float, int]:
    start = time.perf_counter()
    fleet = llmfleet.load_fleet(project, "bench")
    rendered = llmfleet.render_gateway_config(fleet)
    declared = llmfleet.declared_models(fleet.catalog)
    elapsed = time.perf_counter() - start
    assert rendered and declared
    return elapsed, len(declared)


def reference_growth(seconds: float) -> float:
    """Growth of a trivially linear workload (build and walk n small dicts) from 3,000 to 30,000
    items: what the memory hierarchy alone costs this machine across the same working-set sizes."""

    def work(n: int) -> int:
        table = {
            f"k{i}": {"name": f"m{i}", "params": {"model": f"x/{i}", "base": f"http://h:{i}/v1"}} for i in range(n)
        }
        return sum(len(v["params"]["base"]) for v in table.values())

    medians = []
    for n in (3_000, 30_000):
        times: list[float] = []
        while len(times) < 5 or sum(times) < seconds:
            start = time.perf_counter()
            work(n)
            times.append(time.perf_counter() - start)
        medians.append(statistics.median(times))
    return medians[1] / medians[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="sampling time per size (at least 5 runs)")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for models, providers in SIZES:
            project = Path(tmp) / f"n{models}"
            catalog = yaml.safe_dump(generate(models, providers), sort_keys=False)
            write_project(project, catalog, BASE_STACK, name="bench")
            # Same sampling time for every size: a fixed run count leaves the small, fast sizes
            # at the mercy of one scheduler hiccup, which swamps the growth ratio.
            times: list[float] = []
            while len(times) < 5 or sum(times) < args.seconds:
                elapsed, declared = run_once(project)
                times.append(elapsed)
            median = statistics.median(times)
            results.append((models, providers, median, declared))
            print(
                f"{models:>6} models {providers:>5} providers: {median * 1000:8.1f} ms "
                f"(median of {len(times)} runs; {declared} declared names)"
            )
    ok = True
    for (m1, _, t1, _), (m2, _, t2, _) in itertools.pairwise(results):
        ratio = t2 / t1
        print(f"  {m1} -> {m2} models: x{ratio:.1f} time (target at most x12)")
        ok &= ratio <= 12
    print(f"  reference: a trivially linear loop grows x{reference_growth(args.seconds):.1f} over the same sizes here")
    biggest = results[-1][2]
    print(f"10,000 models: {biggest:.3f} s (target under 1 s) -> {'PASS' if biggest < 1 and ok else 'FAIL'}")
    return 0 if biggest < 1 and ok else 1


if __name__ == "__main__":
    sys.exit(main())
