"""Benchmark: requests failed while a catalog change replaces the gateway, against the baseline.

    .venv/bin/python bench/catalog_change.py [--replacements 2] [--rate 20]

Both runs use the real pieces on loopback (tests/rollout.py): real LiteLLM proxies, HAProxy from
Debian's package running the front proxy config llmfleet renders, a DNS stub playing Docker's
127.0.0.11, and a stand-in backend. The load generator opens a new connection per request.

- catalog change (now): the gateway replaced new-first behind the front proxy: start the new one,
  wait until its container health check passes, stop the old one gracefully (destroy_grace_seconds);
- the same catalog change on a busy host: a busy loop on every core from the first replacement to
  the end of the load (GPU hosts' CPUs are busy feeding the GPUs);
- baseline (before): one gateway with a fixed name and published port, replaced delete-first and
  stopped with pulumi-docker's default 0-second grace, then started again at the same address.

Target (issues #9, #16): 0 failed requests over at least two replacements at 20 requests/s or
more, on an idle host and with every core busy. The last line is:
`catalog change: failed requests X of N, with every core busy X of N (baseline in-place restart: Y of M); p99 Z s`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from components.servers.spec import STOP_GRACE_S
from tests.rollout import LoadResult, restart_in_place, roll


def describe(name: str, result: LoadResult) -> None:
    kinds = Counter(f.split(":")[0] for f in result.failures)
    why = ", ".join(f"{n} x {k}" for k, n in kinds.most_common()) or "none"
    print(f"{name}: {len(result.failures)} of {result.sent} failed ({why}); p99 {result.p99:.3f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replacements", type=int, default=2)
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rolled = roll(Path(tmp) / "roll", args.replacements, args.rate, STOP_GRACE_S["litellm"])
        describe(f"catalog change ({args.replacements} new-first replacements behind the front proxy)", rolled)
        busy = roll(Path(tmp) / "busy", args.replacements, args.rate, STOP_GRACE_S["litellm"], busy=True)
        describe(f"catalog change with a busy loop on each of {os.cpu_count()} cores", busy)
        baseline = restart_in_place(Path(tmp) / "baseline", args.replacements, args.rate)
        describe(f"baseline ({args.replacements} in-place restarts, delete-first, 0 s grace)", baseline)
    ok = not rolled.failures and not busy.failures and args.replacements >= 2 and args.rate >= 20
    print(f"target: 0 failed over >= 2 replacements at >= 20 requests/s, idle and busy -> {'PASS' if ok else 'FAIL'}")
    print(f"catalog change: failed requests {len(rolled.failures)} of {rolled.sent}, "
          f"with every core busy {len(busy.failures)} of {busy.sent} "
          f"(baseline in-place restart: {len(baseline.failures)} of {baseline.sent}); "
          f"p99 {rolled.p99:.2f} s, busy {busy.p99:.2f} s")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
