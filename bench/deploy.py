"""Benchmark: wall times of a real deploy with the real Pulumi engine into a real Docker engine.

    .venv/bin/python bench/deploy.py [--rate 10]

The same pieces as tests/test_real_deploy.py: the CLI, language host and Docker provider built
from Go modules (tests/engine_build.py), a `dockerd` of its own (tests/docker_engine.py), the
locally built images (tests/images.py, built first and not timed), the whole fleet of
tests/real_deploy.py. Timed: `pulumi preview --policy-pack policy` before anything exists, the
first `pulumi up --policy-pack policy` (images cached), the catalog change (one more Ollama model
and one more alias) under a steady chat load through the front proxy, and `pulumi destroy`.

The last line is:
`deploy: preview P s, up U s, change C s (failed requests F of N), destroy D s; policy passed; leftovers L`
(L: the stack's containers and networks left after destroy).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import engine_build
from tests.docker_engine import running_engine
from tests.images import ensure_images
from tests.real_deploy import new_fleet
from tests.rollout import Load


def timed(step, *args: str) -> float:
    started = time.monotonic()
    done = step(*args)
    if done.returncode != 0:
        raise SystemExit(f"deploy: `pulumi {' '.join(args)}` failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=10.0, help="chat requests per second during the change")
    args = parser.parse_args()
    engine_bin = engine_build.ensure_built()
    with running_engine(air_gapped=False) as builder:
        images = ensure_images(builder)
    with running_engine() as docker, tempfile.TemporaryDirectory(prefix="llmfleet-bench-deploy-") as work:
        fleet = new_fleet(Path(work), engine_bin, docker, images)
        project = fleet.project
        try:
            preview = timed(project.pulumi, "preview", "--policy-pack", "policy")
            up = timed(project.pulumi, "up", "--yes", "--policy-pack", "policy")  # fails on a violation
            fleet.write(second_model=True)
            with Load(fleet.url, "tiny-vllm", rate=args.rate) as load:
                time.sleep(3)
                change = timed(project.pulumi, "up", "--yes", "--policy-pack", "policy")
                time.sleep(3)
            destroy = timed(project.pulumi, "destroy", "--yes")
        finally:
            leftovers = project.leftovers()
            if leftovers:
                project.pulumi("destroy", "--yes", "--skip-preview")
    failed, sent = len(load.result.failures), load.result.sent
    for failure in load.result.failures[:5]:
        print(f"failed request: {failure}")
    print(f"deploy: preview {preview:.1f} s, up {up:.1f} s, change {change:.1f} s "
          f"(failed requests {failed} of {sent}), destroy {destroy:.1f} s; "
          f"policy passed; leftovers {len(leftovers)}")  # fmt: skip
    return 0 if failed == 0 and not leftovers else 1


if __name__ == "__main__":
    sys.exit(main())
