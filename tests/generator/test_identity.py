"""Issue 14: the sitter memory reads who is on screen, and the stream never shows a sitter
again, even one the picture sketch cannot see (another light, another palette)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import default_world
from passersby.common import config, state
from passersby.common.novelty import NEAR_DUPLICATE, SITTER_REPEAT, distance, fingerprint
from passersby.generator import identity, weights
from passersby.generator.chain import Chain, optional_package
from passersby.generator.stream import Keeper, Stream, sitter_every


@pytest.fixture(scope="module")
def reader(weights_root) -> identity.Reader:  # type: ignore[no-untyped-def]
    if weights.missing(weights_root, identity.DEFAULT):
        pytest.fail(f"{weights_root / identity.DEFAULT} is missing: {identity.MAKE}")
    return identity.Reader.load(weights_root)


@pytest.fixture(scope="module")
def seen(chain, reader):  # type: ignore[no-untyped-def]
    return dataclasses.replace(chain, identity=reader)


def test_reader_reads_the_same_sitter_alike_through_a_change_of_light(chain, reader) -> None:  # type: ignore[no-untyped-def]
    from passersby.generator.audit import random_samples

    ims = random_samples(chain, 8, seed=21)
    d = reader.read(ims)
    assert d.shape == (8, 128) and d.dtype == np.float32 and np.isfinite(d).all()
    assert np.array_equal(reader.read(ims[:2]), d[:2])       # deterministic, batch-free
    assert reader.read(ims[:0]).shape == (0, 128)
    lit = (np.clip(ims.astype(np.float32) / 255 * np.linspace(0.7, 1.3, 64)[None, None, :, None],
                   0, 1) * 255).round().astype(np.uint8)   # light from the right
    same = np.linalg.norm(reader.read(lit) - d, axis=1)
    others = np.linalg.norm(d[:, None] - d[None], axis=2)[np.triu_indices(8, 1)]
    thumbs = distance(fingerprint(lit), fingerprint(ims))
    assert np.median(same) < SITTER_REPEAT < np.median(others), (same, others)
    assert np.median(thumbs) > NEAR_DUPLICATE  # the picture sketch does not see it


def test_a_sitter_seen_long_ago_is_dropped_even_when_the_picture_sketch_misses_it(
        seen, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Blind the picture sketch, bring the walk back to a latent it showed a minute ago on a
    sitter-reading step: the stream drops it unseen and leaps away."""
    cfg = config.Config().traversal
    s = Stream(seen, cfg, 4.0, seed=8)
    monkeypatch.setattr(s.novelty, "observe", lambda step, image: False)
    first = [s.next_frame() for _ in range(4)]
    while s.step < s.novelty.sitter_window + 10 or s.step % s.sitter_every:
        s.next_frame()
    s.z = first[0].z.copy()
    back = s.step
    frame = s.next_frame()
    assert s.novelty.sitter_repeats >= 1 and frame.step > back
    assert not np.array_equal(frame.image, first[0].image)


def test_a_window_that_spends_its_leaps_starts_afresh_from_an_independent_latent(
        seen, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A basin the walk keeps falling back to (every reading a repeat): the first
    SITTER_LEAPS repeats of a window leap (keeping part of the latent), the next
    FRESH_LEAPS go to an independent latent of the edition (the same on a replay), then
    the morph keeps its pace and the repeats shown are counted."""
    from passersby.common import rng
    from passersby.common.novelty import FRESH_LEAPS, SITTER_LEAPS
    from passersby.generator.stream import FRESH_STREAM

    cfg = config.Config().traversal
    s = Stream(seen, cfg, 4.0, seed=9)
    monkeypatch.setattr(s.novelty, "observe", lambda step, image: False)
    s.novelty.sitter_window = 400  # one window for the whole test
    s.next_frame()
    monkeypatch.setattr(s.novelty.sitters, "nearest", lambda c, before: 0.0)  # all repeats
    fresh = []
    while s.novelty.sitters_kept == 0:
        step = s.step
        s._advance()
        if s.step % s.sitter_every == 0 and \
                np.array_equal(s.z, rng.normal(9, step + 1, seen.nz, stream=FRESH_STREAM)):
            fresh.append(step)
    assert s.novelty.sitter_repeats == SITTER_LEAPS + FRESH_LEAPS and len(fresh) == FRESH_LEAPS
    assert s.step < 400  # all in one window


def test_the_sitter_memory_resumes_exactly_after_a_cut(seen, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A stream cut and resumed from its folder shows what the uninterrupted one shows:
    the sitter sketch comes back from its own file, so every escape is the same."""
    cfg = config.Config().traversal
    whole = Stream(seen, cfg, 4.0, seed=77)
    want = [whole.next_frame() for _ in range(48)]
    assert whole.novelty.sitters.n >= 48 // sitter_every(4.0) - 2  # every keyframe read
    cut = Stream(seen, cfg, 4.0, seed=77)
    keeper = Keeper(state.Saver(tmp_path), every_steps=8, queue=2)
    for _ in range(20):
        cut.next_frame()
        keeper.after_step(cut)
    again = Stream(seen, cfg, 4.0, seed=77, saved=state.load(tmp_path))
    kept = again.novelty.sitters
    assert 0 < kept.n and kept.steps[kept.n - 1] < again.step  # none from after the save
    again.catch_up()
    got = []
    while len(got) < 8:
        got.append(again.next_frame())
    by_step = {f.step: f for f in want}
    assert all(np.array_equal(f.image, by_step[f.step].image) for f in got if f.step in by_step)
    assert any(f.step in by_step for f in got)


def test_the_reader_gives_dlibs_own_descriptors_of_its_chips(chain, reader) -> None:  # type: ignore[no-untyped-def]
    """The memory's threshold was calibrated with dlib's reader (bench/sitters.py): the torch
    port reading the same chips must give the same descriptors."""
    dlib = pytest.importorskip("dlib", reason="the training extra (dlib-bin) is not installed")
    from passersby.generator.audit import random_samples
    from passersby.train import align, facenet_convert

    ims = random_samples(chain, 6, seed=5)
    net = dlib.face_recognition_model_v1(str(align.model_folder() / facenet_convert.DAT))
    want = np.stack([np.asarray(net.compute_face_descriptor(c), np.float32)
                     for c in reader.chips(ims)])
    assert np.linalg.norm(reader.read(ims) - want, axis=1).max() < 1e-4
    with pytest.raises(ValueError, match=r"\[N,S,S,3\] uint8"):
        reader.read(ims.astype(np.float32))


def test_a_missing_default_reader_plays_without_sitters_and_any_other_fails_the_start(
        weights_root, tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    assert optional_package(tmp_path, identity.DEFAULT, "identity") is None
    assert "not its sitters" in caplog.text and "facenet_convert" in caplog.text
    assert optional_package(tmp_path, None, "identity") is None
    assert optional_package(tmp_path, "mine", "identity") == "mine"
    with pytest.raises(weights.WeightsError, match=r"'mine' is not there.*facenet_convert"):
        identity.Reader.load(tmp_path, "mine")
    # a package of another kind, or a damaged one, names the value and the fix
    with pytest.raises(weights.WeightsError, match=r"weights.identity = 'met64'"):
        Chain.load(weights_root, "met64", None, "cpu", identity="met64")
    (tmp_path / identity.DEFAULT).mkdir()
    for name in ("manifest.json",):
        (tmp_path / identity.DEFAULT / name).write_bytes(
            (weights_root / identity.DEFAULT / name).read_bytes())
    (tmp_path / identity.DEFAULT / "model.safetensors").write_bytes(b"\0" * 64)
    with pytest.raises(weights.WeightsError, match=r"not a readable safetensors.*identity"):
        identity.Reader.load(tmp_path)


def test_weights_verify_named_fails_on_an_absent_reader_and_unnamed_calls_it_optional(
        tmp_path, weights_root, capsys) -> None:  # type: ignore[no-untyped-def]
    """set-up asks `weights verify dlib-face-v1` whether to make the package: a package it
    names must verify, never pass as "optional, absent"."""
    import yaml

    from passersby.cli import main as cli

    bare = tmp_path / "w"
    bare.mkdir()
    for name in default_world():
        (bare / name).symlink_to(weights_root / name, target_is_directory=True)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"weights": {"dir": str(bare)}}))
    assert cli.main(["weights", "verify", identity.DEFAULT, "--config", str(path)]) == 1
    assert "facenet_convert" in capsys.readouterr().out
    assert cli.main(["weights", "verify", "--config", str(path)]) == 0
    assert "absent: the player plays without the sitter memory" in capsys.readouterr().out
    (bare / identity.DEFAULT).symlink_to(weights_root / identity.DEFAULT)
    assert cli.main(["weights", "verify", identity.DEFAULT, "--config", str(path)]) == 0


def test_the_audit_takes_the_streams_own_readings(seen, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The audit compares the sitters of every shown keyframe; the stream has read each of
    them already (same reader, same picture), so the audit reads none again, and its
    figures are those of an audit that reads every picture itself, power cuts included."""
    from passersby.generator import audit

    class Counting:
        def __init__(self, reader: identity.Reader) -> None:
            self.reader, self.images = reader, 0

        def read(self, images: np.ndarray) -> np.ndarray:
            self.images += len(images)
            return self.reader.read(images)

    cfg = config.load(None, {"stream": {"save_seconds": 2.0}})  # replays after a cut

    def audited(reuse: bool) -> tuple[dict, int]:
        counting = Counting(seen.identity)
        chain = dataclasses.replace(seen, identity=counting)
        with monkeypatch.context() as m:
            if not reuse:   # the audit as it was: every shown picture read again
                add = audit._Recorder.add
                m.setattr(audit._Recorder, "add", lambda self, step, image, z, read=None:
                          add(self, step, image, z))
            figures = audit.run(chain, cfg, 40, seed=9, face_every=10, restart_every=15)
        return figures, counting.images

    (taken, reads), (again, rereads) = audited(True), audited(False)
    assert taken["sitters_read"] == again["sitters_read"] == 40
    assert taken["restarts"] == 2 and taken["replayed_steps"] > 0
    assert rereads - reads == 40 and reads >= 40   # the stream's own readings only
    for volatile in ("steps_per_s", "max_rss_mb"):
        taken.pop(volatile), again.pop(volatile)
    assert taken == again
