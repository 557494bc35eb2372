"""Batches: `render --count N --out DIR` writes N distinct stills with bookmarks,
resumes after an interruption, and each still returns exactly to its keyframe."""
from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import offscreen_or_skip
from passersby.cli import main as cli
from passersby.common import config
from passersby.common.bookmarks import Store
from passersby.generator import process, stream
from passersby.player import batch

SEED = 0xBA7C
SIZE = [64, 80]


def small(seed: int | None = SEED) -> config.Config:
    return config.load(None, {"stream": {"threads": 1, "seed": seed},
                              "render": {"size": SIZE}})


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Path:
    offscreen_or_skip((8, 8)).release()
    out = tmp_path_factory.mktemp("batch") / "stills"
    r = batch.render_stills(small(), out, 3, every=2)
    assert (r.made, r.total) == (3, 3) and r.per_hour > 0
    return out


def test_three_distinct_stills_each_with_its_bookmark(three: Path) -> None:
    pngs = sorted(three.glob("*.png"))
    assert [p.name for p in pngs] == ["still-0001.png", "still-0002.png", "still-0003.png"]
    images = [pixels(p) for p in pngs]
    assert all(im.shape == (SIZE[1], SIZE[0], 3) for im in images)
    for i in range(3):
        for j in range(i + 1, 3):
            assert np.abs(images[i].astype(int) - images[j]).mean() > 2.0, (i, j)
    store = Store.in_folder(three)
    marks = store.list("still")
    store.close()
    assert [(b.name, b.image, b.kind, b.seed) for b in marks] == \
        [(f"still-000{i}", f"still-000{i}.png", "still", SEED) for i in (1, 2, 3)]
    steps = [b.step for b in marks]
    assert steps == sorted(steps) and all(b - a >= 2 for a, b in itertools.pairwise(steps))
    assert len({b.z.tobytes() for b in marks}) == 3
    with Image.open(pngs[1]) as im:
        assert im.text["passersby.step"] == str(marks[1].step)


def test_interrupted_then_rerun_ends_with_exactly_n(three: Path, tmp_path: Path) -> None:
    out = tmp_path / "stills"
    shutil.copytree(three, out)

    def interrupt(i: int, n: int, per_hour: float) -> None:
        if i == 4:
            raise KeyboardInterrupt  # as Ctrl-C after the 4th still
    with pytest.raises(KeyboardInterrupt):
        batch.render_stills(small(), out, 5, every=2, progress=interrupt)
    assert len(list(out.glob("still-*.png"))) == 4
    (out / ".still-0005.png.tmp").write_bytes(b"\x89PNG half a file")  # a killed write
    seen: list[tuple[int, int]] = []
    r = batch.render_stills(small(seed=None), out, 5, every=2,  # the folder's own edition
                            progress=lambda i, n, _: seen.append((i, n)))
    assert (r.made, r.total) == (1, 5) and seen[0] == (4, 5) and seen[-1] == (5, 5)
    assert sorted(p.name for p in out.iterdir()) == \
        ["passersby.sqlite", "state"] + [f"still-000{i}.png" for i in range(1, 6)]
    images = [pixels(p) for p in sorted(out.glob("still-*.png"))]
    assert len({im.tobytes() for im in images}) == 5
    store = Store.in_folder(out)
    marks = store.list("still")
    store.close()
    assert [b.name for b in marks] == [f"still-000{i}" for i in range(1, 6)]
    steps = [b.step for b in marks]
    assert all(b > a for a, b in itertools.pairwise(steps)), steps
    # done already: a third run makes nothing and keeps the five
    again = batch.render_stills(small(seed=None), out, 5, every=2)
    assert (again.made, again.total) == (0, 5)


def test_a_still_regenerates_exactly_its_keyframe(three: Path) -> None:
    from passersby.generator.chain import Chain

    store = Store.in_folder(three)
    bm = store.get("still-0002")
    store.close()
    cfg = small()
    chain = Chain.from_config(cfg.weights, "cpu")  # as the batch loaded it: R when present
    # as many torch threads as the generator process had: a convolution's sums are
    # ordered by its threads, so another count may move a few pixels by 1/255
    before = torch.get_num_threads()
    torch.set_num_threads(process.threads(cfg))
    try:
        back = stream.Stream(chain, cfg.traversal, cfg.stream.keyframes_per_second, bm.seed,
                             saved=bm.to_state()).next_frame()
        direct = chain.show(chain.generate(bm.z[None]))[0]
    finally:
        torch.set_num_threads(before)
    assert back.step == bm.step and np.array_equal(back.z, bm.z)
    assert np.array_equal(back.image, direct)
    renderer = batch.StillRenderer(cfg, chain.shown_size, tuple(SIZE))
    try:
        again = renderer.render(back.image, bm.step).copy()
    finally:
        renderer.release()
    saved = pixels(three / "still-0002.png")
    assert np.array_equal(again, saved), np.abs(again.astype(int) - saved).max()


def test_an_interrupted_png_write_leaves_no_file(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    image = np.full((8, 8, 3), 77, np.uint8)

    def half(self, fp, *a, **k):  # type: ignore[no-untyped-def]
        fp.write(b"\x89PNG\r\n\x1a\n half")
        raise KeyboardInterrupt
    monkeypatch.setattr(Image.Image, "save", half)
    with pytest.raises(KeyboardInterrupt):
        batch.write_png(tmp_path / "still-0001.png", image)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    batch.write_png(tmp_path / "still-0001.png", image, {"passersby.step": "3"})
    assert np.array_equal(pixels(tmp_path / "still-0001.png"), image)
    assert [p.name for p in tmp_path.iterdir()] == ["still-0001.png"]


def test_cli_stills_progress_and_clear_errors(tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    offscreen_or_skip((8, 8)).release()
    out = tmp_path / "cli"
    assert cli.main(["render", "--count", "2", "--every", "1", "--out", str(out), "--size",
                     "64x80", "--seed", "5", "--config", str(_threads1(tmp_path))]) == 0
    got = capsys.readouterr()
    assert "2/2 stills" in got.err and "images/hour" in got.err
    assert f"2 stills in {out.resolve()}" in got.out and "images/hour" in got.out
    assert len(list(out.glob("still-*.png"))) == 2
    (tmp_path / "afile").write_text("x")
    for argv, words in (
            (["--out", str(tmp_path / "afile")], ["--out", "afile", "is a file", "give a folder"]),
            (["--out", str(tmp_path / "afile" / "sub")], ["--out", "cannot create", "writable"]),
            (["--out", str(out), "--seed", "6"], ["--seed", "0x6", "not the edition", "0x5",
                                                 "leave --seed out"]),
            (["--out", str(out), "--state", str(tmp_path)], ["--state", "leave --state out"])):
        assert cli.main(["render", "--count", "3", *argv]) == 2
        err = capsys.readouterr().err
        for w in words:
            assert w in err, (w, err)


def _threads1(tmp_path: Path) -> Path:
    path = tmp_path / "threads1.yaml"
    path.write_text("stream:\n  threads: 1\n")
    return path
