"""Benchmark: evaluate the Pulumi program under the SDK's mocks for a 100-provider catalog.

    .venv/bin/python bench/program.py           # target (issue #3): under 5 s on 2 cores

It times what `pulumi preview` spends in our code: load and validate the fleet, build every
component and resource, and wait until the mock engine has registered all of them. The engine's
own work (diffing, provider plugins) is not part of it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pulumi
import pulumi.runtime
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import llmfleet
from components import FleetSecrets, deploy_fleet

KINDS = ["ollama", "vllm", "llama_cpp", "llama_cpp_python"]


def catalog(providers: int) -> dict:
    out: dict = {"providers": {}, "routes": {"fallbacks": {}}}
    for i in range(providers):
        kind, name, port = KINDS[i % 4], f"p{i}", 20000 + i
        if kind == "ollama":
            out["providers"][name] = {"kind": kind, "port": port, "models": [f"m{i}-{j}:7b" for j in range(3)]}
        elif kind == "vllm":
            out["providers"][name] = {"kind": kind, "port": port, "model": f"org/m{i}", "served_name": f"v{i}",
                                      "gpus": [i // 4], "gpu_memory_utilization": 0.4}  # fmt: skip
        else:
            out["providers"][name] = {"kind": kind, "port": port, "gguf": f"/models/{i}.gguf", "alias": f"c{i}"}
    out["routes"]["fallbacks"] = {f"v{i}": [f"c{i + 2}"] for i in range(1, providers - 2, 4)}
    return out


STACK = """\
config:
  llmfleet:catalog: config/catalog.yaml
  llmfleet:hosts:
    local: {}
    gpu-1: {docker: "ssh://ops@gpu-1", address: 10.0.0.11}
  llmfleet:providers: PLACEMENT
  llmfleet:images:
    ollama: ollama/ollama:0.14.1
    vllm: vllm/vllm-openai:v0.18.0
    llama_cpp: ghcr.io/ggml-org/llama.cpp:server-b9628
    llama_cpp_python: ghcr.io/abetlen/llama-cpp-python:v0.3.16
  llmfleet:masterKey: {secure: v1:abc}
"""


class EchoMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.count = 0

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        self.count += 1
        state = dict(args.inputs)
        if args.typ == "docker:index/remoteImage:RemoteImage":
            state["image_id"] = "sha256:0"
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        return {}


def run_once(project: Path) -> tuple[float, int]:
    mocks = EchoMocks()
    pulumi.runtime.set_mocks(mocks, project="llmfleet", stack="bench", preview=True)

    @pulumi.runtime.test
    def program() -> None:
        fleet = llmfleet.load_fleet(project, "bench")
        deploy_fleet(fleet, FleetSecrets(master_key="sk-bench"), project)

    start = time.perf_counter()
    program()
    return time.perf_counter() - start, mocks.count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "config").mkdir()
        (project / "stacks").mkdir()
        (project / "config" / "catalog.yaml").write_text(yaml.safe_dump(catalog(args.providers), sort_keys=False))
        remote = {f"p{i}": {"host": "gpu-1"} for i in range(0, args.providers, 2)}  # half on a second host
        (project / "stacks" / "Pulumi.bench.yaml").write_text(STACK.replace("PLACEMENT", json.dumps(remote)))
        times, count = [], 0
        for _ in range(args.repeat):
            elapsed, count = run_once(project)
            times.append(elapsed)
    median = statistics.median(times)
    ok = median < 5.0
    print(f"{args.providers} providers, {count} resources: {median:.2f} s (median of {args.repeat}; "
          f"min {min(times):.2f} s) target under 5 s -> {'PASS' if ok else 'FAIL'}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
