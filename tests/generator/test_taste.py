"""Taste: trained from ratings, saved without pickle, and a bias that shows in the stream."""
from __future__ import annotations

import dataclasses
import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from passersby.common import config
from passersby.generator import taste
from passersby.generator.stream import Stream

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("bench_taste", ROOT / "bench" / "taste.py")
bench_taste = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
spec.loader.exec_module(bench_taste)  # type: ignore[union-attr]

MARGIN_SD = 0.5  # the stated margin: >= half the generator's own brightness spread


def synthetic(n: int = 400, nz: int = 100, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A rater who keeps latents with a positive first coordinate (favourite > 1)."""
    z = np.random.default_rng(seed).standard_normal((n, nz)).astype(np.float32)
    return z, np.where(z[:, 0] > 1, 2, np.where(z[:, 0] > 0, 1, -1))


def test_train_learns_and_round_trips_without_pickle(tmp_path: Path) -> None:
    z, r = synthetic()
    m = taste.train(z, r)
    test_z, test_r = synthetic(400, seed=1)
    assert np.mean((m.score(test_z) > 0.5) == (test_r > 0)) > 0.85  # generalises
    assert m.score(test_z[0]).shape == () and 0 <= m.score(test_z).min() <= 1
    path = m.save(tmp_path / "t.npz")
    with np.load(path, allow_pickle=False) as d:  # plain arrays only
        assert not any(d[k].dtype == object for k in d.files)
    back = taste.load(path, nz=100)
    assert np.array_equal(back.score(test_z), m.score(test_z)) and back.meta == m.meta
    with pytest.raises(ValueError, match="both kept and rejected"):
        taste.train(z, np.ones(len(z)))


def test_missing_corrupt_or_foreign_models_name_the_file_and_the_fix(chain, tmp_path: Path  # type: ignore[no-untyped-def]
                                                                      ) -> None:
    bad = tmp_path / "corrupt.npz"
    bad.write_bytes(b"not a zip")
    other = taste.train(*synthetic(nz=8)).save(tmp_path / "other.npz")
    foreign = taste.train(*synthetic())
    foreign.meta["generator_sha256"] = "ab" * 32            # learnt in another world
    foreign = foreign.save(tmp_path / "foreign.npz")
    for path, words in ((tmp_path / "missing.npz", "no such file"), (bad, "not a usable"),
                        (other, "latents of 8 numbers"), (foreign, "another world's pictures")):
        cfg = dataclasses.replace(config.Config().traversal, taste=0.5, taste_model=str(path))
        with pytest.raises(taste.TasteError) as e:
            Stream(chain, cfg, 4.0, seed=1)
        msg = str(e.value)
        assert str(path) in msg and words in msg and "taste_model: null" in msg, msg


def test_live_switch_to_a_bad_model_changes_nothing(chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    s = Stream(chain, config.Config().traversal, 4.0, seed=2)
    s.next_frame()
    bad = dataclasses.replace(s.cfg, mode="orbit", taste=1.0, taste_model=str(tmp_path / "x"))
    with pytest.raises(taste.TasteError):
        s.set_traversal(bad)
    assert s.cfg.mode == "feedback" and s.traversal.name == "feedback" and s.taste is None


def test_zero_strength_leaves_the_stream_untouched(chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = taste.train(*synthetic()).save(tmp_path / "t.npz")
    base = config.Config().traversal
    a = Stream(chain, base, 4.0, seed=3)
    b = Stream(chain, dataclasses.replace(base, taste=0.0, taste_model=str(path)), 4.0, seed=3)
    for _ in range(20):
        assert np.array_equal(a.next_frame().z, b.next_frame().z)


def test_a_taste_for_brightness_brightens_the_stream(chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The synthetic rater of bench/taste.py (prefers bright pictures): 600 ratings,
    then 300 steps of the default stream from one seed with taste 0 and with taste 1."""
    z, ratings, bright = bench_taste.rate(chain, 600)
    model = taste.train(z, ratings)
    path = model.save(tmp_path / "taste.npz")
    m = bench_taste.measure(chain, path, 300, seed=1, strength=1.0)
    margin = (m["taste"]["brightness"] - m["plain"]["brightness"]) / bright.std()
    assert margin >= MARGIN_SD, m
    assert m["taste"]["near_duplicates"] == 0 == m["plain"]["near_duplicates"], m
    assert m["taste"]["face_rate"] >= 0.9 * m["plain"]["face_rate"], m


def test_a_retrained_model_is_picked_up_live(chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "t.npz"
    z, r = synthetic()
    taste.train(z, r).save(path)
    cfg = dataclasses.replace(config.Config().traversal, taste=1.0, taste_model=str(path))
    s = Stream(chain, cfg, 4.0, seed=4)
    first = s.taste
    s.set_traversal(cfg)
    assert s.taste is first  # unchanged file: kept
    taste.train(z, -r).save(path)  # the artist rated more and retrained
    os.utime(path, ns=(1, 1))
    s.set_traversal(cfg)
    assert s.taste is not first and s.taste.score(z[:1]) != first.score(z[:1])


def test_taste_command_learns_from_curated_ratings(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """`passersby taste --from DIR`: the ratings `curate` stored -> a model file that
    prefers what was kept."""
    from passersby.cli import main as cli
    from passersby.cli import stills
    from passersby.common import bookmarks
    from passersby.common.errors import UserError

    store = bookmarks.Store.in_folder(tmp_path)
    r = np.random.default_rng(3)
    zs = r.standard_normal((300, 100)).astype(np.float32)
    for i, z in enumerate(zs):
        store.rate(f"still-{i:04d}.png", 1 if z[0] > 0 else -1, z)
    store.close()
    assert cli.main(["taste", "--from", str(tmp_path)]) == 0
    assert "300 ratings" in capsys.readouterr().out
    model = taste.load(tmp_path / "taste.npz", 100)
    probe = r.standard_normal((200, 100)).astype(np.float32)
    assert ((model.score(probe) > 0.5) == (probe[:, 0] > 0)).mean() > 0.8
    # stills carry their world: the taste records it, and refuses ratings of two worlds
    world = "cd" * 32
    store = bookmarks.Store.in_folder(tmp_path)
    for i in range(3):
        store.add(bookmarks.Bookmark(1, i, zs[i], world, "x", kind="still",
                                     image=f"still-{i:04d}.png"))
    store.close()
    assert cli.main(["taste", "--from", str(tmp_path)]) == 0
    assert taste.load(tmp_path / "taste.npz", 100).meta["generator_sha256"] == world
    with pytest.raises(taste.TasteError, match="another world's pictures"):
        taste.load(tmp_path / "taste.npz", 100, "ef" * 32)
    assert taste.load(tmp_path / "taste.npz", 100, world).meta["ratings"] == 300
    store = bookmarks.Store.in_folder(tmp_path)
    store.add(bookmarks.Bookmark(1, 9, zs[9], "ef" * 32, "x", kind="still",
                                 image="still-0009.png"))
    store.close()
    with pytest.raises(UserError, match="2 different worlds"):
        stills.cmd_taste(cli_args(tmp_path))
    few = tmp_path / "few"
    store = bookmarks.Store.in_folder(few)
    store.rate("a.png", 1, zs[0])
    store.close()
    with pytest.raises(UserError, match="at least 10"):
        stills.cmd_taste(cli_args(few))


def cli_args(folder):  # type: ignore[no-untyped-def]
    import argparse

    return argparse.Namespace(source=[str(folder)], state=None, out=None)
