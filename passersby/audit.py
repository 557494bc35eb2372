"""`passersby audit`: run the traversal and the chain headless and measure the stream.

Figures (images compared as 64 px uint8 RGB; "change" is the mean absolute pixel
difference on the 0..255 scale):
- face_rate_stream / face_rate_random: the Haar yardstick's hit rate on every
  `face_every`-th keyframe versus on as many random samples of the generator;
- change_per_s: mean change between consecutive keyframes times keyframes/s, and
  stranger_change: the mean change between two independent random samples (scale);
- longest_freeze_s: the longest run of consecutive keyframes each changing less
  than FREEZE_CHANGE, in seconds of display time;
- diversity: mean pairwise distance of stream keyframes (16x16 grey thumbnails)
  over that of random samples (1.0 = as varied as the generator itself).
"""
from __future__ import annotations

import time

import numpy as np

from passersby import faces, rng
from passersby.chain import Chain, to_uint8
from passersby.config import Config
from passersby.stream import Stream

FREEZE_CHANGE = 0.5  # mean |difference| on 0..255 below which a step counts as frozen


def thumbs(images: np.ndarray) -> np.ndarray:
    """[N,64,64,3] uint8 -> [N,256] f32 grey 16x16 thumbnails (0..1)."""
    grey = images.astype(np.float32).mean(axis=3) / 255.0
    n, h, w = grey.shape
    return grey.reshape(n, 16, h // 16, 16, w // 16).mean(axis=(2, 4)).reshape(n, -1)


def spread(t: np.ndarray, pairs: int = 4000, seed: int = 0) -> float:
    r = np.random.default_rng(seed)
    i, j = r.integers(0, len(t), pairs), r.integers(0, len(t), pairs)
    keep = i != j
    return float(np.linalg.norm(t[i[keep]] - t[j[keep]], axis=1).mean())


def random_samples(chain: Chain, n: int, seed: int = 12345, batch: int = 64) -> np.ndarray:
    out = [to_uint8(chain.generate(np.stack([rng.normal(seed, k, chain.nz, stream=7)
                                            for k in range(s, min(n, s + batch))])))
           for s in range(0, n, batch)]
    return np.concatenate(out) if out else np.zeros((0, 64, 64, 3), np.uint8)


def run(chain: Chain, cfg: Config, steps: int, seed: int, face_every: int = 5,
        progress=None) -> dict:  # type: ignore[no-untyped-def]
    kps = cfg.stream.keyframes_per_second
    stream = Stream(chain, cfg.traversal, kps, seed)
    changes = np.zeros(max(steps - 1, 0), np.float32)
    sampled, prev, run_len, longest = [], None, 0, 0
    start = time.perf_counter()
    for k in range(steps):
        image = stream.next_frame().image
        if prev is not None:
            c = float(np.abs(image.astype(np.int16) - prev).mean())
            changes[k - 1] = c
            run_len = run_len + 1 if c < FREEZE_CHANGE else 0
            longest = max(longest, run_len)
        if k % face_every == 0:
            sampled.append(image)
        prev = image
        if progress and (k + 1) % 100 == 0:
            progress(k + 1, steps)
    elapsed = time.perf_counter() - start
    stream_imgs = np.stack(sampled)
    rand = random_samples(chain, len(stream_imgs))
    ts, tr = thumbs(stream_imgs), thumbs(rand)
    strangers = np.abs(rand[1:].astype(np.int16) - rand[:-1]).mean() if len(rand) > 1 else 0
    return {
        "steps": steps, "keyframes_per_second": kps, "seed": f"{seed:032x}",
        "face_rate_stream": round(faces.hit_rate(stream_imgs), 4),
        "face_rate_random": round(faces.hit_rate(rand), 4),
        "faces_sampled": len(stream_imgs),
        "change_per_s": round(float(changes.mean()) * kps, 3) if len(changes) else 0.0,
        "stranger_change": round(float(strangers), 3),
        "longest_freeze_s": round(longest / kps, 3),
        "diversity": round(spread(ts) / max(spread(tr), 1e-9), 4),
        "steps_per_s": round(steps / elapsed, 2),
    }
