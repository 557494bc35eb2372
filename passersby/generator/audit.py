"""`passersby audit`: run the traversal and the chain headless and measure the stream.

Every generated keyframe counts as shown (no display lag). Figures (images are the
64 px uint8 RGB keyframes; "change" is the mean absolute pixel difference, 0..255):
- near_duplicates: pairs of shown keyframes farther apart than the likeness window
  (stream.likeness_window: the morph window or the walk's correlation time, whichever
  is longer; 20 keyframes = 5 s by default) whose perceptual distance (novelty.fingerprint:
  normalised 16x16 grey thumbnails, RMS difference) is below NEAR_DUPLICATE;
  closest_pairs: the ten closest such pairs below 2 x NEAR_DUPLICATE, [step, step,
  distance]; with a sheet path, a PNG of them side by side (regenerated from their latents);
- face_rate_stream / face_rate_random: the Haar yardstick's hit rate on every
  `face_every`-th keyframe versus on as many random samples of the generator;
- change_per_s (and stranger_change: two independent random samples, for scale);
- longest_freeze_s: longest run of consecutive keyframes each changing less than
  FREEZE_CHANGE, in seconds of display time;
- diversity: mean pairwise distance of sampled keyframes (16x16 grey thumbnails)
  over that of random samples (1.0 = as varied as the generator itself);
- sitter_repeats: the same, of who is on screen: the sitter (the chain's identity
  descriptor, generator/identity.py) of one shown keyframe in `sitter_every` (by
  default the memory's own rate: every keyframe at 4/s; with a sparser rate, on the
  steps between its readings), read and compared exactly, pairs more than
  the sitter window apart closer than novelty.SITTER_REPEAT; closest_sitters: the ten
  closest such pairs below 2 x SITTER_REPEAT (drawn like closest_pairs). Null when
  the chain has no identity package (weights.identity: null); sitter_repeats_escaped:
  the sitters the memory caught and left; sitter_repeats_kept: those it caught but
  showed, the window's leaps being spent (novelty.SITTER_LEAPS + FRESH_LEAPS a
  sitter window);
- with restart_every=K: every K shown keyframes the stream is dropped without a
  final save (a power cut) and resumed from the state folder; steps must rise.
"""
from __future__ import annotations

import importlib.util
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from passersby.common import rng, state
from passersby.common.config import Config
from passersby.common.errors import UserError
from passersby.common.novelty import (
    MEMORY_FILE,
    NEAR_DUPLICATE,
    SITTER_FILE,
    SITTER_REPEAT,
    fingerprint,
    thumbnail,
)
from passersby.generator import faces
from passersby.generator.chain import Chain, to_uint8
from passersby.generator.stream import Keeper, Stream, sitter_every, sitter_window
from passersby.generator.traversal.modes import likeness_window

FREEZE_CHANGE = 0.5  # mean |difference| on 0..255 below which a step counts as frozen
# what the audit imports beyond the player: the project's [audit] extra (pyproject.toml)
NEEDS = (("cv2", "opencv-python-headless<5"),)


def require_extra() -> None:
    """The audit's own package (the face yardstick) is there, or a UserError
    naming the missing ones and the extra that brings them (a player-only install)."""
    missing = [req for module, req in NEEDS if importlib.util.find_spec(module) is None]
    if missing:
        quoted = " ".join(f"'{req}'" for req in missing)
        raise UserError(f"passersby audit needs {', '.join(missing)}, not installed here "
                        f"(a player-only install); install the project's [audit] extra: "
                        f"pip install -e '.[audit]' in the checkout, or pip install {quoted} "
                        f"into the environment passersby runs from")


def spread(t: np.ndarray, pairs: int = 4000, seed: int = 0) -> float:
    """Mean distance of random pairs of thumbnails; 0 with fewer than two (no pair: a
    short audit must not report a NaN)."""
    if len(t) < 2:
        return 0.0
    r = np.random.default_rng(seed)
    i, j = r.integers(0, len(t), pairs), r.integers(0, len(t), pairs)
    keep = i != j
    return float(np.linalg.norm(t[i[keep]] - t[j[keep]], axis=1).mean())


def random_samples(chain: Chain, n: int, seed: int = 12345, batch: int = 64) -> np.ndarray:
    out = [to_uint8(chain.generate(np.stack([rng.normal(seed, k, chain.nz, stream=7)
                                            for k in range(s, min(n, s + batch))])))
           for s in range(0, n, batch)]
    return np.concatenate(out) if out else np.zeros((0, 64, 64, 3), np.uint8)


def near_duplicates(fps: np.ndarray, window: int, steps: np.ndarray | None = None
                    ) -> tuple[int, list]:
    """fps [N,256] fingerprints in display order -> (pairs below NEAR_DUPLICATE more than
    `window` apart, the ten closest pairs below 2 x NEAR_DUPLICATE as [i, j, distance],
    closest first; i and j are indices, or steps when `steps` is given)."""
    x = fps.astype(np.float32) / np.sqrt(fps.shape[1])  # RMS difference = L2 of these
    return near_pairs(x, np.arange(len(x)), window, NEAR_DUPLICATE,
                      None if steps is None else np.asarray(steps))


def near_pairs(x: np.ndarray, where: np.ndarray, window: int, below: float,
               names: np.ndarray | None = None, block: int = 1 << 22) -> tuple[int, list]:
    """x [N,D] points (L2 distance), `where` [N] their positions: (pairs closer than
    `below` more than `window` positions apart, the ten closest below 2 x `below` as
    [name, name, distance], closest first; names are indices unless `names` is given).
    Exhaustive, not sampled, and bounded in memory: rows are compared with every later
    row a block at a time (about `block` distances held at once, whatever the stream),
    so a 200,000-keyframe audit needs no more than a short one. Distances come from the
    Gram form in float32; those within its rounding of `below`, and the ten shown, are
    re-read in float64."""
    n = len(x)
    if n < 2:
        return 0, []
    x = x.astype(np.float32)
    x = x - x.mean(axis=0)               # centred: the Gram form loses fewer digits
    sq = (x.astype(np.float64) ** 2).sum(axis=1).astype(np.float32)
    where = np.asarray(where, np.int64)
    slack = 1e-3 + 1e-5 * float(sq.max())  # float32 rounding of |a|^2 + |b|^2 - 2ab
    low, far = below ** 2, (2 * below) ** 2  # pairs beyond `far` can neither count nor show

    def exact(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return np.sqrt(((x[i].astype(np.float64) - x[j]) ** 2).sum(axis=1))

    rows = max(1, block // n)
    count, best = 0, np.zeros((0, 3))    # best: [i, j, distance], the closest so far
    for a in range(0, n - 1, rows):
        b = min(n - 1, a + rows)
        d2 = sq[a:b, None] + sq[None, a + 1:] - 2 * (x[a:b] @ x[a + 1:].T)
        if len(best) == 10:  # nor can one farther than the tenth closest so far show
            far = max(low, min(far, float(best[9, 2]) ** 2))
        i, j = np.nonzero(d2 < far + slack)
        v = d2[i, j]
        i, j = i + a, j + a + 1
        keep = (j > i) & (np.abs(where[i] - where[j]) > window)
        i, j, v = i[keep], j[keep], v[keep]
        edge = np.abs(v - low) <= slack
        count += int((v[~edge] < low).sum()) + int((exact(i[edge], j[edge]) < below).sum())
        top = np.arange(len(v))
        if len(v) > 10:  # the ten closest, ties in the order found (as a stable sort would)
            top = np.flatnonzero(v <= np.partition(v, 9)[9])
        top = top[np.argsort(v[top], kind="stable")[:10]]
        d = exact(i[top], j[top])
        near = d < 2 * below
        best = np.concatenate([best, np.stack([i[top][near], j[top][near], d[near]], axis=1)])
        best = best[np.argsort(best[:, 2], kind="stable")[:10]]
    pairs = best[:, :2].astype(np.int64)
    named = pairs if names is None else np.asarray(names)[pairs]
    closest = [[int(p), int(q), round(float(v), 4)] for (p, q), v in zip(named, best[:, 2])]
    return count, closest


def pairs_sheet(chain: Chain, zs: dict[int, np.ndarray], pairs: list, path: Path) -> Path:
    """A PNG, one row per pair: the two keyframes side by side (4x), steps and distance."""
    from PIL import Image, ImageDraw

    s, pad = chain.size * 4, 8
    sheet = Image.new("RGB", (2 * s + 3 * pad, max(1, len(pairs)) * (s + 24) + pad), (24, 22, 20))
    draw = ImageDraw.Draw(sheet)
    for r, (a, b, d) in enumerate(pairs):
        ims = to_uint8(chain.generate(np.stack([zs[a], zs[b]])))
        y = pad + r * (s + 24)
        for c, im in enumerate(ims):
            sheet.paste(Image.fromarray(im).resize((s, s), Image.NEAREST), (pad + c * (s + pad), y))
        draw.text((pad, y + s + 4), f"steps {a} and {b}: distance {d:.4f}", fill=(230, 220, 200))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


class _Recorder:
    def __init__(self, steps: int, face_every: int, chain: Chain, every: int) -> None:
        self.identity, self.sitter_every = chain.identity, every
        self.sitters: list[np.ndarray] = []   # descriptors of one keyframe in `every`
        self.sitter_steps: list[int] = []
        self.fps = np.zeros((steps, 256), np.float16)
        self.zs: np.ndarray | None = None  # latents, to show the closest pairs afterwards
        self.steps = np.zeros(steps, np.int64)
        self.changes = np.zeros(steps, np.float32)
        self.sampled: list[np.ndarray] = []
        self.face_every, self.n, self.prev = face_every, 0, None
        self.run, self.longest, self.last_step, self.backwards = 0, 0, -1, 0

    def add(self, step: int, image: np.ndarray, z: np.ndarray,
            read: tuple[int, np.ndarray] | None = None) -> None:
        """One shown keyframe. `read`: the stream's own last reading (step, descriptor);
        the same reader on the same picture, so it is taken where its step is this one
        and the picture is read again only where the stream did not read it."""
        if self.zs is None:
            self.zs = np.zeros((len(self.fps), len(z)), np.float32)
        self.zs[self.n] = z
        if self.prev is not None:
            c = float(np.abs(image.astype(np.int16) - self.prev).mean())
            self.changes[self.n] = c
            self.run = self.run + 1 if c < FREEZE_CHANGE else 0
            self.longest = max(self.longest, self.run)
        self.backwards += step <= self.last_step
        self.last_step = step
        self.fps[self.n] = fingerprint(image)
        self.steps[self.n] = step
        if self.n % self.face_every == 0:
            self.sampled.append(image)
        if self.identity is not None and step % self.sitter_every == self.sitter_every // 2:
            self.sitters.append(read[1] if read is not None and read[0] == step
                                else self.identity.read(image[None])[0])
            self.sitter_steps.append(step)
        self.prev, self.n = image, self.n + 1


def refuse_edition(folder: Path) -> None:
    """A measuring command never writes over a place it did not create: the audit starts
    its own stream at step 0 and would overwrite an edition's place and sketch."""
    held = [n for n in (state.CURRENT, state.PREVIOUS, MEMORY_FILE, SITTER_FILE)
            if (folder / n).exists()]
    if held:
        raise UserError(f"--state {folder}: holds an edition ({', '.join(held)}); the audit "
                        f"starts its own stream from step 0 and would overwrite it, so it "
                        f"refuses (nothing was written). Give a new or empty folder, or "
                        f"copy this one and audit the copy")


def run(chain: Chain, cfg: Config, steps: int, seed: int, face_every: int = 5,
        restart_every: int = 0, state_dir: Path | None = None,
        progress: Callable[[int, int], None] | None = None, sheet: Path | None = None,
        every_sitter: int | None = None) -> dict:
    require_extra()
    if state_dir is not None:
        refuse_edition(state_dir)
    kps = cfg.stream.keyframes_per_second
    tmp = tempfile.TemporaryDirectory() if restart_every and state_dir is None else None
    folder = Path(tmp.name) if tmp else state_dir
    keeper = Keeper(state.Saver(folder) if folder else None,
                    round(cfg.stream.save_seconds * kps), cfg.stream.queue)
    every = every_sitter or sitter_every(kps)
    stream, rec, replayed, restarts = Stream(chain, cfg.traversal, kps, seed), \
        _Recorder(steps, face_every, chain, every), 0, 0
    start = time.perf_counter()
    for k in range(steps):
        if restart_every and k and k % restart_every == 0:  # power cut: memory is lost
            stream = Stream(chain, cfg.traversal, kps, seed, state.load(folder))
            replayed += stream.catch_up()
            restarts += 1
        frame = stream.next_frame()
        keeper.after_step(stream)
        rec.add(frame.step, frame.image, frame.z, stream.sitter)
        if progress and (k + 1) % 500 == 0:
            progress(k + 1, steps)
    elapsed = time.perf_counter() - start
    figures = _figures(chain, rec, kps, likeness_window(cfg.traversal, kps))
    figures.update(_sitter_figures(rec, sitter_window(cfg.traversal, kps)))
    where = {int(st): i for i, st in enumerate(rec.steps[:rec.n])}
    for key, name, path in (("closest_pairs", "pairs_sheet", sheet),
                            ("closest_sitters", "sitters_sheet",
                             sheet and sheet.with_suffix(".sitters" + sheet.suffix))):
        if path is not None and figures[key]:
            needed = {st for a, b, _ in figures[key] for st in (a, b)}
            figures[name] = str(pairs_sheet(
                chain, {st: rec.zs[where[st]] for st in needed}, figures[key], path))
    state_bytes = sum((folder / name).stat().st_size
                      for name in (state.CURRENT, MEMORY_FILE, SITTER_FILE)
                      if folder and (folder / name).exists())
    if tmp:
        tmp.cleanup()
    return {"steps": steps, "keyframes_per_second": kps, "seed": f"{seed:032x}",
            "restarts": restarts, "replayed_steps": replayed, "steps_backwards": rec.backwards,
            **figures,
            "novelty_repeats_escaped": stream.novelty.repeats,
            "sitter_repeats_escaped": stream.novelty.sitter_repeats,
            "sitter_repeats_kept": stream.novelty.sitters_kept,
            "near_black_dropped": stream.dark,
            "copies_dropped": stream.copies,
            "state_bytes": state_bytes, "novelty_bytes_in_memory": stream.novelty.nbytes,
            "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "steps_per_s": round((steps + replayed) / elapsed, 2)}


def _sitter_figures(rec: _Recorder, window: int) -> dict:
    if rec.identity is None:
        return {"sitter_repeats": None, "sitter_threshold": SITTER_REPEAT,
                "closest_sitters": [], "sitters_read": 0}
    steps = np.array(rec.sitter_steps, np.int64)
    repeats, closest = near_pairs(np.array(rec.sitters).reshape(len(steps), -1), steps, window,
                                  SITTER_REPEAT, steps)
    return {"sitter_repeats": repeats, "sitter_threshold": SITTER_REPEAT,
            "sitter_window_steps": window, "closest_sitters": closest,
            "sitters_read": len(steps)}


def _figures(chain: Chain, rec: _Recorder, kps: float, window: int) -> dict:
    dups, closest = near_duplicates(rec.fps[:rec.n], window, rec.steps[:rec.n])
    imgs = np.stack(rec.sampled)
    rand = random_samples(chain, len(imgs))
    strangers = np.abs(rand[1:].astype(np.int16) - rand[:-1]).mean() if len(rand) > 1 else 0
    return {
        "near_duplicates": dups, "near_duplicate_threshold": NEAR_DUPLICATE,
        "likeness_window_steps": window, "closest_pairs": closest,
        "face_rate_stream": round(faces.hit_rate(imgs), 4),
        "face_rate_random": round(faces.hit_rate(rand), 4), "faces_sampled": len(imgs),
        "change_per_s": round(float(rec.changes[1:rec.n].mean()) * kps, 3),
        "stranger_change": round(float(strangers), 3),
        "longest_freeze_s": round(rec.longest / kps, 3),
        "diversity": round(spread(thumbnail(imgs)) / max(spread(thumbnail(rand)), 1e-9), 4),
    }
