"""`passersby train measure`: is a generator package a world? Three yardsticks.

- **Faces.** The share of generated pictures in which OpenCV's frontal-face Haar
  cascade finds a face (`passersby.generator.faces.has_face`), next to the same share on the real
  crops. The cascade alone is lenient (it finds "faces" in streaky, broken pictures),
  so a stricter variant also asks for eyes: a face box in which OpenCV's eye cascade
  (`haarcascade_eye`) finds at least one (`eyes1`) or two (`eyes2`) eyes in the upper
  two thirds. The bar is on `eyes1`: generated >= 0.8 x real.
- **Memorisation.** Feature: the picture shrunk to 32x32 colour (area average), each
  picture normalised to zero mean and unit standard deviation over its 3,072 values;
  distance: the RMS difference of two features (0 = same picture up to brightness
  and contrast; unrelated pictures ~1.2-1.4). For each sample, the nearest training
  crop, the crop mirrored included. Threshold: the 99th percentile of the distance of
  each crop to a near copy of itself (shifted by up to 1 px, scaled by up to 2 %,
  brightness, contrast and per-channel gain jittered by up to 10 %, 10 % and 5 %).
  (On the 1,003 Met crops it is ~0.39, and every crop is farther than that from
  every other crop.)
  The bar: >= 99 % of samples farther than it from every crop. The ten closest
  sample/crop pairs go to a PNG sheet (`--sheet`).
- **Diversity.** The mean pairwise distance of the samples over that of as many real
  crops, same feature; a collapsed generator (one face) gives ~0. The bar: >= 0.8.
- **Texture** (reported, no bar): the mean absolute Laplacian of the grey pictures
  (fine detail: 1 px streaks, grid noise, brushwork) over that of the real crops;
  well above 1 is noise the crops do not have, well below 1 is blur.

Everything is seeded: the same package and data give the same figures.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from passersby.generator.copies import features

FEATURE = ("32x32 RGB (area average), per-picture zero mean / unit std over its 3,072 "
           "values; distance = RMS difference")
NEAR_COPY = ("the crop shifted by up to 1 px, scaled by up to 2 %, brightness +-10 %, "
             "contrast +-10 %, per-channel gain +-5 %")
BAR = {"faces_eyes1_ratio": 0.8, "not_memorised": 0.99, "diversity_ratio": 0.8}
# at most: the samples' fine detail (|Laplacian|) over the crops'. Above it the samples
# carry noise the paintings do not have: a world trained 25 min from scratch scored 1.39
# (crude, speckled faces that every face rate above passed), the streaky fine-tune 1.25
BAR_AT_MOST = {"texture_ratio": 1.2}


# -- features ------------------------------------------------------------------------

def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Features [N,D], [M,D] -> [N,M] RMS differences."""
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(sq, 0.0) / a.shape[1]).astype(np.float32)


def near_copies(images: np.ndarray, seed: int = 0) -> np.ndarray:
    """[N,S,S,3] uint8 -> the same pictures slightly moved and re-coloured (NEAR_COPY)."""
    rng = np.random.default_rng(seed)
    out = []
    for im in images:
        s = im.shape[0]
        scale = 1 + rng.uniform(-0.02, 0.02)
        dx, dy = rng.uniform(-1, 1, 2) * s / 64
        # output (x, y) <- input (a x + c, b y + f): a zoom about the centre plus a shift
        a = 1 / scale
        c = (s / 2) * (1 - a) + dx
        f = (s / 2) * (1 - a) + dy
        moved = np.asarray(Image.fromarray(im).transform(
            (s, s), Image.AFFINE, (a, 0, c, 0, a, f), resample=Image.BILINEAR,
            fillcolor=None), np.float32)
        # the border left by the shift: replicate the nearest row/column
        moved = _fill_border(moved, im.astype(np.float32), int(math.ceil(abs(dx) + s * 0.02)),
                             int(math.ceil(abs(dy) + s * 0.02)))
        mean = moved.mean()
        moved = (moved - mean) * (1 + rng.uniform(-0.1, 0.1)) + mean          # contrast
        moved = moved * (1 + rng.uniform(-0.1, 0.1))                          # brightness
        moved = moved * (1 + rng.uniform(-0.05, 0.05, 3))                     # channel gain
        out.append(np.clip(moved, 0, 255).round().astype(np.uint8))
    return np.stack(out)


def _fill_border(moved: np.ndarray, original: np.ndarray, bx: int, by: int) -> np.ndarray:
    """Pixels the affine left black at the edges take the original's values there."""
    s = moved.shape[0]
    mask = np.zeros((s, s), bool)
    if bx:
        mask[:, :bx] = mask[:, s - bx:] = True
    if by:
        mask[:by, :] = mask[s - by:, :] = True
    empty = mask & (moved.sum(2) == 0)
    moved[empty] = original[empty]
    return moved


def near_copy_distances(crops: np.ndarray, seed: int = 0, fc: np.ndarray | None = None
                        ) -> np.ndarray:
    """[M] each crop's distance to its own near copy (NEAR_COPY): the scale of "a copy"."""
    fc = features(crops) if fc is None else fc
    return np.sqrt(((features(near_copies(crops, seed)) - fc) ** 2).mean(1))


# -- the three measures --------------------------------------------------------------

def memorisation(samples: np.ndarray, crops: np.ndarray, seed: int = 0) -> dict:
    """samples [N,S,S,3], crops [M,S,S,3] uint8 -> figures (and, under "_pairs", the
    (sample index, crop index, mirrored, distance) of every sample, closest first)."""
    fs, fc = features(samples), features(crops)
    fm = features(crops[:, :, ::-1].copy())
    d, dm = distances(fs, fc), distances(fs, fm)
    best_plain, best_mirror = d.min(1), dm.min(1)
    mirrored = best_mirror < best_plain
    nearest = np.where(mirrored, best_mirror, best_plain)
    index = np.where(mirrored, dm.argmin(1), d.argmin(1))
    copies = near_copy_distances(crops, seed, fc)
    threshold = float(np.percentile(copies, 99))
    real = distances(fc, fc)
    np.fill_diagonal(real, np.inf)
    order = np.argsort(nearest)
    return {
        "feature": FEATURE, "near_copy": NEAR_COPY,
        "threshold": round(threshold, 4),
        "threshold_from": "99th percentile of crop-to-near-copy distances",
        "near_copy_median": round(float(np.median(copies)), 4),
        "fraction_farther": round(float(np.mean(nearest > threshold)), 4),
        "nearest_min": round(float(nearest.min()), 4),
        "nearest_median": round(float(np.median(nearest)), 4),
        "real_to_other_real_median": round(float(np.median(np.min(real, 1))), 4),
        "_pairs": [(int(i), int(index[i]), bool(mirrored[i]), float(nearest[i]))
                   for i in order],
    }


def diversity(samples: np.ndarray, crops: np.ndarray, seed: int = 0) -> dict:
    """Mean pairwise distance of the samples over that of as many crops (drawn at random)."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(crops), min(len(samples), len(crops)), replace=False)

    def spread(images: np.ndarray) -> float:
        d = distances(f := features(images), f)
        n = len(images)
        return float(d.sum() / max(n * (n - 1), 1))

    gen, real = spread(samples), spread(crops[pick])
    return {"samples_mean_pairwise": round(gen, 4), "real_mean_pairwise": round(real, 4),
            "ratio": round(gen / real, 4) if real > 0 else 0.0}


def texture(samples: np.ndarray, crops: np.ndarray) -> dict:
    """Mean |Laplacian| of the grey pictures, samples over crops."""
    def fine(images: np.ndarray) -> float:
        g = images.astype(np.float32).mean(3)
        lap = (4 * g[:, 1:-1, 1:-1] - g[:, :-2, 1:-1] - g[:, 2:, 1:-1]
               - g[:, 1:-1, :-2] - g[:, 1:-1, 2:])
        return float(np.abs(lap).mean())

    gen, real = fine(samples), fine(crops)
    return {"samples_laplacian": round(gen, 3), "real_laplacian": round(real, 3),
            "ratio": round(gen / real, 4) if real > 0 else 0.0}


def face_and_eyes(image: np.ndarray, upscale: int = 256) -> tuple[bool, int]:
    """image [S,S,3] uint8 RGB -> (a frontal face found, most eyes found in one face).
    The face search is `passersby.generator.faces.has_face`'s (replicated border of 1/8, faces
    of at least a quarter of the picture); eyes are looked for in the upper two thirds
    of each face box, at least 1/8 of the box wide."""
    from passersby.generator.faces import EYE, cascade, framed

    face_cascade, eye_cascade = cascade(), cascade(EYE)
    big, small = framed(image, upscale), framed(image, 128)
    found = face_cascade.detectMultiScale(small, scaleFactor=1.1, minNeighbors=4,
                                          minSize=(32, 32))
    eyes_most, k = 0, upscale / 128
    for x, y, w, h in found:
        x0, y0, w0, h0 = (int(round(v * k)) for v in (x, y, w, h))
        region = big[y0:y0 + h0 * 2 // 3, x0:x0 + w0]
        eyes = eye_cascade.detectMultiScale(region, scaleFactor=1.1, minNeighbors=3,
                                            minSize=(max(8, w0 // 8),) * 2,
                                            maxSize=(w0 // 2, w0 // 2))
        eyes_most = max(eyes_most, len(eyes))
    return len(found) > 0, eyes_most


def face_rates(images: np.ndarray) -> dict:
    """[N,S,S,3] uint8 -> shares with a face (haar), with >= 1 eye in it, with >= 2."""
    found = [face_and_eyes(im) for im in images]
    n = max(len(found), 1)
    return {"haar": round(sum(f for f, _ in found) / n, 4),
            "eyes1": round(sum(e >= 1 for _, e in found) / n, 4),
            "eyes2": round(sum(e >= 2 for _, e in found) / n, 4)}


def measure(samples: np.ndarray, crops: np.ndarray, seed: int = 0,
            faces: bool = True) -> dict:
    """All figures for samples [N,S,S,3] against the training crops [M,S,S,3] (uint8)."""
    out: dict = {"samples": len(samples), "crops": len(crops)}
    if faces:
        gen, real = face_rates(samples), face_rates(crops)
        out["faces"] = {"generated": gen, "real": real,
                        "ratio": {k: round(gen[k] / real[k], 4) if real[k] else 0.0
                                  for k in gen}}
    out["memorisation"] = memorisation(samples, crops, seed)
    out["diversity"] = diversity(samples, crops, seed)
    out["texture"] = texture(samples, crops)
    checks = {"not_memorised": out["memorisation"]["fraction_farther"],
              "diversity_ratio": out["diversity"]["ratio"]}
    if faces:
        checks["faces_eyes1_ratio"] = out["faces"]["ratio"]["eyes1"]
    out["bar"] = {k: {"value": v, "at_least": BAR[k], "ok": v >= BAR[k]}
                  for k, v in checks.items()}
    ratio = out["texture"]["ratio"]
    out["bar"]["texture_ratio"] = {"value": ratio, "at_most": BAR_AT_MOST["texture_ratio"],
                                   "ok": ratio <= BAR_AT_MOST["texture_ratio"]}
    out["meets_bar"] = all(c["ok"] for c in out["bar"].values())
    return out


def _pretrained_bar(figures: dict) -> None:
    """Issue 14's bar on the identity and fidelity figures, into figures['bar']. The
    identity figures count only on pictures about as sharp as the crops (texture >= 0.8x):
    the descriptor reads a blur as more sitters (bench/crowd_prior.py: G at 0.6 x z has
    half the crops' fine detail and 0.67x the same-person pairs of G at z)."""
    ident, fid = figures["identity"], figures["fidelity"]
    checks = {
        "identity_mean_distance_ratio": (ident["ratio_mean_distance"], ">=", 0.9),
        "same_person_share_ratio": (ident["ratio_same_person"], "<=", 2.0),
        "texture_ratio_for_identity": (figures["texture"]["ratio"], ">=", 0.8),
        "frechet_ratio": (fid["ratio_frechet"], "<=", 2.0),
        "recall": (fid["generated_vs_half"]["recall"], ">=", 0.4),
        "precision": (fid["generated_vs_half"]["precision"], ">=", 0.6),
    }
    for name, (value, op, bound) in checks.items():
        ok = value >= bound if op == ">=" else value <= bound
        figures["bar"][name] = {"value": value, ("at_least" if op == ">=" else "at_most"): bound,
                                "ok": ok}
    figures["meets_bar"] = all(c["ok"] for c in figures["bar"].values())


# -- pictures ------------------------------------------------------------------------

def pair_sheet(samples: np.ndarray, crops: np.ndarray, pairs: list, path: Path,
               count: int = 10, scale: int = 2) -> None:
    """The `count` closest (sample, crop) pairs side by side, two pairs a row, each
    picture `scale` x; a mirrored crop is shown mirrored (as it was compared)."""
    from passersby.train import data

    tiles = []
    for i, j, mirrored, _ in pairs[:count]:
        crop = crops[j][:, ::-1] if mirrored else crops[j]
        for im in (samples[i], crop):
            tiles.append(np.asarray(Image.fromarray(np.ascontiguousarray(im)).resize(
                (im.shape[1] * scale, im.shape[0] * scale), Image.NEAREST)))
    path.parent.mkdir(parents=True, exist_ok=True)
    data.write_png(path, data.grid(tiles, columns=4))


def generate(root: Path, package: str, count: int, seed: int = 0,
             device: str = "cpu") -> np.ndarray:
    """`count` pictures [N,S,S,3] uint8 of a generator package, z ~ N(0, I) seeded."""
    import torch

    from passersby.generator import weights
    from passersby.generator.chain import pick_device, to_uint8

    dev = pick_device(device, "--device")
    g, _ = weights.load_module(root, package, "generator")
    g = g.float().to(dev).eval()
    gen = torch.Generator().manual_seed(seed)
    out = []
    with torch.inference_mode():
        for start in range(0, count, 250):
            z = torch.randn(min(250, count - start), g.nz, generator=gen)
            out.append(to_uint8(g(z.to(dev))))
    return np.concatenate(out)


def _as_shown(root: Path, package: str, samples: np.ndarray, memorised: dict) -> dict | None:
    """With the package's copy guard (generator/copies.py): the share of samples it drops,
    and the share of those it keeps that this measure calls not memorised (the world as
    the stream shows it); None when the package has no guard."""
    from passersby.generator import weights

    guard = weights.load_guard(root, package, weights.read_manifest(root, package))
    if guard is None:
        return None
    dropped = np.array([guard.copies(im) for im in samples])
    nearest = np.empty(len(samples))
    for i, _, _, d in memorised["_pairs"]:
        nearest[i] = d
    kept = nearest[~dropped]
    return {"threshold": guard.threshold, "dropped": round(float(dropped.mean()), 4),
            "not_memorised_as_shown": round(float(np.mean(kept > memorised["threshold"])), 4)
            if len(kept) else 0.0}


def run(root: Path, package: str, dataset: Path, count: int = 1000, seed: int = 0,
        sheet: Path | None = None, device: str = "cpu", pretrained: bool = True) -> dict:
    """Measure a package against the crops of DATASET; figures as a JSON-able dict."""
    from passersby.train import data

    crops, _ = data.load_crops(dataset, 64)
    samples = generate(root, package, count, seed, device)
    if samples.shape[1] != crops.shape[1]:
        crops, _ = data.load_crops(dataset, samples.shape[1])
    figures = measure(samples, crops, seed)
    if pretrained:
        from passersby.train import yardsticks

        try:
            figures.update(yardsticks.measure(samples, crops, seed, cache=dataset))
        except yardsticks.YardstickUnavailable as e:
            raise data.DataError(f"{e} (or give --no-pretrained for the other figures)") from None
        _pretrained_bar(figures)
    guarded = _as_shown(root, package, samples, figures["memorisation"])
    if guarded is not None:
        figures["copy_guard"] = guarded
        figures["bar"]["not_memorised_as_shown"] = {
            "value": guarded["not_memorised_as_shown"], "at_least": 1.0,
            "ok": guarded["not_memorised_as_shown"] >= 1.0}
        figures["meets_bar"] = all(c["ok"] for c in figures["bar"].values())
    pairs = figures["memorisation"].pop("_pairs")
    figures["memorisation"]["closest"] = [
        {"sample": i, "crop": j, "mirrored": m, "distance": round(d, 4)}
        for i, j, m, d in pairs[:10]]
    if sheet is not None:
        pair_sheet(samples, crops, pairs, sheet)
        figures["sheet"] = str(sheet)
    return {"weights": package, "data": str(dataset), "seed": seed, **figures}
