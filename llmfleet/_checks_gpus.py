"""Checks of GPU use: tensor parallelism has its devices, servers sharing a GPU with vLLM fit in
its memory together, and a gpu_memory_budget that no server enforces is said to be only a
declaration."""

from __future__ import annotations

from collections import defaultdict

from ._catalog import Catalog, LlamaCppProvider, LlamaCppPythonProvider, LocalProvider, OllamaProvider, VllmProvider
from ._checks_context import CheckContext
from ._stack import StackSettings

# vLLM's utilization is a share of the whole GPU; leave headroom for the CUDA context.
GPU_BUDGET = 0.95


def gpu_budget(ctx: CheckContext) -> None:
    if ctx.stack.on_kubernetes:
        return  # each server gets whole GPUs of its own there: nothing is shared (_checks_kubernetes.py)
    by_host: dict[str, list[tuple[str, LocalProvider]]] = defaultdict(list)
    for pname, p in ctx.catalog.local_providers().items():
        if p.gpus is not None:
            by_host[ctx.stack.host_of(pname)].append((pname, p))
        # Distinct devices: the schema refuses a repeated id, and a GPU counts once anyway.
        distinct = len(set(p.gpus)) if isinstance(p.gpus, list) else 0
        if isinstance(p, VllmProvider) and isinstance(p.gpus, list) and distinct < p.tensor_parallel_size:
            ctx.error(
                ctx.cat,
                ("providers", pname, "tensor_parallel_size"),
                f"tensor_parallel_size {p.tensor_parallel_size} needs as many GPUs, {distinct} given",
                "tensor-parallel",
                "List enough device ids in `gpus`, or lower tensor_parallel_size.",
            )
    unbudgeted: set[str] = set()
    for host, users in by_host.items():
        ids = sorted({i for _, p in users if isinstance(p.gpus, list) for i in p.gpus}) or ["all"]
        seen: set[frozenset[str]] = set()
        for gpu in ids:
            sharing = [(n, p) for n, p in users if p.gpus == "all" or gpu in p.gpus]
            names = frozenset(n for n, _ in sharing)
            if names in seen or not any(isinstance(p, VllmProvider) for _, p in sharing):
                continue
            seen.add(names)
            _shared_gpu(ctx, f"GPU {gpu} on host '{host}'", sharing, unbudgeted)


def _shared_gpu(ctx: CheckContext, where: str, sharing: list[tuple[str, LocalProvider]], unbudgeted: set[str]) -> None:
    shares: list[tuple[str, float]] = []
    for n, p in sharing:
        share = p.gpu_memory_utilization if isinstance(p, VllmProvider) else p.gpu_memory_budget
        if share is not None:
            shares.append((n, share))
        elif len(sharing) > 1 and n not in unbudgeted:
            unbudgeted.add(n)  # one report per server, however many GPUs it shares
            ctx.error(
                ctx.cat,
                ("providers", n, "gpus"),
                f"shares {where} with vLLM but declares no gpu_memory_budget",
                "gpu-budget",
                "Set gpu_memory_budget (a fraction of GPU memory) so vLLM's share can be checked.",
            )
    total = sum(share for _, share in shares)
    if total > GPU_BUDGET + 1e-9:
        last = next(n for n, p in reversed(sharing) if isinstance(p, VllmProvider))
        parts = ", ".join(f"{n} {share:g}" for n, share in shares)
        ctx.error(
            ctx.cat,
            ("providers", last, "gpu_memory_utilization"),
            f"{where} is over budget: {parts} sum to {total:.2f} (at most {GPU_BUDGET})",
            "gpu-budget",
            "Lower gpu_memory_utilization, or put the servers on different GPUs.",
        )


def declared_share(p: LocalProvider) -> float | None:
    """The share of each of its GPUs' memory a server declares: vLLM's utilization, which vLLM
    enforces, or another server's gpu_memory_budget."""
    return p.gpu_memory_utilization if isinstance(p, VllmProvider) else p.gpu_memory_budget


def shares_beside(catalog: Catalog, stack: StackSettings, provider: str) -> float:
    """What the other servers on `provider`'s host declare of the GPU it shares with them the least:
    on that GPU the provider has the most memory left, so a reservation computed from it keeps the
    provider within its budget on every one of its GPUs. With `gpus: all` only servers that also
    use every GPU count (a GPU no one lists may exist)."""
    p = catalog.local_providers()[provider]
    host = stack.host_of(provider)
    others = [o for n, o in catalog.local_providers().items()
              if n != provider and o.gpus is not None and stack.host_of(n) == host]  # fmt: skip

    def on(gpu: int | None) -> float:
        return sum(declared_share(o) or 0.0 for o in others if o.gpus == "all" or (gpu is not None and gpu in o.gpus))

    return min(on(g) for g in p.gpus) if isinstance(p.gpus, list) else on(None)


def budgets_applied(ctx: CheckContext) -> None:
    """gpu_memory_budget is a limit only where the server can be told one: Ollama, when the host
    declares its GPUs' memory (OLLAMA_GPU_OVERHEAD is in bytes). llama.cpp's servers have no memory
    cap at all, only the number of layers on the GPU. Say so, once per provider."""
    for pname, p in ctx.catalog.local_providers().items():
        path = ("providers", pname, "gpu_memory_budget")
        if p.gpu_memory_budget is None:
            continue
        if isinstance(p, VllmProvider):
            ctx.error(
                ctx.cat,
                path,
                "vLLM does not read gpu_memory_budget: its share is gpu_memory_utilization, which vLLM enforces",
                "gpu-budget-on-vllm",
                f"Remove it; set gpu_memory_utilization: {p.gpu_memory_budget:g} if that is the share.",
            )
            continue
        host = ctx.stack.host_of(pname)
        if p.gpus is None:
            ctx.warn(
                ctx.cat,
                path,
                "budgets no GPU: without `gpus` the server runs on CPU, so the budget applies to nothing",
                "gpu-budget-not-applied",
                "Give the server `gpus`, or remove gpu_memory_budget.",
            )
        elif isinstance(p, OllamaProvider):
            if not ctx.stack.on_kubernetes and host in ctx.stack.hosts and ctx.stack.hosts[host].gpu_memory_gib is None:
                ctx.warn(
                    ctx.cat,
                    path,
                    f"is only a declaration: Ollama can be held to {p.gpu_memory_budget:g} of a GPU only in bytes, "
                    f"and host '{host}' does not say how much memory its GPUs have",
                    "gpu-budget-not-applied",
                    f"Set llmfleet:hosts.{host}.gpu_memory_gib to each GPU's memory in GiB (80 for an 80 GB card): "
                    "Ollama is then told to leave the rest alone (OLLAMA_GPU_OVERHEAD).",
                )
        elif isinstance(p, LlamaCppProvider | LlamaCppPythonProvider):
            ctx.warn(
                ctx.cat,
                path,
                "is only a declaration: a llama.cpp server has no memory limit, only the layers it puts on the GPU; "
                "the budget counts toward the GPU's sum, nothing holds the server to it",
                "gpu-budget-not-applied",
                "Size the model, context_length and gpu_layers to fit it.",
            )
