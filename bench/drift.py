"""Benchmark: the drift check against 100 stand-in backends that each answer after 50 ms, plus
the gateway; and the start-up of `python -m llmfleet drift --help`.

    .venv/bin/python bench/drift.py

Targets (issue #4): the whole check under 0.5 s (concurrency, not 100 x 50 ms); `--help` under
0.3 s (the drift path imports neither pulumi nor litellm). Exits 1 if either is missed.
Everything listens on 127.0.0.1 and stops when the benchmark ends.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import llmfleet
from tests.standins import json_route, ollama_tags, openai_models, standins

BACKENDS = 100
DELAY_S = 0.05


def project(root: Path, ports: list[int]) -> Path:
    providers, placement = {}, {}
    for i, port in enumerate(ports):
        if i % 2:
            providers[f"o{i}"] = {"kind": "ollama", "port": port, "models": [f"m{i}:7b"]}
        else:
            providers[f"v{i}"] = {"kind": "vllm", "port": port, "model": f"org/m{i}", "served_name": f"v{i}",
                                  "gpus": [i]}  # fmt: skip
        placement[f"{'o' if i % 2 else 'v'}{i}"] = {"publish": True}
    (root / "config").mkdir()
    (root / "stacks").mkdir()
    (root / "config" / "catalog.yaml").write_text(json.dumps({"providers": providers}))
    stack = {"config": {"llmfleet:catalog": "config/catalog.yaml", "llmfleet:providers": placement,
                        "llmfleet:images": {"ollama": "ollama/ollama:0.14.1", "vllm": "vllm/vllm-openai:v0.18.0"},
                        "llmfleet:masterKey": {"secure": "v1:x"}}}  # fmt: skip
    (root / "stacks" / "Pulumi.bench.yaml").write_text(json.dumps(stack))
    return root


def bench_check(repeat: int) -> tuple[float, int]:
    with standins(BACKENDS + 1) as servers, tempfile.TemporaryDirectory() as tmp:
        gateway, backends = servers[0], servers[1:]
        fleet = llmfleet.load_fleet(project(Path(tmp), [s.port for s in backends]), "bench")
        gateway.routes["/v1/models"] = json_route(openai_models(llmfleet.declared_models(fleet.catalog)), delay=DELAY_S)
        for i, server in enumerate(backends):
            if i % 2:
                server.routes["/api/tags"] = json_route(ollama_tags([f"m{i}:7b"]), delay=DELAY_S)
            else:
                server.routes["/v1/models"] = json_route(openai_models([f"v{i}"]), delay=DELAY_S)
        times = []
        for _ in range(repeat):
            report = asyncio.run(llmfleet.check_drift(fleet, gateway.url, "sk-bench", backends=True))
            assert report.exit_code == 0, llmfleet._drift_report.as_text(report)
            times.append(report.seconds)
        return statistics.median(times), len(report.checks)


def bench_help(repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "llmfleet", "drift", "--help"], check=True, capture_output=True,
                       cwd=Path(__file__).resolve().parent.parent)  # fmt: skip
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    import llmfleet._drift_report  # noqa: F401 - for the assertion message

    check_s, checks = bench_check(7)
    help_s = bench_help(7)
    ok_check, ok_help = check_s < 0.5, help_s < 0.3
    print(f"drift check, gateway + {BACKENDS} backends answering after {DELAY_S * 1000:.0f} ms ({checks} checks): "
          f"{check_s:.3f} s median of 7 (target < 0.5 s; serial would be {(BACKENDS + 1) * DELAY_S:.1f} s) "
          f"-> {'PASS' if ok_check else 'FAIL'}")  # fmt: skip
    print(f"python -m llmfleet drift --help: {help_s:.3f} s median of 7 (target < 0.3 s) -> "
          f"{'PASS' if ok_help else 'FAIL'}")  # fmt: skip
    return 0 if ok_check and ok_help else 1


if __name__ == "__main__":
    sys.exit(main())
