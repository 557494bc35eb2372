from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

from passersby.common import state


def make(step: int) -> state.State:
    return state.State(seed=(1 << 127) + 5, step=step, skip_to=step + 10,
                       z=np.arange(100, dtype=np.float32) * step, generator_sha256="ab" * 32,
                       novelty=bytes(range(256)) * step)


def test_roundtrip_and_previous_generation(tmp_path: Path) -> None:
    s = state.Saver(tmp_path)
    assert state.load(tmp_path) is None
    assert s.save(make(1)) and s.save(make(2))
    got = state.load(tmp_path)
    assert got is not None and got.step == 2 and got.seed == (1 << 127) + 5
    assert np.array_equal(got.z, make(2).z) and got.novelty == make(2).novelty
    assert got.skip_to == 12
    assert (tmp_path / state.PREVIOUS).exists()


@pytest.mark.parametrize("damage", [lambda b: b[: len(b) // 2],
                                    lambda b: b.replace(b'"step": 2', b'"step": 3'),
                                    lambda b: b"", lambda b: b"\x00" * 50])
def test_corrupt_current_falls_back_to_previous(tmp_path: Path, damage, caplog) -> None:  # type: ignore[no-untyped-def]
    s = state.Saver(tmp_path)
    s.save(make(1))
    s.save(make(2))
    cur = tmp_path / state.CURRENT
    cur.write_bytes(damage(cur.read_bytes()))
    with caplog.at_level(logging.WARNING):
        got = state.load(tmp_path)
    assert got is not None and got.step == 1
    assert "unreadable" in caplog.text


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_directory_warns_once_and_runs_on(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    tmp_path.chmod(0o500)
    try:
        s = state.Saver(tmp_path / "sub")
        with caplog.at_level(logging.WARNING):
            assert not s.save(make(1)) and not s.save(make(2))
        assert caplog.text.count("running on in memory") == 1
    finally:
        tmp_path.chmod(0o700)


def test_unwritable_path_as_root_too(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    s = state.Saver(blocker / "state")  # a folder below a file can never be made
    with caplog.at_level(logging.WARNING):
        assert not s.save(make(1)) and not s.save(make(2))
    assert caplog.text.count("running on in memory") == 1


def test_sketch_travels_with_the_document_and_never_runs_ahead(tmp_path: Path) -> None:
    """The novelty sketch has its own append-only file; whichever document generation
    loads, it gets exactly the codes of the steps before its own step."""
    from passersby.common.novelty import CODE_DIMS, MEMORY_FILE, Memory

    mem = Memory()
    saver = state.Saver(tmp_path)
    r = np.random.default_rng(0)
    for step in (100, 200, 300):
        while mem.n < step:
            mem.add(mem.n, r.integers(-50, 50, CODE_DIMS).astype(np.int8))
        doc = make(step)
        doc.memory = mem
        assert saver.save(doc)
    assert load_steps(tmp_path) == (300, 300)
    cur = tmp_path / state.CURRENT
    cur.write_bytes(cur.read_bytes()[:40])  # the newest document is lost: the sketch follows
    assert load_steps(tmp_path) == (200, 200)
    (tmp_path / MEMORY_FILE).unlink()  # a lost sketch costs memory, never the edition
    got = state.load(tmp_path)
    assert got is not None and got.memory is not None and got.memory.n == 0


def load_steps(folder: Path) -> tuple[int, int]:
    got = state.load(folder)
    assert got is not None and got.memory is not None
    assert got.memory.n == 0 or got.memory.steps[got.memory.n - 1] < got.step
    return got.step, got.memory.n


def test_sitter_sketch_travels_with_the_document_too(tmp_path: Path) -> None:
    from passersby.common.novelty import SITTER_FILE, SITTERS, Memory

    pictures, sitters = Memory(), Memory(layout=SITTERS)
    saver = state.Saver(tmp_path)
    r = np.random.default_rng(1)
    for step in (100, 200):
        while sitters.n < step // 2:
            sitters.add(2 * sitters.n, r.integers(-90, 90, 128).astype(np.int8))
        doc = make(step)
        doc.memory, doc.sitters = pictures, sitters
        assert saver.save(doc)
    cur = tmp_path / state.CURRENT
    cur.write_bytes(cur.read_bytes()[:40])  # the newest document is lost: the sketch follows
    got = state.load(tmp_path)
    assert got is not None and got.step == 100 and got.sitters is not None
    assert got.sitters.n == 50 and np.array_equal(got.sitters.codes[:50], sitters.codes[:50])
    (tmp_path / SITTER_FILE).unlink()
    again = state.load(tmp_path)
    assert again is not None and again.sitters is not None and again.sitters.n == 0
