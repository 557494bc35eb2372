"""Novelty memory: where the stream has been, so it goes elsewhere and never repeats.

Three bounded parts (numpy only; < 50 MiB together, in memory and on disk):
- visits: a 16-bit SimHash of the latent (signs of 16 fixed random projections)
  names one of 65,536 cones of latent space; a saturating uint16 count per cone
  remembers how often the stream passed there. Each step the traversal draws a
  few candidate noises and takes the one that lands in the least-visited cone
  (ties: the first, so an unvisited space is walked exactly like the plain prior).
- the picture sketch (Memory, layout PICTURES): a 48-byte code of every keyframe, up
  to 245,760 of them. A new keyframe whose code is close to that of one older than the
  likeness window is a repeat (a fixed point, a limit cycle, or a place visited hours
  ago); the stream drops it unseen and leaps away (stream.py, feedback.py).
- the sitter sketch (Memory, layout SITTERS): who was on screen. The generator reads
  the sitter of one keyframe in SITTER_EVERY_S seconds with an identity descriptor
  (generator/identity.py: a face-recognition network, 128-d, two photos of one person
  usually < 0.6 apart); a sitter closer than SITTER_REPEAT to one seen more than the
  sitter window ago is a repeat, dropped and left like a repeated picture. The picture
  sketch sees layout and lighting: the same sitter in another palette or light is far
  from itself there (0.5-0.7 on the thumbnails), near here (calibrated in
  bench/sitters.py; figures in its docstring).

Perceptual measure of the picture sketch (shared with the audit): 16x16 grey
thumbnail, normalised to zero mean and unit contrast; distance = RMS difference
(identical 0, unrelated faces ~1.2). NEAR_DUPLICATE = 0.12 is below the 1st
percentile of the distance between two consecutive keyframes of the default stream
(0.13 at 4 keyframes/s).

Its code is the fingerprint's 48 lowest-frequency 2-D DCT coefficients (an
orthonormal basis, so the code distance never exceeds the fingerprint distance:
every true near duplicate is caught; they hold ~90% of the thumbnails' variance),
quantised to int8. Escaping below REPEAT_BELOW (the threshold plus a margin for
the quantisation) may also drop a few keyframes that are merely close; that is the
safe side. A sitter's code is its descriptor x 256, int8 (|component| < 0.5; the
quantisation moves a distance by ~0.01).

Bounded for years: when a sketch is full, its older half is thinned to every other
code, so it keeps all of the recent past and an ever sparser sample of the distant
one (density ~ 1/age). Pictures: 245,760 codes = 17 h at 4 keyframes/s before the
first thinning, 13.8 MB; sitters: 262,144 codes = 18 h at 4 readings/s, 35.7 MB (65,536
= 4.5 h until the 200,000-keyframe audit counted sitters shown again 4-12 h apart). On
disk (PICTURES.file, SITTERS.file in the state folder) each is append-only between
thinnings: ~13 KB + ~33 KB a minute; once full, a rewrite of the pictures every ~4 h
and of the sitters every ~4.5 h (bench/flash_writes.py --sketch-days; rewrites cost ~3x
the appends whatever the capacity).
"""
from __future__ import annotations

import io
import logging
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

BITS = 16
NEAR_DUPLICATE = 0.12
REPEAT_BELOW = NEAR_DUPLICATE + 0.01
CODE_DIMS = 48
CODE_SCALE = 8.0       # int8 code = round(DCT coefficient * CODE_SCALE); |coefficient| <= 16
CHUNK = 16_384         # rows per distance pass (cache-sized)
HEADER = 16
SITTER_EVERY_S = 0.25  # one sitter reading in this many seconds of display time: every
                       # keyframe at 4/s (one morph step changes the reading by ~0.24, as
                       # much as SITTER_REPEAT: a keyframe not read may be the repeat)
SITTER_LEAPS = 8       # sitter leaps at most in a sitter window...
FRESH_LEAPS = 2        # ...then this many more, each to an independent latent (FRESH)
LEAP, FRESH = 1, 2     # what observe_sitter asks of the walk (0: show the keyframe)
NEVER = -(1 << 62)     # the step of a leap that never was
SITTER_WINDOW_S = 20.0  # sitters closer in time than this are one morph, never a repeat
SITTER_REPEAT = 0.28   # descriptor distance under which two sitters are one (metcrowd64,
                       # bench/sitters.py): above the same picture re-lit or re-coloured
                       # (pct95 <= 0.13) and most mirrored (median 0.23), under keyframes of
                       # the stream a sitter window apart (pct1 0.41); far-apart pairs of the
                       # 200,000-keyframe audit at 0.22-0.23 are, by eye, one sitter. Cost:
                       # 1.9e-7 of pairs of independent samples are closer (metcrowd64b:
                       # 6.2e-8), so a full memory (262,144 readings) finds a match for ~5 %
                       # of readings (metcrowd64b: 1.6 %)
SITTER_BELOW = SITTER_REPEAT + 0.01  # the memory's codes are quantised: escape with a margin


@dataclass(frozen=True)
class Layout:
    """What a sketch holds and how it is written: codes of `dims` int8 (value x scale),
    distances in the measure's own units (code distance / unit), its file and magic."""
    file: str
    magic: bytes
    dims: int
    scale: float
    unit: float
    capacity: int

    @property
    def record(self) -> np.dtype:
        return np.dtype([("step", "<i8"), ("code", "i1", (self.dims,))])

    def header(self) -> bytes:
        return self.magic + np.array([self.dims, int(self.scale)], "<u2").tobytes() + bytes(4)


PICTURES = Layout("novelty.bin", b"PBYNOV01", CODE_DIMS, CODE_SCALE, CODE_SCALE * 16, 245_760)
SITTERS = Layout("sitters.bin", b"PBYSIT01", 128, 256.0, 256.0, 262_144)
MEMORY_FILE, SITTER_FILE = PICTURES.file, SITTERS.file
CAPACITY = PICTURES.capacity
RECORD = PICTURES.record


def thumbnail(images: np.ndarray) -> np.ndarray:
    """[N,H,W,3] uint8 -> [N,256] f32 16x16 grey thumbnails, 0..1: the mean of each
    (H/16)x(W/16) block (H and W multiples of 16). The one thumbnail of the project:
    the fingerprint normalises it; the audit's diversity measures it as it is."""
    grey = images.astype(np.float32).mean(axis=3) / 255.0
    n, h, w = grey.shape
    return grey.reshape(n, 16, h // 16, 16, w // 16).mean(axis=(2, 4)).reshape(n, 256)


def fingerprint(images: np.ndarray) -> np.ndarray:
    """[N,H,W,3] or [H,W,3] uint8 -> [N,256] or [256] f32 normalised 16x16 grey thumbnails."""
    one = images.ndim == 3
    t = thumbnail(images[None] if one else images)
    t = (t - t.mean(axis=1, keepdims=True)) / (t.std(axis=1, keepdims=True) + 0.02)
    return t[0] if one else t


def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """RMS difference of fingerprints ([...,256] each, broadcast)."""
    return np.sqrt(np.mean((a - b) ** 2, axis=-1))


def _dct_basis() -> np.ndarray:
    """[CODE_DIMS,256] rows of the orthonormal 16x16 2-D DCT-II, lowest frequencies first."""
    k = np.arange(16)
    c = np.sqrt(2 / 16) * np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / 32)
    c[0] /= np.sqrt(2)
    u, v = np.divmod(np.arange(256), 16)
    order = np.lexsort((np.maximum(u, v), u + v))
    return np.kron(c, c)[order[:CODE_DIMS]].astype(np.float32)


BASIS = _dct_basis()


def code(fp: np.ndarray) -> np.ndarray:
    """Fingerprint(s) [...,256] -> int8 codes [...,CODE_DIMS]."""
    return np.clip(np.round(fp @ BASIS.T * CODE_SCALE), -127, 127).astype(np.int8)


def sitter_code(descriptor: np.ndarray) -> np.ndarray:
    """Identity descriptor(s) [...,128] -> int8 codes [...,128]."""
    return np.clip(np.round(descriptor * SITTERS.scale), -127, 127).astype(np.int8)


class Memory:
    """Codes of the keyframes seen, in step order; see the module docstring."""

    def __init__(self, capacity: int | None = None, layout: Layout = PICTURES) -> None:
        self.layout = layout
        capacity = layout.capacity if capacity is None else capacity
        self.steps = np.zeros(capacity, np.int64)
        self.codes = np.zeros((capacity, layout.dims), np.int8)
        self.sq = np.zeros(capacity, np.int32)  # |code|^2
        self.n = 0
        self.saved = 0  # leading records known to be on disk as they are here

    def add(self, step: int, c: np.ndarray) -> None:
        if self.n and step <= self.steps[self.n - 1]:
            return  # already remembered (a replay after a restart)
        if self.n == len(self.steps):
            self._thin()
        self.steps[self.n], self.codes[self.n] = step, c
        self.sq[self.n] = int(np.dot(c.astype(np.int32), c.astype(np.int32)))
        self.n += 1

    def nearest(self, c: np.ndarray, before: int) -> float:
        """Smallest distance (in the measure's units: fingerprint RMS, a lower bound, or
        descriptor distance) from code `c` to the codes of steps < `before`; inf if
        there are none."""
        m = int(np.searchsorted(self.steps[:self.n], before))
        if m == 0:
            return math.inf
        q = c.astype(np.float32)
        best = math.inf
        for s in range(0, m, CHUNK):
            e = min(m, s + CHUNK)
            best = min(best, float((self.sq[s:e] - 2.0 * (self.codes[s:e] @ q)).min()))
        return math.sqrt(max(best + float(q @ q), 0.0)) / self.layout.unit

    def _thin(self) -> None:
        half = self.n // 2
        keep = np.r_[np.arange(1, half, 2), np.arange(half, self.n)]
        k = len(keep)
        self.steps[:k], self.codes[:k], self.sq[:k] = \
            self.steps[keep], self.codes[keep], self.sq[keep]
        self.n, self.saved = k, 0

    @property
    def nbytes(self) -> int:
        return self.steps.nbytes + self.codes.nbytes + self.sq.nbytes

    def records(self, start: int = 0) -> np.ndarray:
        r = np.empty(self.n - start, self.layout.record)
        r["step"], r["code"] = self.steps[start:self.n], self.codes[start:self.n]
        return r


def save_memory(folder: Path, mem: Memory) -> None:
    """Append what is new since the last save; rewrite (atomically) after a thinning.
    The caller fsyncs the folder. Raises OSError."""
    layout = mem.layout
    path, item = folder / layout.file, layout.record.itemsize
    size = path.stat().st_size if path.exists() else -1
    if mem.saved and size >= HEADER + mem.saved * item:
        with open(path, "r+b") as f:
            f.truncate(HEADER + mem.saved * item)
            f.seek(0, os.SEEK_END)
            f.write(mem.records(mem.saved).tobytes())
            f.flush()
            os.fsync(f.fileno())
    else:
        tmp = path.with_name(layout.file + ".tmp")
        with open(tmp, "wb") as f:
            f.write(layout.header() + mem.records().tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    mem.saved = mem.n


def load_memory(folder: Path, before: int, layout: Layout = PICTURES) -> Memory:
    """The codes of steps < `before` from the state folder (what a restart from a state
    at step `before` had seen). A missing, foreign or damaged file gives what is good."""
    mem = Memory(layout=layout)
    path, record = folder / layout.file, layout.record
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        return mem
    except OSError as e:
        log.warning("novelty memory %s is unreadable (%s); starting it afresh", path, e)
        return mem
    if blob[:HEADER] != layout.header():
        log.warning("novelty memory %s has another layout; starting it afresh", path)
        return mem
    n = min((len(blob) - HEADER) // record.itemsize, len(mem.steps))
    r = np.frombuffer(blob, record, n, HEADER)
    bad = np.flatnonzero((np.diff(r["step"]) <= 0) | (r["step"][1:] < 0))
    if len(bad):
        log.warning("novelty memory %s is damaged after record %d; keeping what precedes",
                    path, bad[0])
        r = r[:bad[0] + 1]
    r = r[:int(np.searchsorted(r["step"], before))]
    m = len(r)
    mem.steps[:m], mem.codes[:m] = r["step"], r["code"]
    c = r["code"].astype(np.int32)
    mem.sq[:m] = (c * c).sum(axis=1)
    mem.n = mem.saved = m
    return mem


class Novelty:
    def __init__(self, nz: int, window: int, plane_seed: int = 0x9A55E85B) -> None:
        self.window = window  # steps: younger keyframes are part of the same morph
        self.planes = np.random.default_rng(plane_seed).standard_normal((BITS, nz)).astype(
            np.float32)
        self.weights = (1 << np.arange(BITS)).astype(np.int64)
        self.visits = np.zeros(1 << BITS, np.uint16)
        self.memory = Memory()
        self.sitters = Memory(layout=SITTERS)
        self.sitter_window = window  # steps (Stream sets it: SITTER_WINDOW_S or longer)
        self.repeats = 0  # near duplicates detected (escapes triggered)
        self.sitter_repeats = 0  # sitters seen before (escapes triggered)
        self.sitters_kept = 0  # sitters seen before but shown: the window's leaps were spent
        self.sitter_leaps = np.full(SITTER_LEAPS + FRESH_LEAPS, NEVER, np.int64)  # their steps

    def cells(self, z: np.ndarray) -> np.ndarray:
        """[K,nz] -> [K] cone indices."""
        return ((z @ self.planes.T) > 0).astype(np.int64) @ self.weights

    def choose(self, candidates: np.ndarray) -> int:
        """Index of the candidate latent [K,nz] in the least-visited cone."""
        return int(np.argmin(self.visits[self.cells(candidates)]))

    def visit(self, z: np.ndarray) -> None:
        c = int(self.cells(z[None])[0])
        if self.visits[c] < np.iinfo(np.uint16).max:
            self.visits[c] += 1

    def observe(self, step: int, image: np.ndarray) -> bool:
        """Remember keyframe `step`; True if it nearly repeats one older than the window."""
        c = code(fingerprint(image))
        repeat = self.memory.nearest(c, step - self.window) < REPEAT_BELOW
        self.memory.add(step, c)
        self.repeats += repeat
        return repeat

    def observe_sitter(self, step: int, descriptor: np.ndarray) -> int:
        """Remember the sitter of keyframe `step` (its identity descriptor [128]); LEAP if
        it is one seen more than the sitter window ago and the walk should leap away,
        FRESH if it should start afresh from an independent latent, 0 to show it.

        At most SITTER_LEAPS leaps in a sitter window: enough to leave a sitter (a leap
        of 8 steps may land near it again), while a world that cannot avoid its sitters
        (a narrow one, met64: nearly every reading near one in memory) keeps the pace of
        its morph instead of leaping at every keyframe. A window that spends them is in a
        basin the feedback walk keeps falling back to (a leap keeps 0.7 of the latent):
        the next FRESH_LEAPS repeats leave it for an independent latent. The repeats shown
        after those are counted in `sitters_kept`."""
        c = sitter_code(descriptor)
        repeat = self.sitters.nearest(c, step - self.sitter_window) < SITTER_BELOW
        self.sitters.add(step, c)
        if not repeat:
            return 0
        recent = int((step - self.sitter_leaps < self.sitter_window).sum())
        if recent >= SITTER_LEAPS + FRESH_LEAPS:
            self.sitters_kept += 1
            return 0
        self.sitter_leaps[int(np.argmin(self.sitter_leaps))] = step
        self.sitter_repeats += 1
        return LEAP if recent < SITTER_LEAPS else FRESH

    def to_bytes(self) -> bytes:
        """The small part, kept in the state document (the sketch has its own file)."""
        buf = io.BytesIO()  # the counts' low and high bytes apart: 20% smaller compressed
        np.savez(buf, visits_lo=(self.visits & 0xFF).astype(np.uint8),
                 visits_hi=(self.visits >> 8).astype(np.uint8),
                 repeats=np.array([self.repeats, self.sitter_repeats, self.sitters_kept,
                                   *self.sitter_leaps], np.int64))
        return zlib.compress(buf.getvalue(), 9)

    def load_bytes(self, blob: bytes) -> None:
        with np.load(io.BytesIO(zlib.decompress(blob)), allow_pickle=False) as d:
            if "visits" in d:  # written before the byte planes
                visits = d["visits"].copy()
            else:
                visits = d["visits_lo"].astype(np.uint16) | \
                    (d["visits_hi"].astype(np.uint16) << 8)
            if visits.shape != self.visits.shape or visits.dtype != self.visits.dtype:
                raise ValueError("novelty memory of another layout")
            repeats = d["repeats"]
            if repeats.ndim != 1 or repeats.dtype.kind not in "iu" or not len(repeats):
                raise ValueError(f"novelty counts of shape {repeats.shape} and type "
                                 f"{repeats.dtype}, not a row of integers")
            # [pictures] before the sitters, then [pictures,
            # sitters], then [pictures, sitters, sitters kept, steps of the last leaps]
            self.visits, self.repeats = visits, int(repeats[0])
            self.sitter_repeats = int(repeats[1]) if len(repeats) > 1 else 0
            if 3 + SITTER_LEAPS <= len(repeats) <= 3 + len(self.sitter_leaps):
                self.sitters_kept = int(repeats[2])  # written before FRESH_LEAPS: 8 steps
                self.sitter_leaps[:] = NEVER
                self.sitter_leaps[:len(repeats) - 3] = repeats[3:]

    @property
    def nbytes(self) -> int:
        return self.visits.nbytes + self.memory.nbytes + self.sitters.nbytes
