"""Taste margin: a synthetic rater that likes bright pictures teaches a taste; how much
brighter does the stream get, at what cost in faces and repeats?

    .venv/bin/python bench/taste.py [--steps 300] [--seeds 3] [--strength 1.0]

Rates N random samples of the generator by mean pixel (top 10 % favourite +2, above
the median keep +1, the rest reject -1), trains passersby.generator.taste on them, then runs
the default stream from the same seeds with taste 0 and with taste > 0 and prints
the mean brightness of each (0..255), the margin in units of the spread (sd) of
the generator's own brightness, the Haar face rates and the near duplicates.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def rate(chain, n: int, seed: int = 1234) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """n random latents [n,nz], their ratings [n] and brightness [n] (0..255)."""
    from passersby.common import rng

    z = np.stack([rng.normal(seed, k, chain.nz, stream=3) for k in range(n)])
    bright = chain.generate_batch(z).reshape(n, -1).mean(axis=1)
    ratings = np.where(bright > np.quantile(bright, 0.9), 2,
                       np.where(bright > np.median(bright), 1, -1))
    return z, ratings, bright


def run_stream(chain, cfg, steps: int, seed: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    """[steps,S,S,3] uint8 keyframes of a stream."""
    from passersby.generator.stream import Stream

    s = Stream(chain, cfg, 4.0, seed)
    return np.stack([s.next_frame().image for _ in range(steps)])


def measure(chain, model_path: Path, steps: int, seed: int, strength: float  # type: ignore[no-untyped-def]
            ) -> dict:
    """Brightness, face rate (every 2nd keyframe) and near duplicates, taste off and on."""
    from passersby.common import config
    from passersby.common.novelty import fingerprint
    from passersby.generator import faces
    from passersby.generator.audit import near_duplicates
    from passersby.generator.traversal.modes import likeness_window

    base = config.Config().traversal
    out = {}
    for name, cfg in (("plain", base), ("taste", dataclasses.replace(
            base, taste=strength, taste_model=str(model_path)))):
        ims = run_stream(chain, cfg, steps, seed)
        out[name] = {"brightness": float(ims.reshape(steps, -1).mean()),
                     "face_rate": faces.hit_rate(ims[::2]),
                     "near_duplicates": near_duplicates(fingerprint(ims),
                                                        likeness_window(cfg, 4.0))[0]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ratings", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--strength", type=float, default=1.0)
    args = ap.parse_args()
    import torch

    from passersby.generator import taste, weights
    from passersby.generator.chain import Chain

    torch.set_num_threads(1)
    chain = Chain.load(weights.weights_dir(), "dcgan64-standin", "dcgan64-standin-encoder", "cpu")
    z, ratings, bright = rate(chain, args.ratings)
    t = time.perf_counter()
    model = taste.train(z, ratings)
    train_s = time.perf_counter() - t
    zt, rt, _ = rate(chain, 500, seed=4321)  # held out: does it generalise?
    held_out = float(np.mean((model.score(zt) > 0.5) == (rt > 0)))
    sd = float(bright.std())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = model.save(Path(tmp) / "taste.npz")
        for seed in range(1, args.seeds + 1):
            m = measure(chain, path, args.steps, seed, args.strength)
            m["margin_sd"] = (m["taste"]["brightness"] - m["plain"]["brightness"]) / sd
            rows.append(m)
            print(json.dumps({"seed": seed, **m}))
    margins = [r["margin_sd"] for r in rows]
    face = [r["taste"]["face_rate"] / max(r["plain"]["face_rate"], 1e-9) for r in rows]
    print(json.dumps({"ratings": args.ratings, "train_seconds": round(train_s, 2),
                      "train_accuracy": model.meta["train_accuracy"],
                      "held_out_accuracy": round(held_out, 3),
                      "brightness_sd_of_generator": round(sd, 2), "strength": args.strength,
                      "steps": args.steps, "margin_sd_mean": round(float(np.mean(margins)), 3),
                      "margin_sd_min": round(float(np.min(margins)), 3),
                      "margin_brightness_mean": round(float(np.mean(margins)) * sd, 1),
                      "face_rate_plain": round(float(np.mean([r["plain"]["face_rate"]
                                                              for r in rows])), 3),
                      "face_rate_taste": round(float(np.mean([r["taste"]["face_rate"]
                                                              for r in rows])), 3),
                      "face_rate_ratio_min": round(float(np.min(face)), 3),
                      "near_duplicates_max": max(r["taste"]["near_duplicates"] for r in rows)}))


if __name__ == "__main__":
    main()
