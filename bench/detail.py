"""Detail energy of the portrait at the screen's own size: today (look.detail 0) vs after.

    .venv/bin/python bench/detail.py [--sizes 1080x1350,2160x2700] [--n 6]
        [--paintings 6] [--crops DIR] [--json]

Detail energy: mean abs difference of Gaussians at sigma 1.5 and 3 output pixels,
on grey 0..255, inside the portrait (its inner 90%, clear of the frame line), with
the grain off, so only structure counts. The keyframes are the default world's,
painted by the refiner (256 px), rendered through the real Pipeline offscreen at
each size with the detail pass off and on. References: Met paintings
(../shared/datasets/met-portraits, read in place, never copied) at their own
resolution and enlarged to 2700 px tall. Also: the cost of painting one keyframe's
detail on this renderer (structure pass + every band, ctx.finish()ed), and with
--crops, side-by-side 1:1 crops (today | after) of the largest size as PNGs.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

# the shared Met portraits beside the repository (../shared), or $PASSERSBY_MET_IMAGES
MET = Path(os.environ.get("PASSERSBY_MET_IMAGES",
                          common.ROOT.parent / "shared" / "datasets" / "met-portraits" / "images"))


def dog_energy(grey: np.ndarray) -> float:
    """Mean |G(1.5) - G(3)| of a [H,W] float image."""
    from scipy.ndimage import gaussian_filter

    return float(np.mean(np.abs(gaussian_filter(grey, 1.5) - gaussian_filter(grey, 3.0))))


def grey(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3].astype(np.float32) @ np.array([0.2126, 0.7152, 0.0722], np.float32)


def inner(img: np.ndarray, box: tuple[int, int, int, int], keep: float = 0.9) -> np.ndarray:
    """The inner `keep` of box (x0, y0, w, h; top-left origin) of img."""
    x0, y0, w, h = box
    mx, my = int(w * (1 - keep) / 2), int(h * (1 - keep) / 2)
    return img[y0 + my:y0 + h - my, x0 + mx:x0 + w - mx]


def keyframes(n: int) -> np.ndarray:
    """n refined keyframes [n,256,256,3] uint8 of the default world."""
    from passersby.common import config
    from passersby.generator import weights
    from passersby.train import refiner

    cfg = config.load(None)
    root = weights.weights_dir(cfg.weights.dir)
    r, _ = weights.load_module(root, cfg.weights.refiner, "refiner")
    return refiner.refine(r, refiner.generator_pictures(root, cfg.weights.generator, n, 2027))


def render(frames: np.ndarray, size: tuple[int, int], detail: float
           ) -> tuple[list[np.ndarray], tuple[int, int, int, int], float]:
    """Each keyframe through the Pipeline at `size`; (pictures, portrait box top-left
    origin, ms to paint one keyframe's detail)."""
    from passersby.common.config import LookConfig
    from passersby.player.display import Offscreen
    from passersby.player.render.pipeline import Pipeline, portrait_rect

    look = dataclasses.replace(LookConfig(), grain=0.0, detail=detail)
    off = Offscreen(size)
    pipe = Pipeline(off.ctx, look, (frames.shape[2], frames.shape[1]))
    out, costs = [], []
    for f in frames:
        pipe.set_keyframes(f, f)
        pipe.render(off.fbo, 1.0, 0.0)
        out.append(off.read().copy())
        if detail > 0:
            off.ctx.finish()
            t0 = time.perf_counter()
            for band in range(pipe.detail_bands()):
                pipe._detail_band(pipe._painted[1], 1, band)
            off.ctx.finish()
            costs.append(time.perf_counter() - t0)
    x, y, w, h = portrait_rect(size, look)
    box = (x, size[1] - y - h, w, h)
    pipe.release()
    off.release()
    return out, box, 1e3 * float(np.median(costs)) if costs else 0.0


def paintings(n: int) -> dict[str, float]:
    from PIL import Image

    files = sorted(MET.glob("*.jpg"))[:: max(1, len(sorted(MET.glob("*.jpg"))) // max(n, 1))][:n]
    own, big = [], []
    for f in files:
        im = Image.open(f).convert("RGB")
        a = np.asarray(im)
        own.append(dog_energy(grey(inner(a, (0, 0, a.shape[1], a.shape[0]), 0.6))))
        scale = 2700 / im.height
        b = np.asarray(im.resize((round(im.width * scale), 2700), Image.BICUBIC))
        big.append(dog_energy(grey(inner(b, (0, 0, b.shape[1], b.shape[0]), 0.6))))
    return {"met_own_resolution": float(np.mean(own)), "met_enlarged_2700": float(np.mean(big)),
            "met_paintings": len(files)}


def crops(today: np.ndarray, after: np.ndarray, box: tuple[int, int, int, int],
          out: Path, index: int, side: int = 360) -> list[Path]:
    """Two 1:1 crops (face, and the edge of the portrait), today | after, as PNGs."""
    from PIL import Image

    x0, y0, w, h = box
    spots = {"face": (x0 + w // 2 - side // 2, y0 + int(h * 0.42) - side // 2),
             "edge": (x0 + int(w * 0.12), y0 + int(h * 0.70))}
    written = []
    for name, (cx, cy) in spots.items():
        a, b = (im[cy:cy + side, cx:cx + side] for im in (today, after))
        sheet = np.concatenate([a, np.full((side, 8, 3), 255, np.uint8), b], axis=1)
        path = out / f"detail-{index}-{name}-today-after.png"
        Image.fromarray(sheet).save(path, optimize=True)
        written.append(path)
    return written


def main() -> None:
    from passersby.common.config import LookConfig

    ap = common.parser(__doc__)
    ap.add_argument("--sizes", default="1080x1350,2160x2700")
    ap.add_argument("--n", type=int, default=6, help="keyframes")
    ap.add_argument("--paintings", type=int, default=6)
    ap.add_argument("--crops", default=None, help="folder for today | after crops")
    args = ap.parse_args()
    frames = keyframes(args.n)
    rows, sizes = [], common.size_list(args.sizes)
    for size in sizes:
        today, box, _ = render(frames, size, 0.0)
        after, _, cost = render(frames, size, LookConfig().detail)
        rows.append({"size": f"{size[0]}x{size[1]}",
                     "today": float(np.mean([dog_energy(grey(inner(p, box))) for p in today])),
                     "after": float(np.mean([dog_energy(grey(inner(p, box))) for p in after])),
                     "detail_ms_per_keyframe": cost})
        if args.crops and size == sizes[-1]:
            out = Path(args.crops)
            out.mkdir(parents=True, exist_ok=True)
            for i in (0, 1):
                for p in crops(today[i], after[i], box, out, i):
                    print(f"wrote {p}")
    common.emit("detail", rows, args.json, paintings(args.paintings) if MET.is_dir() else {})


if __name__ == "__main__":
    main()
