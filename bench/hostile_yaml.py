"""Benchmark: how fast, and in how little memory, `validate` refuses YAML written to hurt.

    .venv/bin/python bench/hostile_yaml.py

Each case runs the real load (read from disk, parse, index, validate) in a fresh process, and
reports wall time and the process's peak resident memory. Targets (issue #8): every case refused
with a located error in under 2 s and under 100 MB peak RSS. Before the bounds, a 7-level alias
bomb took 12 s and 1.5 GB, and 995 levels of nesting crashed with a RecursionError.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fleetdir import write_project
from tests.test_hostile_input import alias_bomb

TIME_S, RSS_MB = 2.0, 100

# Runs in the child: load the stack, print what came back, the time it took and the peak RSS.
CHILD = """
import json, resource, sys, time
import llmfleet
started = time.perf_counter()
try:
    llmfleet.load_fleet(sys.argv[1], "test")
    found = []
except llmfleet.ConfigError as exc:
    found = [p.rule for p in exc.problems]
elapsed = time.perf_counter() - started
print(json.dumps({"rules": found, "s": elapsed, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

CASES = {
    "alias bomb, 7 levels (4.8 million values)": alias_bomb(7),
    "alias bomb, 9 levels (387 million values)": alias_bomb(9),
    "alias bomb, 12 levels (282 billion values)": alias_bomb(12),
    "nesting, 999 levels": "providers: " + "[" * 999 + "]" * 999 + "\n",
    "nesting through 5,000 chained aliases": "\n".join(
        ["a0: &a0 [x]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, 5000)]
    )
    + "\n",
    "merge keys doubling 40 times": "\n".join(
        ["m0: &m0 {a: 1, b: 2}"] + [f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], k{i}: 1}}" for i in range(1, 40)]
    )
    + "\n",
}


def main() -> int:
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        valid = write_project(Path(tmp) / "baseline", "providers: {o: {kind: ollama, models: [m]}}\n")
        baseline = json.loads(_run(valid))  # the time includes importing pydantic, as every case's does
        print(f"{'baseline: a valid one-provider catalog':48} {baseline['s']:6.3f} s {baseline['rss_mb']:6.0f} MB")
        for i, (name, text) in enumerate(CASES.items()):
            result = json.loads(_run(write_project(Path(tmp) / str(i), text)))
            good = bool(result["rules"]) and result["s"] < TIME_S and result["rss_mb"] < RSS_MB
            ok &= good
            print(f"{name:48} {result['s']:6.3f} s {result['rss_mb']:6.0f} MB  {','.join(sorted(set(result['rules'])))}"
                  f"  -> {'PASS' if good else 'FAIL'}")  # fmt: skip
    print(f"hostile YAML: every case refused in under {TIME_S:g} s and {RSS_MB} MB -> {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


def _run(project: Path) -> str:
    done = subprocess.run([sys.executable, "-c", CHILD, str(project)], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"the load crashed:\n{done.stderr}")
    return done.stdout


if __name__ == "__main__":
    sys.exit(main())
