"""Generator chain: keyframes/s of G and G+E at batch 1 and batched, vs the fp32 matmul peak.

    .venv/bin/python bench/chain_peak.py [--batch 64] [--threads N] [--reps 5]
        [--weights NAME] [--json]

The peak is this machine's fp32 matrix multiply (torch.mm, 2048x2048, best of
several) measured in the same run, before and after (the best is kept). FLOPs of
G and E are counted from their layers (2 x multiply-adds of each convolution and
linear layer, one sample). Variants:
- eager: the networks as loaded from the weight package (NCHW, BatchNorm layers);
- chain: passersby.generator.chain.prepare (BatchNorm folded, channels_last) = what the player runs;
- jit: the chain variant traced and frozen with TorchScript (oneDNN fusions).
"stream" is one live step (G, transform, E, traversal, uint8 frame) at batch 1.
"""
from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import common
from passersby.common.config import WeightsConfig


def matmul_peak(torch: Any, n: int = 2048, reps: int = 5) -> float:
    """Best fp32 GFLOP/s of an n x n matmul."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(reps))
    return 2 * n ** 3 / best / 1e9


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def count_flops(torch: Any, module: Any, x: Any) -> float:
    """FLOPs (2 x MACs) of conv / transposed conv / linear layers for input x."""
    nn = torch.nn
    total = [0.0]

    def hook(m: Any, inp: tuple, out: Any) -> None:
        if isinstance(m, nn.ConvTranspose2d):
            k = m.weight.shape[2] * m.weight.shape[3]
            total[0] += 2.0 * inp[0].numel() * m.out_channels * k / m.groups
        elif isinstance(m, nn.Conv2d):
            k = m.weight.shape[1] * m.weight.shape[2] * m.weight.shape[3]
            total[0] += 2.0 * out.numel() * k
        elif isinstance(m, nn.Linear):
            total[0] += 2.0 * out.numel() * m.in_features

    handles = [m.register_forward_hook(hook) for m in module.modules()]
    with torch.inference_mode():
        module(x)
    for h in handles:
        h.remove()
    return total[0] / x.shape[0]


def throughput(torch: Any, fn: Callable[[Any], Any], x: Any, reps: int) -> float:
    """Samples/s of fn(x), median of reps after two warm-up calls."""
    with torch.inference_mode():
        fn(x)
        fn(x)
        times = [_timed(lambda: fn(x)) for _ in range(reps)]
    return x.shape[0] / float(np.median(times))


def variants(torch: Any, chain: Any, world: str) -> dict[str, tuple[Any, Any]]:
    from passersby.generator import weights
    from passersby.generator.weights import weights_dir

    root = weights_dir(None)
    g, _ = weights.load_module(root, world, "generator")
    e, _ = weights.load_module(root, f"{world}-encoder", "encoder")
    out = {"eager": (g, e), "chain": (chain.generator, chain.encoder)}
    with torch.inference_mode():
        out["jit"] = tuple(torch.jit.freeze(torch.jit.trace(copy.deepcopy(m), x).eval())
                           for m, x in ((chain.generator, torch.randn(2, chain.nz)),
                                        (chain.encoder, torch.randn(2, 3, 64, 64))))
    return out


def measure(args: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    import torch

    from passersby.generator.chain import Chain
    from passersby.generator.weights import weights_dir

    if args.threads:
        torch.set_num_threads(args.threads)
    chain = Chain.load(weights_dir(None), args.weights, f"{args.weights}-encoder", "cpu")
    peak = matmul_peak(torch)
    gflop = count_flops(torch, chain.generator, torch.randn(1, chain.nz))
    eflop = count_flops(torch, chain.encoder, torch.randn(1, 3, 64, 64))
    rows = []
    for name, (g, e) in variants(torch, chain, args.weights).items():
        for batch in (1, args.batch):
            z = torch.randn(batch, chain.nz)
            img = torch.rand(batch, 3, 64, 64).contiguous(memory_format=torch.channels_last)
            g_rate = throughput(torch, g, z, args.reps)
            ge_rate = throughput(torch, lambda x: e(g(x).contiguous(
                memory_format=torch.channels_last)), z, args.reps)
            e_rate = throughput(torch, e, img, args.reps)
            rows.append({"variant": name, "batch": batch, "G_kf_s": g_rate, "E_img_s": e_rate,
                         "G+E_kf_s": ge_rate,
                         "G_gflops": g_rate * gflop / 1e9,
                         "G+E_pct_peak": 100 * ge_rate * (gflop + eflop) / 1e9 / peak})
    peak = max(peak, matmul_peak(torch))
    for r in rows:                                  # with the best peak of the run
        r["G+E_pct_peak"] = 100 * r["G+E_kf_s"] * (gflop + eflop) / 1e9 / peak
    extra = {"matmul_peak_gflops": peak, "G_mflop_per_kf": gflop / 1e6,
             "E_mflop_per_kf": eflop / 1e6, "threads": torch.get_num_threads(),
             "stream_step_kf_s": stream_rate(chain, args.reps),
             "target": "G+E >= 60% of peak when batched"}
    best = max(r["G+E_pct_peak"] for r in rows if r["batch"] > 1)
    extra["met"] = best >= 60.0
    return rows, extra


def stream_rate(chain: Any, reps: int) -> float:
    """Live keyframes/s: Stream.next_frame, the player's producer step (batch 1)."""
    from passersby.common.config import TraversalConfig
    from passersby.generator.stream import Stream

    stream = Stream(chain, TraversalConfig(), 4.0, seed=1)
    for _ in range(3):
        stream.next_frame()
    n = 20 * reps
    t0 = time.perf_counter()
    for _ in range(n):
        stream.next_frame()
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = common.parser(__doc__)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=0, help="torch threads; 0 = torch's default")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--weights", default=WeightsConfig().generator,
                    help="the world: generator NAME and encoder NAME-encoder (default: the "
                         "configured default world)")
    args = ap.parse_args()
    rows, extra = measure(args)
    common.emit("chain_peak", rows, args.json, extra)


if __name__ == "__main__":
    main()
