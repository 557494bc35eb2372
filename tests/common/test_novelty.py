from __future__ import annotations

import dataclasses
import io
import math
import zlib
from pathlib import Path

import numpy as np
import pytest

from passersby.common import config, rng
from passersby.common.novelty import (
    CODE_DIMS,
    MEMORY_FILE,
    NEAR_DUPLICATE,
    RECORD,
    REPEAT_BELOW,
    Memory,
    Novelty,
    code,
    distance,
    fingerprint,
    load_memory,
    save_memory,
)
from passersby.generator.stream import Stream


def faces(chain, n: int, seed: int = 3) -> np.ndarray:  # type: ignore[no-untyped-def]
    from passersby.generator.chain import to_uint8

    return to_uint8(chain.generate(np.stack([rng.normal(seed, k, chain.nz) for k in range(n)])))


def test_fingerprint_distance_separates_people(chain) -> None:  # type: ignore[no-untyped-def]
    ims = faces(chain, 32)
    fp = fingerprint(ims)
    assert fp.shape == (32, 256) and distance(fp[0], fingerprint(ims[0])) == 0
    d = [float(distance(fp[i], fp[j])) for i in range(32) for j in range(i + 1, 32)]
    assert min(d) > 2 * NEAR_DUPLICATE, min(d)
    noisy = np.clip(ims[0].astype(int) + np.random.default_rng(0).integers(-3, 4, ims[0].shape),
                    0, 255).astype(np.uint8)
    assert distance(fp[0], fingerprint(noisy)) < NEAR_DUPLICATE / 2


def test_observe_flags_repeats_only_outside_the_window(chain) -> None:  # type: ignore[no-untyped-def]
    a, b = faces(chain, 2)
    n = Novelty(100, window=5)
    assert not n.observe(0, a)
    assert not n.observe(3, a)          # within the window: the same passer-by morphing
    assert not n.observe(4, b)
    assert n.observe(10, a) and n.repeats == 1


def test_choose_prefers_unvisited_and_is_plain_when_all_new() -> None:
    n = Novelty(100, window=5)
    r = np.random.default_rng(0)
    cands = r.standard_normal((4, 100)).astype(np.float32)
    assert n.choose(cands) == 0
    n.visit(cands[0])
    cells = n.cells(cands)
    expect = int(np.argmin(n.visits[cells]))
    assert n.choose(cands) == expect and (cells[expect] != cells[0] or expect == 0)


def _fill(mem: Memory, steps: range, seed: int = 1) -> np.ndarray:
    codes = np.random.default_rng(seed).integers(-60, 60, (len(steps), CODE_DIMS)).astype(np.int8)
    for s, c in zip(steps, codes):
        mem.add(s, c)
    return codes


def test_code_distance_never_exceeds_the_fingerprint_distance(chain) -> None:  # type: ignore[no-untyped-def]
    """The sketch is a lower bound (up to quantisation): no true near duplicate slips by."""
    fp = fingerprint(faces(chain, 48, seed=9))
    noisy = fp + np.random.default_rng(2).normal(0, 0.08, fp.shape).astype(np.float32)
    mem = Memory()
    for k, c in enumerate(code(fp)):
        mem.add(k, c)
    for k in range(len(fp)):
        full = float(distance(fp[k], noisy[k]))
        assert full < REPEAT_BELOW
        assert mem.nearest(code(noisy[k]), k + 1) <= full + (REPEAT_BELOW - NEAR_DUPLICATE)
    other = [float(distance(fp[i], fp[j])) for i in range(48) for j in range(i)]
    assert mem.nearest(code(fp[47]), 47) <= min(other[-47:]) + 0.01


def test_sketch_file_appends_resumes_and_survives_damage(tmp_path: Path) -> None:
    mem = Memory()
    codes = _fill(mem, range(0, 3000, 3))
    save_memory(tmp_path, mem)
    size = (tmp_path / MEMORY_FILE).stat().st_size
    _fill(mem, range(3000, 3300), seed=2)
    save_memory(tmp_path, mem)  # an append: the old records are not rewritten
    assert (tmp_path / MEMORY_FILE).stat().st_size == size + 300 * RECORD.itemsize
    got = load_memory(tmp_path, before=1500)  # a state at step 1500 saw steps < 1500
    assert got.n == 500 and np.array_equal(got.codes[:500], codes[:500])
    assert got.nearest(codes[10], 1500) == 0.0 and got.nearest(codes[10], 30) > 1.0
    assert got.nearest(codes[0], 0) == math.inf
    _fill(got, range(1500, 1600), seed=3)  # a resumed run writes over what it did not keep
    save_memory(tmp_path, got)
    again = load_memory(tmp_path, before=10**9)
    assert again.n == 600 and again.steps[599] == 1599
    with open(tmp_path / MEMORY_FILE, "ab") as f:  # a power cut in the middle of a record
        f.write(b"\x01" * 7)
    assert load_memory(tmp_path, 10**9).n == 600
    blob = bytearray((tmp_path / MEMORY_FILE).read_bytes())
    blob[16 + 400 * RECORD.itemsize: 16 + 400 * RECORD.itemsize + 8] = bytes(8)  # step -> 0
    (tmp_path / MEMORY_FILE).write_bytes(bytes(blob))
    assert load_memory(tmp_path, 10**9).n == 400  # what precedes the damage
    (tmp_path / MEMORY_FILE).write_bytes(b"not a sketch" * 10)
    assert load_memory(tmp_path, 10**9).n == 0


def test_sketch_is_bounded_and_keeps_all_recent_codes(tmp_path: Path) -> None:
    mem = Memory(capacity=1000)
    _fill(mem, range(2600))
    assert mem.n <= 1000 and mem.saved == 0
    recent = mem.steps[mem.n - 500:mem.n]
    assert np.array_equal(recent, np.arange(2100, 2600))  # the recent past: every code
    assert np.all(np.diff(mem.steps[:mem.n]) > 0) and mem.steps[0] > 0  # the far past: sparser
    save_memory(tmp_path, mem)
    assert load_memory(tmp_path, 10**9).n == mem.n
    full = Memory()
    assert full.nbytes + Novelty(100, 5).visits.nbytes < 16 << 20  # a year needs no more
    assert 16 + len(full.steps) * RECORD.itemsize < 16 << 20


def test_visits_roundtrip_and_old_layout_still_loads() -> None:
    n = Novelty(100, window=5)
    r = np.random.default_rng(1)
    for _ in range(3000):
        n.visit(r.standard_normal(100).astype(np.float32))
    m = Novelty(100, window=5)
    m.load_bytes(n.to_bytes())
    assert np.array_equal(m.visits, n.visits)
    buf = io.BytesIO()  # schema-2 states carried a ring of fingerprints beside the visits
    np.savez(buf, visits=n.visits, ring=np.zeros((1024, 256), np.int8),
             ring_steps=np.zeros(1024, np.int64), repeats=np.array([3], np.int64))
    m.load_bytes(zlib.compress(buf.getvalue()))
    assert np.array_equal(m.visits, n.visits) and m.repeats == 3
    assert len(n.to_bytes()) < 1 << 20


def test_a_frozen_walk_is_detected_and_escaped(chain) -> None:  # type: ignore[no-untyped-def]
    """Force a fixed point (rho = 1: the walk stops) and watch the stream leap out."""
    cfg = dataclasses.replace(config.Config().traversal, feedback=0.0)
    s = Stream(chain, cfg, 4.0, seed=5)
    s.traversal.dt = 0.0  # rho = exp(0) = 1: z never moves by itself
    frames = [s.next_frame() for _ in range(60)]
    assert s.novelty.repeats > 0
    fp = fingerprint(np.stack([f.image for f in frames]))
    w = s.novelty.window
    far = [float(distance(fp[i], fp[j])) for i in range(len(fp)) for j in range(i + w + 1, len(fp))]
    assert min(far) >= NEAR_DUPLICATE, "a repeat was shown"


def test_a_near_black_keyframe_is_never_shown(chain) -> None:  # type: ignore[no-untyped-def]
    """The stand-in makes a near-black picture about once in 300: the stream drops it
    unseen and leaps away, like a repeat (the collector's screen never goes black)."""
    from passersby.generator.chain import to_uint8
    from passersby.generator.stream import DARK

    z = np.stack([rng.normal(0xDA4C, k, chain.nz) for k in range(1500)])
    means = np.concatenate([to_uint8(chain.generate(z[i:i + 250])).reshape(250, -1).mean(1)
                            for i in range(0, 1500, 250)])
    dark = z[int(np.argmin(means))]
    assert means.min() < DARK, "no near-black sample to test with"
    s = Stream(chain, config.Config().traversal, 4.0, seed=11)
    s.z = dark.copy()
    frame = s.next_frame()
    assert frame.image.mean() >= DARK and s.dark >= 1 and frame.step > 0


def test_visit_counts_round_trip_in_byte_planes_and_old_documents_still_load() -> None:
    """Issue 16 (flash): the counts are kept as low/high byte planes (smaller compressed);
    a document written before still loads to the same counts."""
    import io
    import zlib

    from passersby.common.novelty import Novelty

    a = Novelty(100, window=20)
    a.visits[:] = (np.arange(a.visits.size) * 7919 % 1200).astype(np.uint16)
    a.repeats = 3
    b = Novelty(100, window=20)
    b.load_bytes(a.to_bytes())
    assert np.array_equal(a.visits, b.visits) and b.repeats == 3
    buf = io.BytesIO()
    np.savez(buf, visits=a.visits, repeats=np.array([5], np.int64))
    c = Novelty(100, window=20)
    c.load_bytes(zlib.compress(buf.getvalue(), 6))
    assert np.array_equal(c.visits, a.visits) and c.repeats == 5


def test_thumbnail_is_the_block_mean_and_the_fingerprint_normalises_it() -> None:
    from passersby.common.novelty import thumbnail

    ims = np.random.default_rng(3).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    t = thumbnail(ims)
    grey = ims.astype(np.float64).mean(axis=3) / 255.0
    assert t.shape == (2, 256) and t.dtype == np.float32
    assert abs(float(t[1, 16 + 2]) - grey[1, 4:8, 8:12].mean()) < 1e-6     # block (1, 2)
    want = (t - t.mean(axis=1, keepdims=True)) / (t.std(axis=1, keepdims=True) + 0.02)
    assert np.array_equal(fingerprint(ims), want)


def test_sitter_sketch_has_its_own_file_and_catches_a_sitter_seen_long_ago(
        tmp_path: Path) -> None:
    """Issue 14: who is on screen is remembered apart from the pictures (a 128-d descriptor
    per reading): a sitter near one seen more than the sitter window ago is a repeat,
    one within the window (the morph itself) is not; the file is append-only, bounded
    and resumes like the picture sketch."""
    from passersby.common.novelty import SITTER_FILE, SITTER_REPEAT, SITTERS, sitter_code

    r = np.random.default_rng(4)
    people = r.normal(0, 0.09, (6, 128)).astype(np.float32)  # ~1.0 apart, as strangers are
    n = Novelty(100, window=5)
    n.sitter_window = 40
    assert not any(n.observe_sitter(k * 10, people[k]) for k in range(6))
    near = people[0] + r.normal(0, 0.1 * SITTER_REPEAT / np.sqrt(128), 128).astype(np.float32)
    assert not n.observe_sitter(60, people[5] + near - people[0])  # 10 steps on: one morph
    assert not n.observe_sitter(70, people[4])        # 30 steps on: still the window
    assert n.observe_sitter(80, near)                 # 80 steps after the first: a repeat
    assert n.sitter_repeats == 1 and n.repeats == 0
    assert abs(n.sitters.nearest(sitter_code(near), 1) -
               float(np.linalg.norm(near - people[0]))) < 0.02  # quantisation costs ~0.01
    save_memory(tmp_path, n.sitters)
    assert (tmp_path / SITTER_FILE).stat().st_size == 16 + 9 * SITTERS.record.itemsize
    assert not (tmp_path / MEMORY_FILE).exists()
    got = load_memory(tmp_path, before=65, layout=SITTERS)
    assert got.n == 7 and np.array_equal(got.codes[:7], n.sitters.codes[:7])
    assert load_memory(tmp_path, 10**9).n == 0  # the picture sketch never reads it
    m = Novelty(100, window=5)
    m.load_bytes(n.to_bytes())
    assert m.sitter_repeats == 1
    full = Memory(layout=SITTERS)
    assert full.nbytes + Memory().nbytes + m.visits.nbytes < 50 << 20  # all three, for years


def test_the_sitter_memory_leaps_at_most_a_few_times_a_window_and_resumes_that(chain) -> None:  # type: ignore[no-untyped-def]
    """A world that cannot avoid its sitters (every reading near one in memory) keeps the
    pace of its morph: SITTER_LEAPS leaps in a sitter window, then FRESH_LEAPS to a fresh
    latent, the other repeats shown and counted; the steps of the last leaps survive a
    cut (and a state written before the fresh leaps loads), and a damaged state that
    puts one in the future cannot mute the memory."""
    from passersby.common import state
    from passersby.common.novelty import FRESH, FRESH_LEAPS, LEAP, SITTER_LEAPS

    r = np.random.default_rng(5)
    one = r.normal(0, 0.09, 128).astype(np.float32)
    n = Novelty(100, window=5)
    n.sitter_window = 40
    assert not n.observe_sitter(0, one)
    asked = {step: n.observe_sitter(step, one) for step in range(41, 200)}
    k = SITTER_LEAPS + FRESH_LEAPS
    assert 1 < k < 40 and FRESH_LEAPS >= 1
    leaps = {w + i for w in (41, 81, 121, 161) for i in range(k)}  # a sliding window:
    assert {s for s, a in asked.items() if a} == leaps  # one leaves as one comes in
    assert {s for s, a in asked.items() if a == LEAP} == set(range(41, 41 + SITTER_LEAPS))
    assert all(asked[s] == FRESH for s in leaps if s >= 41 + SITTER_LEAPS)  # still a basin
    assert n.sitter_repeats == 4 * k and n.sitters_kept == 159 - 4 * k
    m = Novelty(100, window=5)
    m.sitter_window = 40
    m.load_bytes(n.to_bytes())
    assert (m.sitter_repeats, m.sitters_kept) == (4 * k, 159 - 4 * k)
    assert list(m.sitter_leaps) == list(n.sitter_leaps)
    m.sitters = n.sitters
    assert not m.observe_sitter(200, one) and m.observe_sitter(201, one) == FRESH

    before = m.to_bytes()  # as written before the fresh leaps: 8 steps of leaps
    with np.load(io.BytesIO(zlib.decompress(before)), allow_pickle=False) as d:
        parts = dict(d)
    parts["repeats"] = parts["repeats"][:3 + SITTER_LEAPS]
    buf = io.BytesIO()
    np.savez(buf, **parts)
    old = Novelty(100, window=5)
    old.load_bytes(zlib.compress(buf.getvalue()))
    assert old.sitters_kept == m.sitters_kept
    assert list(old.sitter_leaps[:SITTER_LEAPS]) == list(m.sitter_leaps[:SITTER_LEAPS])
    assert (old.sitter_leaps[SITTER_LEAPS:] < 0).all()
    for bad in (parts["repeats"].reshape(1, -1), parts["repeats"].astype(np.float64),
                parts["repeats"][:0]):                   # hostile counts: refused whole
        buf = io.BytesIO()
        np.savez(buf, **{**parts, "repeats": bad})
        with pytest.raises(ValueError, match="not a row of integers"):
            old.load_bytes(zlib.compress(buf.getvalue()))
        assert old.sitters_kept == m.sitters_kept        # nothing half-loaded

    s = Stream(chain, config.Config().traversal, 4.0, seed=3)
    for _ in range(4):
        s.next_frame()
    s.novelty.sitter_leaps[:] = 10**12
    saved = state.State(s.seed, s.step, s.step, s.z.copy(),
                        chain.generator_manifest["tensors_sha256"], s.novelty.to_bytes(),
                        None, s.traversal.to_bytes(), None)
    again = Stream(chain, config.Config().traversal, 4.0, seed=3, saved=saved)
    assert again.step == s.step and (again.novelty.sitter_leaps < 0).all()
