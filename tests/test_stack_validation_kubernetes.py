"""`validate` on a `target: kubernetes` stack (llmfleet/_checks_kubernetes.py and the schema): each
mistake located at its key, with what to do; a Docker stack refuses Kubernetes keys."""

from __future__ import annotations

from pathlib import Path

import pytest

import llmfleet
from llmfleet._checks_kubernetes import fits

from .fleetdir import BASE_STACK, problems_of, write_project

CATALOG = """\
providers:
  vllm:
    kind: vllm
    model: Qwen/Qwen2.5-0.5B-Instruct
    served_name: tiny-vllm
    gpus: [0, 1]
  native:
    kind: llama_cpp
    gguf: /models/tiny.gguf
    alias: tiny-native
    gpus: all
  python:
    kind: llama_cpp_python
    gguf: /models/tiny.gguf
    alias: tiny-python
"""

KUBE = """\
  llmfleet:target: kubernetes
  llmfleet:kubernetes:
    context: gpu-cluster
    namespace: llm
    pools:
      gpu-a: {node_selector: {llmfleet.dev/pool: gpu-a}, gpus_per_node: 4, nodes: 2}
    gguf: {claim: gguf-models, access_mode: ReadOnlyMany}
  llmfleet:providers:
    vllm: {pool: gpu-a}
    native: {pool: gpu-a}
"""


def stack(extra: str = KUBE) -> str:
    return BASE_STACK + extra


def rules(tmp_path: Path, catalog: str = CATALOG, extra: str = KUBE) -> list[tuple[str, str, str]]:
    """(severity, rule, where: message. hint) of each problem."""
    root = write_project(tmp_path, catalog, stack(extra))
    return [(p.severity, p.rule, f"{llmfleet.format_key_path(p.path)}: {p.message}. {p.hint}")
            for p in problems_of(root)]  # fmt: skip


def errors(tmp_path: Path, catalog: str = CATALOG, extra: str = KUBE) -> list[str]:
    return [f"{rule} | {text}" for severity, rule, text in rules(tmp_path, catalog, extra) if severity == "error"]


def test_a_kubernetes_stack_validates(tmp_path: Path) -> None:
    fleet = llmfleet.load_fleet(write_project(tmp_path, CATALOG, stack()), "test")
    assert fleet.stack.on_kubernetes and fleet.stack.kubernetes.namespace == "llm"
    # Each backend by its Service's name: the same derivation as on one Docker host.
    assert llmfleet.backend_root(fleet, "vllm") == "http://vllm:8000"
    assert fleet.stack.gateway_url == "http://gateway.llm.svc:4000"


def test_the_target_needs_its_block(tmp_path: Path) -> None:
    assert errors(tmp_path, extra="  llmfleet:target: kubernetes\n") == [
        "kubernetes-missing | config['llmfleet:target']: a Kubernetes stack needs llmfleet:kubernetes. Add "
        "`llmfleet:kubernetes: {context: <kubeconfig context>, namespace: <existing namespace>}` (README.md, "
        "Deploying to Kubernetes)."
    ]


def test_a_docker_stack_refuses_kubernetes_keys(tmp_path: Path) -> None:
    found = errors(tmp_path, extra=KUBE.replace("llmfleet:target: kubernetes", "llmfleet:target: docker"))
    found = [e for e in found if e.startswith("target-keys")]  # (the catalog's GPU sharing is Docker's to check)
    assert len(found) == 3, found
    assert "config['llmfleet:kubernetes']: a Docker stack does not read llmfleet:kubernetes" in found[0]
    assert "config['llmfleet:providers'].vllm.pool: pools are for Kubernetes stacks" in found[1]


def test_docker_only_keys_are_refused_with_what_to_use(tmp_path: Path) -> None:
    hosts = "  llmfleet:hosts:\n    gpu-1: {gguf_dir: /srv/models}\n  llmfleet:gateway: {bind: 0.0.0.0}\n"
    extra = KUBE.replace("vllm: {pool: gpu-a}", "vllm: {pool: gpu-a, publish: true}") + hosts
    found = errors(tmp_path, extra=extra)
    assert any("config['llmfleet:hosts']: a Kubernetes stack has no Docker hosts" in e for e in found), found
    assert any("vllm.publish: `publish` is for Docker hosts" in e for e in found), found
    assert any("llmfleet:gateway'].bind: a Kubernetes stack's gateway is a Service" in e for e in found), found


def test_a_build_is_refused_a_cluster_pulls(tmp_path: Path) -> None:
    extra = KUBE + "  llmfleet:images:\n    llama_cpp_python: {build: docker/llama-cpp-python-cuda}\n"
    root = write_project(tmp_path, CATALOG, stack(extra).replace(
        "    llama_cpp_python: ghcr.io/abetlen/llama-cpp-python:v0.3.16\n", ""))  # fmt: skip
    found = [p for p in problems_of(root) if p.rule == "target-keys"]
    assert [llmfleet.format_key_path(p.path) for p in found] == ["config['llmfleet:images'].llama_cpp_python.build"]
    assert "docker push" in found[0].hint


def test_names_kubernetes_cannot_take_get_the_name_to_use(tmp_path: Path) -> None:
    found = errors(tmp_path, extra=KUBE.replace("namespace: llm", "namespace: LLM_prod"))
    assert found == [
        "schema-value-error | config['llmfleet:kubernetes'].namespace: 'LLM_prod' cannot be a Kubernetes name "
        "(lowercase letters, digits and '-', starting with a letter, at most 63): use 'llm-prod'. "
    ]
    catalog = CATALOG.replace("  python:\n", "  4bit:\n")
    found = errors(tmp_path, catalog=catalog)
    assert found == ["kubernetes-name | providers.4bit: '4bit' cannot name a Kubernetes Service (a DNS label that "
                     "starts with a letter), and the gateway reaches each server by its Service. Rename the provider, "
                     "e.g. 'x-4bit' (routes name models, not providers)."]  # fmt: skip


def test_a_quantity_in_kubernetes_units(tmp_path: Path) -> None:
    found = errors(tmp_path, extra=KUBE.replace("    pools:\n", "    cache_storage: {size: 200GB}\n    pools:\n"))
    assert found == ["schema-value-error | config['llmfleet:kubernetes'].cache_storage.size: '200GB' is not a "
                     "Kubernetes quantity: write a whole number and a unit, 200Gi (GiB) or 200G (GB). "]  # fmt: skip


def test_pools_named_exist_and_gpu_servers_have_one(tmp_path: Path) -> None:
    found = errors(tmp_path, extra=KUBE.replace("native: {pool: gpu-a}", "native: {pool: gpu-b}").replace(
        "    vllm: {pool: gpu-a}\n", ""))  # fmt: skip
    assert found == [
        "gpu-pool | providers.vllm.gpus: 'vllm' asks for GPUs, but the stack places it on no pool. Name its pool: "
        "llmfleet:providers.vllm.pool (gpu-a).",
        "unknown-pool | config['llmfleet:providers'].native.pool: no pool named 'gpu-b'. Did you mean 'gpu-a'?",
    ]


def test_gpus_a_node_cannot_hold(tmp_path: Path) -> None:
    found = errors(tmp_path, catalog=CATALOG.replace("gpus: [0, 1]", "gpus: [0, 1, 2, 3, 4]"))
    assert found == ["gpu-pool-size | providers.vllm.gpus: 'vllm' asks for 5 GPUs on one node, and pool 'gpu-a' has 4 "
                     "per node. Ask for at most 4, or place it on a pool with more GPUs per node (a server's GPUs are "
                     "on one node)."]  # fmt: skip


def test_servers_that_do_not_fit_the_pools_nodes(tmp_path: Path) -> None:
    # vllm 2 and native `all` (4) fit 2 nodes of 4; on one node they do not.
    assert errors(tmp_path) == []
    found = errors(tmp_path, extra=KUBE.replace("nodes: 2", "nodes: 1"))
    assert found == ["gpu-pool-size | config['llmfleet:kubernetes'].pools.gpu-a: the servers on pool 'gpu-a' ask "
                     "for 6 GPUs, vllm (2), native (4), each on one node, and its 1 node(s) of 4 cannot hold them. "
                     "Add nodes (and say so in `nodes`), or move a server to another pool."]  # fmt: skip


@pytest.mark.parametrize(("counts", "nodes", "per_node", "fit"), [
    ([4, 2, 2], 2, 4, True), ([3, 3], 1, 4, False), ([2, 2, 2, 2, 1], 3, 3, False), ([8], 1, 8, True), ([], 1, 0, True),
])  # fmt: skip
def test_first_fit_packs_whole_gpus_per_node(counts: list[int], nodes: int, per_node: int, fit: bool) -> None:
    assert fits(counts, nodes, per_node) is fit


def test_without_gguf_storage_a_file_warns(tmp_path: Path) -> None:
    no_gguf = KUBE.replace("    gguf: {claim: gguf-models, access_mode: ReadOnlyMany}\n", "")
    found = [r for r in rules(tmp_path, extra=no_gguf) if r[1] == "gguf-without-dir"]
    assert len(found) == 2 and "llmfleet:kubernetes.gguf: {claim:" in found[0][2], found


def test_a_kubernetes_stack_claims_nothing_on_a_docker_engine(tmp_path: Path) -> None:
    # Beside a Docker stack on the local engine with the same gateway port: no clash.
    write_project(tmp_path, CATALOG, stack(), name="cluster")
    write_project(tmp_path, CATALOG, BASE_STACK, name="local")
    found = problems_of(tmp_path, "cluster") + problems_of(tmp_path, "local")
    assert not [p for p in found if p.rule.startswith("stack-")], found
    assert not [p for p in problems_of(tmp_path, "cluster") if p.severity == "error"]


def test_a_gguf_claim_of_one_node_cannot_serve_several_servers(tmp_path: Path) -> None:
    # native and python both read /models/tiny.gguf.
    rwo = KUBE.replace("access_mode: ReadOnlyMany", "access_mode: ReadWriteOnce")
    assert errors(tmp_path, extra=rwo) == [
        "gguf-claim-mode | config['llmfleet:kubernetes'].gguf.access_mode: a ReadWriteOnce claim is mounted by one "
        "node only, and 2 servers read GGUF files from it (native, python). Give the files a ReadOnlyMany (or "
        "ReadWriteMany) claim, or a host_path on every node."
    ]
    # Both on a pool of one node: one node mounts it for both.
    one_node = rwo.replace("nodes: 2}", "nodes: 1}").replace(
        "native: {pool: gpu-a}", "native: {pool: gpu-a}\n    python: {pool: gpu-a}"
    )
    assert errors(tmp_path, catalog=CATALOG.replace("gpus: all", "gpus: [0]"), extra=one_node) == []
    rwop = one_node.replace("ReadWriteOnce", "ReadWriteOncePod")
    assert [
        e.split(" | ")[0] for e in errors(tmp_path, catalog=CATALOG.replace("gpus: all", "gpus: [0]"), extra=rwop)
    ] == ["gguf-claim-mode"]
