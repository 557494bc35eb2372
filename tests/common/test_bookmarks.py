"""Bookmarks in SQLite: named, listed, found again, and they return exactly there."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from passersby.common import bookmarks, config, rng
from passersby.common.bookmarks import Bookmark, BookmarkError, Store


def make(step: int, **kw) -> Bookmark:  # type: ignore[no-untyped-def]
    return Bookmark(seed=0xFEED, step=step, z=rng.normal(0xFEED, step, 100),
                    generator_sha256="ab" * 32,
                    config_digest=bookmarks.config_digest(config.Config()), **kw)


def test_names_list_get_and_errors(tmp_path: Path) -> None:
    store = Store.in_folder(tmp_path / "state")
    a = store.add(make(10))
    b = store.add(make(20, kind="capture", image="c.png", traversal={"mode": "orbit"}))
    c = store.add(make(30, name="the-blue-one", note="hands"))
    assert (a.name, b.name, c.name) == ("bookmark-0001", "capture-0001", "the-blue-one")
    got = store.get("capture-0001")
    assert got.step == 20 and got.image == "c.png" and got.traversal == {"mode": "orbit"}
    assert got.seed == 0xFEED and np.array_equal(got.z, make(20).z)
    assert [x.name for x in store.list()] == ["bookmark-0001", "capture-0001", "the-blue-one"]
    assert [x.name for x in store.list("capture")] == ["capture-0001"]
    with pytest.raises(BookmarkError, match="exists already"):
        store.add(make(40, name="the-blue-one"))
    with pytest.raises(BookmarkError, match="no bookmark 'nope'.*the-blue-one"):
        store.get("nope")
    store.close()
    rows = sqlite3.connect(tmp_path / "state" / bookmarks.FILE).execute(
        "SELECT name, step FROM bookmarks ORDER BY step").fetchall()
    assert rows == [("bookmark-0001", 10), ("capture-0001", 20), ("the-blue-one", 30)]


def test_ratings_keep_latents_and_can_be_undone(tmp_path: Path) -> None:
    store = Store(tmp_path / "b.sqlite")
    store.rate("x.png", -1, np.ones(100, np.float32))
    store.rate("y.png", 2, np.full(100, 2, np.float32))
    store.rate("x.png", 1, np.ones(100, np.float32))  # re-rated: replaced
    store.unrate("y.png")
    images, ratings, zs = store.ratings()
    assert images == ["x.png"] and ratings.tolist() == [1] and zs.shape == (1, 100)


def test_unwritable_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(BookmarkError, match="cannot open the bookmark file"):
        Store.in_folder(tmp_path / "file" / "state")


def test_a_bookmark_returns_exactly_to_its_picture(chain) -> None:  # type: ignore[no-untyped-def]
    from passersby.generator.chain import to_uint8
    from passersby.generator.stream import Stream

    cfg = config.Config()
    s = Stream(chain, cfg.traversal, 4.0, seed=0xFEED)
    frames = [s.next_frame() for _ in range(5)]
    f = frames[-1]
    bm = Bookmark(0xFEED, f.step, f.z, chain.generator_manifest["tensors_sha256"],
                  bookmarks.config_digest(cfg))
    back = Stream(chain, cfg.traversal, 4.0, seed=0xFEED, saved=bm.to_state()).next_frame()
    assert back.step == f.step and np.array_equal(back.image, f.image)
    assert np.array_equal(back.image, to_uint8(chain.generate(f.z[None]))[0])
