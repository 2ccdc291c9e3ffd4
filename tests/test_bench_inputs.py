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


def _deploy_bench_fleet(tmp_path: Path, second_model: bool):
    """The deploy benchmark's project as it writes it (tests/real_deploy.py), without an engine:
    the stack and catalog only, with placeholder image tags."""
    from tests.images import FleetImages
    from tests.ollama_registry import Registry, Store
    from tests.real_deploy import STACK, Fleet, Project
    from tests.tiny_gguf import write_tiny_gguf

    gguf_dir = tmp_path / "gguf"
    gguf_dir.mkdir(exist_ok=True)
    write_tiny_gguf(gguf_dir / "tiny.gguf")
    root = tmp_path / "project"
    for directory in ("config", "stacks"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    images = FleetImages(*(f"llmfleet-test/{name}:0" for name in ("litellm", "haproxy", "llama-server",
                                                                  "llama-cpp-python", "ollama", "vllm")))  # fmt: skip
    registry = Registry("http://10.201.0.1:5000", Store())  # where the tests' registry would listen
    fleet = Fleet(Project(root=root, engine_bin=tmp_path, docker=None), images, gguf_dir, registry)
    fleet.write(second_model=second_model)
    return fleet, STACK


def test_the_deploy_benchmark_s_compose_file_is_valid_for_compose(tmp_path: Path) -> None:
    """Both compose files bench/deploy.py writes (the first catalog and the changed one) pass the built
    Compose's own check (`docker compose config`), and say what the stack deploys: the configs Compose
    will copy in are the ones llmfleet renders, and the change gives the gateway a new definition
    (Compose recreates a container only then)."""
    import subprocess

    from bench import compose_fleet  # a module of bench/deploy.py's, imported as it imports it
    from tests import compose_build
    from tests.docker_engine import docker_cli

    env = compose_build.compose_env(compose_build.ensure_built(), {"PATH": "/usr/bin:/bin"})
    env[compose_fleet.MASTER_KEY_ENV] = "sk-bench-inputs-test"
    seen = []
    for second_model in (False, True):
        fleet, stack = _deploy_bench_fleet(tmp_path, second_model)
        loaded = llmfleet.load_fleet(fleet.project.root, stack)
        target = compose_fleet.write_compose_file(fleet.project.root, stack, tmp_path / "compose" / "compose.yaml")
        assert "sk-bench-inputs-test" not in target.read_text()
        done = subprocess.run([docker_cli(), "compose", "-p", "bench", "-f", str(target), "config", "--format", "json"],
                              env=env, capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        config = json.loads(done.stdout)
        services = config["services"]
        assert set(services) == {*loaded.catalog.local_providers(), "ollama-models", "gateway", "front"}
        gateway_config = next(c for c in services["gateway"]["configs"] if c["target"] == "/app/config.yaml")
        assert config["configs"][gateway_config["source"]]["content"] == llmfleet.render_gateway_config(loaded)
        assert services["gateway"]["environment"]["LITELLM_MASTER_KEY"] == "sk-bench-inputs-test"
        assert services["front"]["ports"][0]["published"] == str(loaded.stack.gateway.port)
        assert set(services["gateway"]["depends_on"]) == {*loaded.catalog.local_providers(), "ollama-models"}
        # The models job's shell script reaches the container as written: its `$` are not Compose's
        # (`config` prints a literal `$` as `$$`, as the file must spell it).
        script = services["ollama-models"]["entrypoint"][-1].replace("$$", "$")
        assert 'f=$(mktemp); printf "FROM %s\\n" /models/tiny.gguf > "$f"; ollama create Tiny-House -f "$f"' in script
        # Pulled from the tests' registry over plain http, as the model resource pulls (`insecure: true`).
        assert f"ollama pull --insecure {fleet.pull_ref('tiny')}\n" in script
        seen.append((gateway_config["source"], script))
    (first_config, first_models), (changed_config, changed_models) = seen
    assert first_config != changed_config
    second = f"ollama pull --insecure {fleet.pull_ref('second')}"
    assert second in changed_models and second not in first_models
