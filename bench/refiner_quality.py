"""What the refiner adds: detail, faces kept, nothing copied; and a strip to look at.

    .venv/bin/python bench/refiner_quality.py [--refiner met-refiner] [--generator NAME]
        [--data datasets/met256] [--n 200] [--strip refiner_strip.png]

N keyframes of the generator (random latents, fixed seed) at 64 px, upscaled to
256 px two ways: bicubic and the refiner. Printed, in one run:
- sharpness: mean absolute Laplacian of the grey picture (0..255 scale) and the share
  of spectral energy above a quarter of the Nyquist frequency, for refined frames,
  bicubic frames, and the dataset's real 256 px crops (the held-out ones and all);
- faces: the Haar face detector's hit rate on refined vs bicubic frames of the same
  keyframes, at 256 px (and with eyes found inside the face: a stricter reading);
- no copying: each refined frame's distance to its nearest training crop (mirrors
  included) in a 32x32 colour feature (each picture minus its mean, over its norm),
  against a threshold calibrated on real near-copies: the distance between a
  training crop and R's reconstruction of it from a degraded 64 px version (the
  closest R can come to copying a crop it was trained on); the 99th percentile of
  those is the threshold, and the share of frames farther than it is the figure
  (target >= 99 %).
`--strip` writes rows of (64 px input, shown x4 | bicubic | refined) for 8 keyframes.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, parser  # noqa: E402


def laplacian(images: np.ndarray) -> float:
    import cv2

    return float(np.mean([np.abs(cv2.Laplacian(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY)
                                               .astype(np.float32), cv2.CV_32F)).mean()
                          for im in images]))


def high_share(images: np.ndarray) -> float:
    """Share of the grey spectrum's energy (DC excluded) above 1/4 of Nyquist."""
    grey = images.astype(np.float32).mean(3)
    grey -= grey.mean((1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(grey)) ** 2
    f = np.fft.fftfreq(grey.shape[1])
    radius = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2)
    high = radius > 0.125
    return float((power[:, high].sum((1,)) / power.sum((1, 2))).mean())


def eyes_face(image: np.ndarray) -> bool:
    """A Haar face with at least one Haar eye in its upper half."""
    import cv2

    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    pad = grey.shape[0] // 8
    grey = cv2.copyMakeBorder(grey, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    face = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    eye = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_eye.xml")
    s = grey.shape[0]
    for x, y, w, h in face.detectMultiScale(grey, 1.1, 4, minSize=(s // 4, s // 4)):
        top = grey[y:y + h // 2 + h // 8, x:x + w]
        if len(eye.detectMultiScale(top, 1.1, 3, minSize=(w // 10, w // 10))):
            return True
    return False


def feature(images: np.ndarray) -> np.ndarray:
    import cv2

    f = np.stack([cv2.resize(im, (32, 32), interpolation=cv2.INTER_AREA)
                  for im in images]).astype(np.float32).reshape(len(images), -1)
    f -= f.mean(1, keepdims=True)
    return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-6)


def nearest(query: np.ndarray, bank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distance of each query feature to its nearest bank feature, and which."""
    d2 = 2.0 - 2.0 * query @ bank.T
    i = d2.argmin(1)
    return np.sqrt(np.maximum(d2[np.arange(len(query)), i], 0)), i


def main() -> int:
    ap = parser(__doc__)
    ap.add_argument("--refiner", default="met-refiner")
    ap.add_argument("--generator", default=None, help="default: weights.generator")
    ap.add_argument("--data", default="datasets/met256", help="dataset with 256 px crops")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--strip", default=None, help="PNG of 8 keyframes: input | bicubic | refined")
    args = ap.parse_args()

    import torch

    from passersby.common import config
    from passersby.generator import faces, weights
    from passersby.train import data, refiner

    torch.set_num_threads(max(1, torch.get_num_threads()))
    cfg = config.load(None)
    root = weights.weights_dir(cfg.weights.dir)
    gen = args.generator or cfg.weights.generator
    r, rm = weights.load_module(root, args.refiner, "refiner")
    small = refiner.generator_pictures(root, gen, args.n, 20261124)
    cubic, refined = refiner.bicubic(small), refiner.refine(r, small)

    crops, report = data.load_crops(Path(args.data), 256)
    recipe = refiner.Recipe(**{k: v for k, v in rm["recipe"].items()
                               if k in refiner.Recipe.__dataclass_fields__})
    pool, held, _ = refiner.split(report, recipe)
    train_crops = crops[pool]
    rng = np.random.default_rng(5)
    sample = rng.choice(len(train_crops), min(200, len(train_crops)), replace=False)
    recon = refiner.refine(r, np.stack([refiner.degrade(train_crops[i], rng)
                                        for i in sample]))
    bank = np.concatenate([feature(train_crops), feature(train_crops[:, :, ::-1])])
    own = np.linalg.norm(feature(recon) - bank[sample], axis=1)
    threshold = float(np.percentile(own, 99))
    dist, idx = nearest(feature(refined), bank)

    figures = {
        "refiner": args.refiner, "generator": gen, "keyframes": args.n,
        "sharpness_laplacian": {"refined": round(laplacian(refined), 2),
                                "bicubic": round(laplacian(cubic), 2),
                                "real_held_out": round(laplacian(crops[held]), 2),
                                "real_all": round(laplacian(crops[pool]), 2)},
        "high_frequency_share": {"refined": round(high_share(refined), 4),
                                 "bicubic": round(high_share(cubic), 4),
                                 "real_all": round(high_share(crops[pool]), 4)},
        "face_rate_256": {"refined": float(np.mean([faces.has_face(im, 256) for im in refined])),
                          "bicubic": float(np.mean([faces.has_face(im, 256) for im in cubic]))},
        "face_with_eye_rate": {"refined": float(np.mean([eyes_face(im) for im in refined])),
                               "bicubic": float(np.mean([eyes_face(im) for im in cubic]))},
        "copy_check": {"threshold": round(threshold, 4),
                       "closest": round(float(dist.min()), 4),
                       "share_farther": float(np.mean(dist > threshold)),
                       "reconstruction_median": round(float(np.median(own)), 4)},
        "machine": machine(),
    }
    if args.strip:
        rows = [[small[i], cubic[i], refined[i]] for i in range(min(8, args.n))]
        order = np.argsort(dist)[:3]
        rows += [[small[i], refined[i], bank_image(train_crops, idx[i])] for i in order]
        data.write_png(Path(args.strip), refiner.strip(rows))
        figures["strip"] = args.strip + (" (8 keyframes: input x4 | bicubic | refined; then "
                                         "the 3 closest to a training crop: input | refined "
                                         "| that crop)")
    import json

    print(json.dumps(figures, indent=1))
    return 0


def bank_image(train_crops: np.ndarray, i: int) -> np.ndarray:
    n = len(train_crops)
    return train_crops[i] if i < n else train_crops[i - n][:, ::-1]


if __name__ == "__main__":
    sys.exit(main())
