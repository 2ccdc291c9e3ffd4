"""Benchmark: `probe` of 100 declared names through a gateway whose backends answer after 50 ms.

    .venv/bin/python bench/probe.py

The gateway is a loopback stand-in that answers each chat completion after 50 ms, as it would with
a backend taking that long: this measures the probe itself (one client, every name at once, one
deadline), not LiteLLM's own overhead. Target (issue #10): under 0.5 s (serially it would be 5 s).
Exits 1 if missed. Everything listens on 127.0.0.1 and stops when the benchmark ends.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from llmfleet import Limits, ProbeTarget, probe_declared
from tests.standins import json_route, standins

NAMES = 100
DELAY_S = 0.05
TARGET_S = 0.5


def main(repeat: int = 15) -> int:
    targets = [ProbeTarget(f"m{i}", "model", f"m{i}", (f"p{i}",), external=False) for i in range(NAMES)]
    answer = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": "length"}]}
    with standins(1) as (gateway,):
        gateway.posts["/v1/chat/completions"] = lambda body: json_route(answer, delay=DELAY_S)
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            report = asyncio.run(
                probe_declared(gateway.url, "sk-bench", targets, limits=Limits(timeout=5, deadline=10))
            )
            times.append(time.perf_counter() - started)
            assert report.exit_code == 0 and len(report.checks) == NAMES, report.summary
    median = statistics.median(times)
    print(f"probe of {NAMES} names, gateway answering after {DELAY_S * 1000:.0f} ms: median {median:.3f} s, "
          f"min {min(times):.3f} s over {repeat} runs")  # fmt: skip
    print(f"target < {TARGET_S} s; serially it would be {NAMES * DELAY_S:.1f} s")
    return 0 if median < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
