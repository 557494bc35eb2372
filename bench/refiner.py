"""Refiner cost: R (64 px -> 256 px) per keyframe, and the keyframe rate of the chain with it.

    .venv/bin/python bench/refiner.py [--config FILE] [--threads N] [--reps 7] [--no-gl] [--json]

- R per keyframe at batch 1, 8 and 32 (ms per keyframe: a batch's time / its size),
  beside G+E at the same batch, measured interleaved; `R/(G+E)` is the figure to trust
  on a noisy machine. Torch CPU threads as the generator process sets them
  (passersby.generator.process.threads: `stream.threads`, 0 = cores // 2), unless --threads.
- the live stream (Stream.next_frame: G, transform, E, traversal, novelty, uint8
  frame; the refined frame too with R) at batch 1, keyframes/s without R, with R, and
  with R and the sitter memory (weights.identity: an identity reading every
  keyframe at 4/s), as the player runs it; interleaved blocks; the player needs
  stream.keyframes_per_second (4/s).
- the same on CUDA (float16, as the chain runs there) when torch sees a GPU.
- the GL side (unless --no-gl, needs EGL): ms per displayed frame of the default
  look at 1280x720, 60 fps display, 4 keyframes/s (upload + painting amortised) for
  64 px keyframes (R off) and 256 px keyframes (R on).
With the configured refiner package missing, R is a random-initialised Refiner of the
package's default architecture (the cost is the architecture's; its pictures would
be a plain bilinear upscale); the output says which.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import common

BATCHES = (1, 8, 32)


def _sync(torch: Any, device: Any) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(torch: Any, device: Any, fn: Callable[[], object]) -> float:
    _sync(torch, device)
    t0 = time.perf_counter()
    fn()
    _sync(torch, device)
    return time.perf_counter() - t0


def load_refiner(torch: Any, cfg: Any, device: Any) -> tuple[Any, dict, str]:
    """(prepared R, manifest, what it is): the configured package, else a random init."""
    from passersby.common.config import WeightsConfig
    from passersby.generator import weights
    from passersby.generator.chain import default_half, prepare
    from passersby.generator.models.refiner import Refiner

    root = weights.weights_dir(cfg.weights.dir)
    name = cfg.weights.refiner or WeightsConfig().refiner
    if weights.missing(root, name):
        torch.manual_seed(0)
        module, manifest = Refiner().eval(), {"name": "random-init", "args": {}}
        what = (f"random-init Refiner() ({root / name} is missing): the architecture's "
                f"cost; its pictures would be a bilinear upscale")
    else:
        module, manifest = weights.load_module(root, name, "refiner")
        what = f"package {name} ({manifest['tensors_sha256'][:12]}...)"
    return prepare(module, device, default_half(device)), manifest, what


def chains(cfg: Any, device: str) -> tuple[Any, Any, str]:
    """(chain without R, the same chain with R, what R is)."""
    import torch

    from passersby.generator.chain import Chain
    from passersby.generator.weights import weights_dir

    off = Chain.load(weights_dir(cfg.weights.dir), cfg.weights.generator,
                     cfg.weights.encoder or None, device)
    r, manifest, what = load_refiner(torch, cfg, off.device)
    return off, dataclasses.replace(off, refiner=r, refiner_manifest=manifest), what


def per_keyframe(on: Any, reps: int) -> list[dict[str, Any]]:
    """ms per keyframe of R and of G+E at each batch size (medians, interleaved). R is
    timed as one batched forward pass (Chain.refine itself goes one by one on the CPU)."""
    import torch

    from passersby.common import rng

    rows = []
    for batch in BATCHES:
        z = np.stack([rng.normal(3, k, on.nz) for k in range(batch)])
        x = on.generate(z)                                   # [B,3,64,64] f32 on device
        ge = (lambda z=z: on.encode(on.generate(z))) if on.encoder is not None else \
            (lambda z=z: on.generate(z))
        xr = x.half() if on.half else x

        def r(xr: Any = xr) -> Any:                          # R alone, one batched pass
            return on.refiner(xr)

        t_r, t_ge = [], []
        with torch.inference_mode():
            for fn in (ge, r, ge, r):                        # warm-up (allocator, kernels)
                _timed(torch, on.device, fn)
            for _ in range(reps):
                t_ge.append(_timed(torch, on.device, ge))
                t_r.append(_timed(torch, on.device, r))
        ms_r, ms_ge = (1e3 * float(np.median(t)) / batch for t in (t_r, t_ge))
        rows.append({"device": on.device.type, "batch": batch, "R_ms_per_kf": ms_r,
                     "G+E_ms_per_kf": ms_ge, "R/(G+E)": ms_r / ms_ge,
                     "R_kf_s": 1e3 / ms_r})
    return rows


def stream_rates(chains: list[Any], blocks: int, per_block: int = 20) -> list[float]:
    """Live keyframes/s (Stream.next_frame, batch 1) of each chain, interleaved."""
    import torch

    from passersby.common.config import TraversalConfig
    from passersby.generator.stream import Stream

    streams = [Stream(c, TraversalConfig(), 4.0, seed=1) for c in chains]
    for s in streams:
        for _ in range(3):
            s.next_frame()
    spent = [0.0] * len(streams)
    for _ in range(blocks):
        for i, s in enumerate(streams):
            spent[i] += _timed(torch, s.chain.device,
                               lambda s=s: [s.next_frame() for _ in range(per_block)])
    return [blocks * per_block / t for t in spent]


def with_identity(cfg: Any, chain: Any) -> tuple[Any, str]:
    """The chain with the sitter memory's reader (weights.identity), as the player runs it."""
    from passersby.generator.chain import optional_package
    from passersby.generator.identity import Reader
    from passersby.generator.weights import weights_dir

    root = weights_dir(cfg.weights.dir)
    name = optional_package(root, cfg.weights.identity, "identity")
    if name is None:
        return chain, "off (weights.identity null or not made)"
    return dataclasses.replace(chain, identity=Reader.load(root, name, chain.device)), name


def gl_rows(frames: int) -> list[dict[str, Any]]:
    """ms per displayed frame of the default look at 1280x720 for 64 and 256 px keyframes."""
    import scaling
    from passersby.player.display import DisplayError

    rows = []
    try:
        for src in (64, 256, 64, 256):                       # twice, interleaved
            pair = scaling.make((1280, 720), src)
            rows.append((src, scaling.look_ms([pair], frames, src)))
            scaling.free([pair])
    except DisplayError as e:
        return [{"keyframe_px": "-", "gl_ms_per_frame": f"no headless GL: {e}"}]
    return [{"keyframe_px": src, "gl_ms_per_frame": min(ms for s, ms in rows if s == src)}
            for src in (64, 256)]


def measure(args: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    import torch

    from passersby.common import config
    from passersby.generator.process import threads

    cfg = config.load(args.config)
    torch.set_num_threads(args.threads or threads(cfg))
    import chain_peak

    off, on, what = chains(cfg, "cpu")
    rows = per_keyframe(on, args.reps)
    full, identity = with_identity(cfg, on)
    without, with_r, with_all = stream_rates([off, on, full], args.reps)
    extra: dict[str, Any] = {
        "refiner": what, "threads": torch.get_num_threads(),
        "R_mflop_per_kf": chain_peak.count_flops(torch, on.refiner,
                                                 torch.randn(1, 3, on.size, on.size)) / 1e6,
        "stream_kf_s_without_R": without, "stream_kf_s_with_R": with_r,
        "identity": identity, "stream_kf_s_with_R_and_sitters": with_all,
        "needed_kf_s": cfg.stream.keyframes_per_second}
    if torch.cuda.is_available():
        goff, gon, _ = chains(cfg, "cuda")
        rows += per_keyframe(gon, args.reps)
        extra["cuda_stream_kf_s_without_R"], extra["cuda_stream_kf_s_with_R"] = \
            stream_rates([goff, gon], args.reps)
        extra["cuda_device"] = torch.cuda.get_device_name(0)
    else:
        extra["cuda"] = "not measured: torch sees no CUDA device"
    if not args.no_gl:
        extra["gl_1280x720"] = gl_rows(args.frames)
    return rows, extra


def main() -> None:
    ap = common.parser(__doc__)
    ap.add_argument("--config", help="config file (weights, stream.threads); default: defaults")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch CPU threads; 0 = as the generator process (process.threads)")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--frames", type=int, default=90, help="GL: displayed frames per run")
    ap.add_argument("--no-gl", action="store_true", help="skip the GL side")
    args = ap.parse_args()
    rows, extra = measure(args)
    if args.json:
        common.emit("refiner", rows, True, extra)
        return
    gl = extra.pop("gl_1280x720", None)
    common.emit("refiner", rows, False, extra)
    if gl:
        print("\nGL, default look at 1280x720, 60 fps display, 4 keyframes/s:")
        common.emit("refiner-gl", gl, False)


if __name__ == "__main__":
    main()
