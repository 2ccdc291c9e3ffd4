"""Checks of a stack's target: a `kubernetes` stack says how to reach its cluster and uses only keys
that mean something there; its servers' names can be Kubernetes Service names (the gateway reaches
each by it); every pool a server names exists; and the GPUs the servers ask of a pool fit in it,
each server on one node. A Docker stack names no pool.

A Kubernetes server gets whole GPUs (the device plugin's extended resource), so `gpus: [0, 1]` asks
for two of them, whichever the scheduler picks, and `gpus: all` for every GPU of one node.
"""

from __future__ import annotations

from collections import defaultdict

from ._catalog import OllamaProvider
from ._checks_context import CheckContext, closest
from ._checks_sources import in_container, model_files
from ._stack import BuildSpec, GgufClaim, NodePool, kube_name_to_use

_TARGET, _KUBE, _PROVIDERS = "llmfleet:target", "llmfleet:kubernetes", "llmfleet:providers"
# Stack keys that only a Docker stack reads, and what a Kubernetes stack says instead.
_DOCKER_ONLY = {
    "hosts": (("config", "llmfleet:hosts"), "llmfleet:kubernetes.pools (where servers run)"),
}


def gpus_asked(gpus: object, pool: NodePool) -> int:
    """How many whole GPUs a server's `gpus` asks of a pool's node: `all` is every GPU a node holds."""
    if gpus is None:
        return 0
    return pool.gpus_per_node if gpus == "all" else len(gpus)  # type: ignore[arg-type]


def target(ctx: CheckContext) -> None:
    stack = ctx.stack
    if not stack.on_kubernetes:
        if stack.kubernetes is not None:
            ctx.error(ctx.stk, ("config", _KUBE), "a Docker stack does not read llmfleet:kubernetes", "target-keys",
                      "Set `llmfleet:target: kubernetes` to deploy to the cluster, or remove this key.")  # fmt: skip
        for pname, placed in stack.providers.items():
            if placed.pool:
                ctx.error(ctx.stk, ("config", _PROVIDERS, pname, "pool"), "pools are for Kubernetes stacks",
                          "target-keys", "Place it on a Docker host with `host:`, or set `llmfleet:target: "
                          "kubernetes`.")  # fmt: skip
        return
    if stack.kubernetes is None:
        ctx.error(ctx.stk, ("config", _TARGET), "a Kubernetes stack needs llmfleet:kubernetes", "kubernetes-missing",
                  "Add `llmfleet:kubernetes: {context: <kubeconfig context>, namespace: <existing namespace>}` "
                  "(README.md, Deploying to Kubernetes).")  # fmt: skip
        return
    _docker_keys(ctx)
    _service_names(ctx)
    _pools(ctx)
    _gguf_claim(ctx)


def _gguf_claim(ctx: CheckContext) -> None:
    """A claim of one node (ReadWriteOnce) or one pod (ReadWriteOncePod) cannot serve the GGUF files
    to several servers that the scheduler may place on different nodes: their pods would wait in
    ContainerCreating on a Multi-Attach error."""
    kube = ctx.stack.kubernetes
    assert kube is not None
    if not isinstance(kube.gguf, GgufClaim) or kube.gguf.access_mode in ("ReadOnlyMany", "ReadWriteMany"):
        return
    readers = [n for n, p in ctx.catalog.local_providers().items()
               if any(in_container(f) is not None for _, f in model_files(n, p))]  # fmt: skip
    if len(readers) < 2:
        return
    pools = {(ctx.stack.providers[n].pool if n in ctx.stack.providers else None) for n in readers}
    one_node = len(pools) == 1 and None not in pools and kube.pools[next(iter(pools))].nodes == 1  # type: ignore[index]
    if kube.gguf.access_mode == "ReadWriteOnce" and one_node:
        return
    where = "one pod" if kube.gguf.access_mode == "ReadWriteOncePod" else "one node"
    ctx.error(ctx.stk, ("config", _KUBE, "gguf", "access_mode"),
              f"a {kube.gguf.access_mode} claim is mounted by {where} only, and {len(readers)} servers read GGUF "
              f"files from it ({', '.join(readers)})", "gguf-claim-mode",
              "Give the files a ReadOnlyMany (or ReadWriteMany) claim, or a host_path on every node.")  # fmt: skip


def _docker_keys(ctx: CheckContext) -> None:
    stack = ctx.stack
    for field, (path, instead) in _DOCKER_ONLY.items():
        if field in stack.model_fields_set:
            ctx.error(ctx.stk, path, "a Kubernetes stack has no Docker hosts", "target-keys",
                      f"Remove it: {instead}.")  # fmt: skip
    if stack.gateway.host or "bind" in stack.gateway.model_fields_set:
        key = "host" if stack.gateway.host else "bind"
        ctx.error(ctx.stk, ("config", "llmfleet:gateway", key), "a Kubernetes stack's gateway is a Service",
                  "target-keys", "Remove it: llmfleet:kubernetes.gateway says how it is exposed "
                  "(service_type), llmfleet:gateway.url where clients reach it.")  # fmt: skip
    for pname, placed in stack.providers.items():
        for key in ("host", "publish"):
            if key in placed.model_fields_set:
                ctx.error(ctx.stk, ("config", _PROVIDERS, pname, key), f"`{key}` is for Docker hosts",
                          "target-keys", "Remove it: on Kubernetes a server runs on its `pool`, and `llmfleet "
                          "drift --backends` reaches it through the API server.")  # fmt: skip
        if isinstance(placed.ollama_models, str):
            ctx.error(ctx.stk, ("config", _PROVIDERS, pname, "ollama_models"),
                      "a host directory is a Docker host's", "target-keys",
                      "Give an existing claim instead: `ollama_models: {volume: <PersistentVolumeClaim>}`, or "
                      "remove it for a claim of its own.")  # fmt: skip
    if isinstance(stack.images.llama_cpp_python, BuildSpec):
        ctx.error(ctx.stk, ("config", "llmfleet:images", "llama_cpp_python", "build"),
                  "a cluster pulls its images: it cannot build one from this project", "target-keys",
                  "Build and push the image (docker build, docker push), then give its reference: "
                  "`llama_cpp_python: <registry>/<image>:<tag>`.")  # fmt: skip


def _service_names(ctx: CheckContext) -> None:
    for pname in ctx.catalog.local_providers():
        # A Service's name starts with a letter (RFC 1035); a provider's name may start with a digit.
        if not pname[:1].isalpha():
            use = kube_name_to_use(pname)
            ctx.error(ctx.cat, ("providers", pname),
                      f"'{pname}' cannot name a Kubernetes Service (a DNS label that starts with a letter), and "
                      "the gateway reaches each server by its Service", "kubernetes-name",
                      f"Rename the provider, e.g. '{use}' (routes name models, not providers).")  # fmt: skip


def _pools(ctx: CheckContext) -> None:
    assert ctx.stack.kubernetes is not None
    pools = ctx.stack.kubernetes.pools
    gateway_pool = ctx.stack.kubernetes.gateway.pool
    if gateway_pool and gateway_pool not in pools:
        ctx.error(ctx.stk, ("config", _KUBE, "gateway", "pool"), f"no pool named '{gateway_pool}'", "unknown-pool",
                  closest(gateway_pool, pools) or "Declare it under llmfleet:kubernetes.pools.")  # fmt: skip
    asked: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for pname, provider in ctx.catalog.local_providers().items():
        placed = ctx.stack.providers.get(pname)
        pool_name = placed.pool if placed else None
        path = ("config", _PROVIDERS, pname, "pool")
        if pool_name and pool_name not in pools:
            ctx.error(ctx.stk, path, f"no pool named '{pool_name}'", "unknown-pool",
                      closest(pool_name, pools) or "Declare it under llmfleet:kubernetes.pools.")  # fmt: skip
            continue
        if provider.gpus is None:
            continue
        if pool_name is None:
            gpu_pools = [n for n, p in pools.items() if p.gpus_per_node]
            ctx.error(ctx.cat, ("providers", pname, "gpus"), f"'{pname}' asks for GPUs, but the stack places it on "
                      "no pool", "gpu-pool", f"Name its pool: llmfleet:providers.{pname}.pool"
                      + (f" ({', '.join(gpu_pools)})." if gpu_pools else ", a pool with gpus_per_node."))  # fmt: skip
            continue
        pool = pools[pool_name]
        count = gpus_asked(provider.gpus, pool)
        if count > pool.gpus_per_node:
            ctx.error(ctx.cat, ("providers", pname, "gpus"),
                      f"'{pname}' asks for {count} GPUs on one node, and pool '{pool_name}' has "
                      f"{pool.gpus_per_node} per node", "gpu-pool-size",
                      f"Ask for at most {pool.gpus_per_node}, or place it on a pool with more GPUs per node "
                      "(a server's GPUs are on one node).")  # fmt: skip
            continue
        asked[pool_name].append((pname, count))
        if isinstance(provider, OllamaProvider) and provider.gpu_memory_budget and not pool.gpu_memory_gib:
            ctx.warn(ctx.cat, ("providers", pname, "gpu_memory_budget"),
                     f"pool '{pool_name}' does not say its GPUs' memory, so the budget is not applied",
                     "gpu-budget-not-applied",
                     f"Set llmfleet:kubernetes.pools.{pool_name}.gpu_memory_gib.")  # fmt: skip
    for pool_name, servers in asked.items():
        pool = pools[pool_name]
        if not fits(sorted((c for _, c in servers), reverse=True), pool.nodes, pool.gpus_per_node):
            users = ", ".join(f"{n} ({c})" for n, c in servers)
            ctx.error(ctx.stk, ("config", _KUBE, "pools", pool_name),
                      f"the servers on pool '{pool_name}' ask for {sum(c for _, c in servers)} GPUs, {users}, "
                      f"each on one node, and its {pool.nodes} node(s) of {pool.gpus_per_node} cannot hold them",
                      "gpu-pool-size",
                      "Add nodes (and say so in `nodes`), or move a server to another pool.")  # fmt: skip


def fits(counts: list[int], nodes: int, per_node: int) -> bool:
    """Whether servers asking for `counts` GPUs (largest first) fit on `nodes` nodes of `per_node`
    GPUs, each server on one node: first fit, which finds a packing whenever the servers' counts
    divide each other (1, 2, 4, 8 GPUs), as GPU servers' do."""
    free = [per_node] * nodes
    for count in counts:
        node = next((i for i, left in enumerate(free) if left >= count), None)
        if node is None:
            return False
        free[node] -= count
    return True
