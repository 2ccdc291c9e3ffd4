"""Checks of GPU use: tensor parallelism has its devices, and servers sharing a GPU with vLLM
fit in its memory together."""

from __future__ import annotations

from collections import defaultdict

from ._catalog import LocalProvider, VllmProvider
from ._checks_context import CheckContext

# vLLM's utilization is a share of the whole GPU; leave headroom for the CUDA context.
GPU_BUDGET = 0.95


def gpu_budget(ctx: CheckContext) -> None:
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
