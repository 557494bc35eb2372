"""Sitter measure calibration: where does the sitter memory's threshold belong?

    .venv/bin/python bench/sitters.py [--weights met64] [--keyframes 3000] [--crops DIR]

The sitter memory (common/novelty.py) calls two keyframes one sitter when their identity
descriptors (generator/identity.py) are closer than SITTER_REPEAT, and compares only
keyframes more than the sitter window apart. This prints, in descriptor distance:
- the live stream (its own traversal, G's pictures, no sitter memory so that it does not
  steer what is measured) at lags of 1 .. 400 keyframes: the morph itself; the
  threshold must sit under the 1st percentile from the window on, or the stream
  would escape from its own sitter;
- the same keyframes re-lit or re-coloured (gamma, brightness, a warm cast,
  desaturation, a lighting gradient across the face, a mirror): the same sitter as a
  viewer sees it, which the picture sketch misses (thumbnail distance in the
  table too); the threshold must sit above most of these;
- independent samples of the generator, and the training crops when given (split
  halves: the scale of different people in the real data);
- with --tail N: the share of all pairs of N independent samples closer than candidate
  thresholds, and so how often a full sitter memory (SITTERS.capacity readings) would
  find a reading near one it holds: what a threshold costs the stream in leaps. The
  tail is steep (metcrowd64, 8,000 samples: 1.9e-7 of pairs under 0.28, 2.6e-6 under
  0.30), so it needs thousands of samples (~0.02 s each).
Prints a table and, with --json, the figures.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, parser, pct  # noqa: E402

LAGS = (1, 2, 4, 10, 20, 40, 80, 200, 400)


def variants(ims: np.ndarray) -> dict[str, np.ndarray]:
    """The same pictures in another light or palette ([N,S,S,3] uint8 each)."""
    x = ims.astype(np.float32) / 255.0
    s = ims.shape[2]
    ramp = np.linspace(0.7, 1.3, s, dtype=np.float32)[None, None, :, None]
    grey = x.mean(axis=3, keepdims=True)
    out = {"gamma 0.7": x ** 0.7, "gamma 1.4": x ** 1.4, "brighter 20%": x * 1.2,
           "darker 20%": x * 0.8, "warm cast": x * np.array([1.1, 1.0, 0.85], np.float32),
           "half saturation": 0.5 * x + 0.5 * grey, "light from the right": x * ramp,
           "mirror": x[:, :, ::-1]}
    return {k: (np.clip(v, 0, 1) * 255).round().astype(np.uint8) for k, v in out.items()}


def dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a - b, axis=1)


def row(name: str, d: np.ndarray) -> dict:
    return {"what": name, "n": len(d), "pct1": round(pct(d, 1), 3), "pct5": round(pct(d, 5), 3),
            "median": round(pct(d, 50), 3), "pct95": round(pct(d, 95), 3)}


def main() -> int:
    ap = parser(__doc__)
    ap.add_argument("--weights", default="met64")
    ap.add_argument("--encoder", default=None, help="default: <weights>-encoder if present")
    ap.add_argument("--keyframes", type=int, default=3000)
    ap.add_argument("--crops", help="a folder of training crops (e.g. datasets/aligned/64)")
    ap.add_argument("--picks", type=int, default=300,
                    help="keyframes re-lit and re-coloured, and pairs of samples and crops")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--tail", type=int, default=0,
                    help="independent samples whose pairs measure the tail (0: skip)")
    args = ap.parse_args()

    import torch

    from passersby.common import config
    from passersby.common.novelty import SITTER_REPEAT, distance, fingerprint
    from passersby.generator.audit import random_samples
    from passersby.generator.chain import Chain
    from passersby.generator.identity import DEFAULT, Reader
    from passersby.generator.stream import Stream, sitter_window
    from passersby.generator.weights import weights_dir

    torch.set_num_threads(1)
    root = weights_dir(None)
    enc = args.encoder or (f"{args.weights}-encoder"
                           if (root / f"{args.weights}-encoder").exists() else None)
    cfg = config.load(None)
    chain = Chain.load(root, args.weights, enc, "cpu")
    reader = Reader.load(root, cfg.weights.identity or DEFAULT)
    kps = cfg.stream.keyframes_per_second
    stream = Stream(chain, cfg.traversal, kps, args.seed)
    ims = np.stack([stream.next_frame(shown=lambda _: False).image
                    for _ in range(args.keyframes)])
    t = time.perf_counter()
    d = np.concatenate([reader.read(ims[i:i + 64]) for i in range(0, len(ims), 64)])
    per_image_ms = (time.perf_counter() - t) / len(ims) * 1000
    rows = [row(f"stream, lag {lag}", dist(d[lag:], d[:-lag])) for lag in LAGS if lag < len(d)]
    n = args.picks
    pick = ims[:: max(1, len(ims) // n)][:n]
    base = reader.read(pick)
    fp = fingerprint(pick)
    for name, v in variants(pick).items():
        r = row(f"same picture, {name}", dist(reader.read(v), base))
        r["thumbnail_median"] = round(float(np.median(distance(fingerprint(v), fp))), 3)
        rows.append(r)
    ind = reader.read(random_samples(chain, 2 * n, seed=args.seed + 1))
    rows.append(row("independent samples, pairs", dist(ind[:n], ind[n:])))
    if args.crops:
        from PIL import Image

        files = sorted(Path(args.crops).glob("*.png"))[:2 * n]
        crops = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
        c = reader.read(crops)
        half = len(c) // 2
        rows.append(row("training crops, pairs of halves", dist(c[:half], c[half:2 * half])))
    window = sitter_window(cfg.traversal, kps)
    figures = {"weights": args.weights, "keyframes": args.keyframes,
               "sitter_window_steps": window, "threshold": SITTER_REPEAT,
               "reader_ms_per_image_batch64": round(per_image_ms, 2), "rows": rows,
               "tail": tail(chain, reader, args.tail, args.seed) if args.tail > 1 else [],
               "machine": machine()}
    if args.json:
        import json
        print(json.dumps(figures, indent=2))
        return 0
    print(f"{args.weights}: {args.keyframes} keyframes; sitter window {window} steps; "
          f"threshold {SITTER_REPEAT}; reader {per_image_ms:.1f} ms/image (batch 64, 1 thread)")
    print(f"{'what':40s} {'n':>5s} {'pct1':>6s} {'pct5':>6s} {'median':>6s} {'pct95':>6s}"
          f" {'thumb':>6s}")
    for r in rows:
        print(f"{r['what']:40s} {r['n']:5d} {r['pct1']:6.3f} {r['pct5']:6.3f} "
              f"{r['median']:6.3f} {r['pct95']:6.3f} {r.get('thumbnail_median', ''):>6}")
    for t in figures["tail"]:
        print(f"under {t['threshold']:.2f}: {t['pairs']} of {t['of']} pairs of independent "
              f"samples ({t['share']:.2e}); a full memory matches "
              f"{100 * t['full_memory_matches']:.1f} % of readings")
    return 0


def tail(chain, reader, n: int, seed: int) -> list[dict]:  # type: ignore[no-untyped-def]
    """Pairs of n independent samples under candidate thresholds, and the share of
    readings a full memory would match (1 - (1 - share)^capacity)."""
    from passersby.common.novelty import SITTERS
    from passersby.generator.audit import near_pairs, random_samples

    d = np.concatenate([reader.read(random_samples(chain, min(500, n - i), seed=seed + 7 + i))
                        for i in range(0, n, 500)])
    where = np.arange(n, dtype=np.int64)
    pairs = n * (n - 1) // 2
    out = []
    for th in (0.24, 0.26, 0.28, 0.30, 0.32):
        count, _ = near_pairs(d, where, 0, th, where)
        share = count / pairs
        out.append({"threshold": th, "pairs": count, "of": pairs, "share": share,
                    "full_memory_matches": 1 - (1 - share) ** SITTERS.capacity})
    return out


if __name__ == "__main__":
    raise SystemExit(main())
