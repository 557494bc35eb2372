"""A taste: what the artist keeps, learned from ratings, as a bias of the traversal.

Model: a tiny MLP (nz -> HIDDEN tanh -> 1) in numpy, trained in about a second on
CPU by full-batch Adam on a class-balanced, weighted logistic loss: a rating > 0
(keep +1, favourite +2, counted twice) is "kept", < 0 (reject -1) is not, 0 is
ignored. `score(z)` is the probability that the artist keeps latent z (0..1).
Saved as .npz without pickle (np.load(allow_pickle=False)); ratings storage (SQLite)
is the curate tool's; this module takes arrays.

Bias (the stream's candidate choice, stream.py): each step the traversal offers K
candidate latents; with strength s in 0..1 the stream takes

    argmax_k  TILT s score(z_k) - NOVELTY_PULL log((1 + visits_k) / (1 + min visits)) + g_k

with g_k Gumbel noise drawn counter-based from (seed, step): a soft choice, each
candidate with probability ~ exp(TILT s score - novelty penalty). The score is
bounded (0..1), so the tilt of the walk's law is too (at most e^TILT, ~55 at full
strength): the walk is pushed towards what was kept, but every candidate is still
an ordinary step of the prior walk and the least-visited places keep their pull.
Strength 0 leaves novelty's own choice untouched.
"""
from __future__ import annotations

import io
import json
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from passersby.common.config import TraversalConfig
from passersby.common.errors import UserError

log = logging.getLogger(__name__)

HIDDEN = 16
TILT = 4.0           # log of the largest density ratio the taste may impose on the walk
NOVELTY_PULL = 2.0   # how much one log-unit of extra visits weighs against the taste
KIND = "passersby-taste-v1"
FIX = "or set traversal.taste_model: null"


class TasteError(UserError):
    """A taste model file that cannot be used; the message names it and the fix."""


@dataclass
class TasteModel:
    w1: np.ndarray                 # [nz,H] f32
    b1: np.ndarray                 # [H] f32
    w2: np.ndarray                 # [H] f32
    b2: float
    meta: dict = field(default_factory=dict)

    @property
    def nz(self) -> int:
        return int(self.w1.shape[0])

    def logit(self, z: np.ndarray) -> np.ndarray:
        """z [..., nz] -> [...] log-odds of keeping."""
        h = np.tanh(np.asarray(z, np.float32) @ self.w1 + self.b1)
        return h @ self.w2 + self.b2

    def score(self, z: np.ndarray) -> np.ndarray:
        """z [..., nz] (or [nz]) -> probability of keeping [...] f32 in 0..1."""
        return (1.0 / (1.0 + np.exp(-np.clip(self.logit(z), -30, 30)))).astype(np.float32)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.savez(buf, kind=np.array(KIND), w1=self.w1, b1=self.b1, w2=self.w2,
                 b2=np.array([self.b2], np.float32), meta=np.array(json.dumps(self.meta)))
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(buf.getvalue())
        tmp.replace(path)
        return path


def load(path: str | Path, nz: int | None = None,
         generator_sha256: str | None = None) -> TasteModel:
    """Raises TasteError naming the file and the fix when it is missing or unusable, or
    was learnt from the pictures of another generator (`meta["generator_sha256"]`: a
    taste maps one world's latents; in another world the same latent is someone else)."""
    path = Path(path).expanduser()
    try:
        with np.load(path, allow_pickle=False) as d:
            if str(d["kind"]) != KIND:
                raise ValueError(f"kind {str(d['kind'])!r}, expected {KIND!r}")
            m = TasteModel(d["w1"].astype(np.float32), d["b1"].astype(np.float32),
                           d["w2"].astype(np.float32), float(d["b2"][0]),
                           json.loads(str(d["meta"])))
    except FileNotFoundError:
        raise TasteError(f"traversal.taste_model = {path}: no such file; train a taste model "
                         f"from your ratings (passersby.generator.taste.train(latents, ratings)"
                         f".save("
                         f"path)) {FIX}") from None
    except (OSError, ValueError, KeyError, IndexError, zipfile.BadZipFile) as e:
        raise TasteError(f"traversal.taste_model = {path}: not a usable taste model ({e}); "
                         f"train it again from your ratings {FIX}") from None
    h = m.w1.shape[1] if m.w1.ndim == 2 else -1
    if m.b1.shape != (h,) or m.w2.shape != (h,):
        raise TasteError(f"traversal.taste_model = {path}: inconsistent layer shapes; "
                         f"train it again from your ratings {FIX}")
    if nz is not None and m.nz != nz:
        raise TasteError(f"traversal.taste_model = {path}: made for latents of {m.nz} numbers, "
                         f"this generator's have {nz}; train one from ratings of this "
                         f"generator's images {FIX}")
    made_for = m.meta.get("generator_sha256")
    if generator_sha256 and made_for and made_for != generator_sha256:
        raise TasteError(f"traversal.taste_model = {path}: learnt from ratings of another "
                         f"world's pictures (generator {made_for[:12]}..., this one is "
                         f"{generator_sha256[:12]}...); rate this world's pictures and train "
                         f"a taste from them {FIX}")
    return m


def from_config(cfg: TraversalConfig, nz: int,
                generator_sha256: str | None = None) -> TasteModel | None:
    """The model the config names (checked now, at start, against this world), or None."""
    if cfg.taste_model is None:
        if cfg.taste > 0:
            log.warning("traversal.taste = %s but traversal.taste_model is null: no taste bias",
                        cfg.taste)
        return None
    return load(cfg.taste_model, nz, generator_sha256)


def stamp(cfg: TraversalConfig) -> tuple:
    """What identifies the model the config names: (path, mtime, size) or (None,)."""
    if cfg.taste_model is None:
        return (None,)
    path = Path(cfg.taste_model).expanduser()
    try:
        st = path.stat()
    except OSError:
        return (str(path), None)
    return (str(path), st.st_mtime_ns, st.st_size)


def train(latents: np.ndarray, ratings: np.ndarray, steps: int = 400, lr: float = 0.02,
          decay: float = 1e-3, seed: int = 0) -> TasteModel:
    """latents [N,nz], ratings [N] (-1 reject, +1 keep, +2 favourite; 0 ignored)."""
    z = np.asarray(latents, np.float64)
    r = np.asarray(ratings, np.float64).reshape(-1)
    if z.ndim != 2 or len(z) != len(r):
        raise ValueError(f"latents {z.shape} and ratings {r.shape} do not match")
    keep = r != 0
    z, r = z[keep], r[keep]
    y = (r > 0).astype(np.float64)
    if y.min() == y.max():
        raise ValueError("a taste needs both kept and rejected images among the ratings")
    wt = np.abs(r) / np.where(y > 0, np.abs(r[y > 0]).sum(), np.abs(r[y <= 0]).sum())
    wt /= wt.sum()
    g = np.random.default_rng(seed)
    params = [g.standard_normal((z.shape[1], HIDDEN)) / np.sqrt(z.shape[1]),
              np.zeros(HIDDEN), g.standard_normal(HIDDEN) / np.sqrt(HIDDEN), np.zeros(1)]
    m1 = [np.zeros_like(p) for p in params]
    m2 = [np.zeros_like(p) for p in params]
    for t in range(1, steps + 1):
        w1, b1, w2, b2 = params
        h = np.tanh(z @ w1 + b1)                          # [N,H]
        p = 1 / (1 + np.exp(-np.clip(h @ w2 + b2[0], -30, 30)))
        e = wt * (p - y)                                  # d loss / d logit
        dh = np.outer(e, w2) * (1 - h * h)
        grads = [z.T @ dh + decay * w1, dh.sum(0), h.T @ e + decay * w2, np.array([e.sum()])]
        for i, gr in enumerate(grads):  # Adam
            m1[i] = 0.9 * m1[i] + 0.1 * gr
            m2[i] = 0.999 * m2[i] + 0.001 * gr * gr
            params[i] -= lr * (m1[i] / (1 - 0.9 ** t)) / (np.sqrt(m2[i] / (1 - 0.999 ** t)) + 1e-8)
    w1, b1, w2, b2 = params
    model = TasteModel(w1.astype(np.float32), b1.astype(np.float32), w2.astype(np.float32),
                       float(b2[0]))
    acc = float(np.mean((model.score(z) > 0.5) == (y > 0)))
    model.meta = {"ratings": len(y), "kept": int(y.sum()), "train_accuracy": round(acc, 4)}
    return model


def choose(scores: np.ndarray, visits: np.ndarray, strength: float, gumbel: np.ndarray) -> int:
    """Index of the candidate to take: scores [K] 0..1, visits [K] novelty counts, gumbel [K]."""
    v = visits.astype(np.float64)
    penalty = NOVELTY_PULL * np.log((1 + v) / (1 + v.min()))
    return int(np.argmax(TILT * strength * scores - penalty + gumbel))
