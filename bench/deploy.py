"""Benchmark: wall times of a real deploy with the real Pulumi engine into a real Docker engine.

    .venv/bin/python bench/deploy.py [--rate 10]

The same pieces as tests/test_real_deploy.py: the CLI, language host and Docker provider built
from Go modules (tests/engine_build.py), a `dockerd` of its own (tests/docker_engine.py), the
locally built images (tests/images.py, built first and not timed), the whole fleet of
tests/real_deploy.py. Timed: `pulumi preview --policy-pack policy` before anything exists, the
first `pulumi up --policy-pack policy` (images cached), the catalog change (one more Ollama model
and one more alias) under a steady chat load through the front proxy, and `pulumi destroy`.

Then the same fleet with Docker Compose (tests/compose_build.py builds it; bench/compose_fleet.py
generates its compose file from the same stack and catalog, through the components' own builders):
`docker compose up -d --wait` from nothing, the same catalog change made Compose's way (the compose
file regenerated from the changed catalog, `docker compose up -d --wait` again) under the same load,
and `docker compose down -v`.

The last two lines are:
`deploy: preview P s, up U s, change C s (failed requests F of N), destroy D s; policy passed; leftovers L`
`compose: up U s, change C s (failed requests F of N), down D s`
(L: the stack's containers and networks left after destroy). Exit 0 when llmfleet's change failed no
request and left nothing behind.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.compose_fleet import MASTER_KEY_ENV, ComposeProject, write_compose_file
from tests import compose_build, engine_build
from tests.docker_engine import docker_cli, running_engine
from tests.images import ensure_images
from tests.litellm_proxy import MASTER_KEY
from tests.real_deploy import Fleet, new_fleet
from tests.rollout import Load

CHANGE_LOAD_MODEL = "tiny-vllm"  # what the load asks for during each change: a model both catalogs keep


def timed(step, *args: str) -> float:
    started = time.monotonic()
    done = step(*args)
    if done.returncode != 0:
        command = " ".join(str(a) for a in done.args)
        raise SystemExit(f"deploy: `{command}` failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return time.monotonic() - started


def changed_under_load(fleet: Fleet, rate: float, step, *args: str) -> tuple[float, Load]:
    """The catalog change (one more Ollama model, one more alias) applied by `step(*args)` while chat
    requests go to the gateway's address at `rate` per second, from 3 s before to 3 s after."""
    with Load(fleet.url, CHANGE_LOAD_MODEL, rate=rate) as load:
        time.sleep(3)
        change = timed(step, *args)
        time.sleep(3)
    return change, load


def compose_side(fleet: Fleet, compose: ComposeProject, rate: float) -> tuple[float, float, Load, float]:
    """The same fleet with Docker Compose: up, the same change, down (volumes too)."""
    project = fleet.project
    fleet.write(second_model=False)  # the first catalog again (llmfleet's side ended on the changed one)
    write_compose_file(project.root, project.stack, compose.file)
    try:
        up = timed(compose.run, "up", "-d", "--wait")
        fleet.write(second_model=True)
        write_compose_file(project.root, project.stack, compose.file)
        change, load = changed_under_load(fleet, rate, compose.run, "up", "-d", "--wait")
        down = timed(compose.run, "down", "-v")
        left = compose.run("ps", "-a", "-q").stdout.split()
        for kind in ("network", "volume"):
            left += project.docker.ids(kind, f"label=com.docker.compose.project={compose.name}")
        if left:
            raise SystemExit(f"deploy: `docker compose down -v` left {', '.join(left)}")
    finally:
        compose.run("down", "-v", "--remove-orphans")  # whatever a failed step left
    return up, change, load, down


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=10.0, help="chat requests per second during the change")
    args = parser.parse_args()
    engine_bin = engine_build.ensure_built()
    compose_bin = compose_build.ensure_built()
    with running_engine(air_gapped=False) as builder:
        images = ensure_images(builder)
    with running_engine() as docker, tempfile.TemporaryDirectory(prefix="llmfleet-bench-deploy-") as work:
        fleet = new_fleet(Path(work), engine_bin, docker, images)
        # The registry the Ollama models are pulled from runs until the compose side is done too.
        with contextlib.closing(fleet):
            project = fleet.project
            try:
                preview = timed(project.pulumi, "preview", "--policy-pack", "policy")
                up = timed(project.pulumi, "up", "--yes", "--policy-pack", "policy")  # fails on a violation
                fleet.write(second_model=True)
                change, load = changed_under_load(
                    fleet, args.rate, project.pulumi, "up", "--yes", "--policy-pack", "policy"
                )
                destroy = timed(project.pulumi, "destroy", "--yes")
            finally:
                leftovers = project.leftovers()
                if leftovers:
                    project.pulumi("destroy", "--yes", "--skip-preview")
            # The secret the compose file reads from the environment, as the stack holds it for llmfleet.
            env = compose_build.compose_env(compose_bin, {**docker.env, MASTER_KEY_ENV: MASTER_KEY})
            compose_file = Path(work) / "compose" / "compose.yaml"
            compose = ComposeProject(docker_cli(), compose_file, f"compose-{project.stack}", env)
            c_up, c_change, c_load, c_down = compose_side(fleet, compose, args.rate)
    failed, sent = len(load.result.failures), load.result.sent
    for failure in load.result.failures[:5]:
        print(f"failed request: {failure}")
    c_failed, c_sent = len(c_load.result.failures), c_load.result.sent
    for failure in c_load.result.failures[:5]:
        print(f"failed request (compose): {failure}")
    print(f"deploy: preview {preview:.1f} s, up {up:.1f} s, change {change:.1f} s "
          f"(failed requests {failed} of {sent}), destroy {destroy:.1f} s; "
          f"policy passed; leftovers {len(leftovers)}")  # fmt: skip
    print(f"compose: up {c_up:.1f} s, change {c_change:.1f} s (failed requests {c_failed} of {c_sent}), "
          f"down {c_down:.1f} s")  # fmt: skip
    return 0 if failed == 0 and not leftovers else 1


if __name__ == "__main__":
    sys.exit(main())
