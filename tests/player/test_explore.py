"""`passersby explore --bookmark NAME` under Xvfb: it starts still, exactly at the
bookmarked picture; keys step along directions, bookmark the place, release the walk."""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from conftest import isolated, xvfb
from passersby.cli import main as cli
from passersby.common import bookmarks, config, state
from passersby.generator.stream import Stream
from passersby.player import instruments


@isolated
def test_explore_starts_at_the_bookmark_and_steers(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import glfw

    from passersby.generator.chain import Chain

    root = tmp_path / "state"
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("stream:\n  threads: 1\nlook:\n  work_size: 128\ntune:\n  osc_port: 0\n")
    import torch

    chain = Chain.from_config(config.load(cfg_file).weights, "cpu")  # as explore: R if present
    torch.set_num_threads(1)  # as explore (stream.threads 1): the refiner's last bit differs
                              # with the thread count, and the picture must match exactly
    s = Stream(chain, config.Config().traversal, 4.0, seed=0xE7)
    frames = [s.next_frame() for _ in range(6)]
    store = bookmarks.Store.in_folder(root)
    store.add(bookmarks.Bookmark(0xE7, frames[5].step, frames[5].z,
                                 chain.generator_manifest["tensors_sha256"], "x", name="there"))
    store.close()
    seen: dict = {"shown": []}
    original = instruments.Instruments.tick

    def tick(self, st) -> None:  # type: ignore[no-untyped-def]
        screen = st.screens[0]
        if screen.shown is not None and (not seen["shown"] or
                                         seen["shown"][-1][0] is not screen.shown):
            seen["shown"].append((screen.shown, time.monotonic()))
        n, phase = len(seen["shown"]), seen.get("phase")
        if n >= 1 and phase is None:
            seen["phase"], seen["at"] = "still", time.monotonic()
        elif phase == "still" and time.monotonic() - seen["at"] > 2.0:
            seen["still_count"] = n  # pinned: nothing new for 2 s
            screen.window.keys.append((glfw.KEY_1, 0))
            seen["phase"] = "moved"
        elif phase == "moved" and n > seen["still_count"]:
            screen.window.keys.extend([(glfw.KEY_B, 0), (glfw.KEY_P, 0)])  # keep, release
            seen["phase"], seen["released"] = "walking", n
        elif phase == "walking" and n >= seen["released"] + 4:
            st.stopping = True
        original(self, st)

    monkeypatch.setattr(instruments.Instruments, "tick", tick)
    with xvfb("1024x1100x24") as display:
        monkeypatch.setenv("DISPLAY", display)
        monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
        assert cli.main(["explore", "--bookmark", "there", "--state", str(root), "--windowed",
                         "--config", str(cfg_file)]) == 0
    shown = [f for f, _ in seen["shown"]]
    first = shown[0]
    assert first.step == frames[5].step and np.array_equal(first.z, frames[5].z)
    assert np.array_equal(first.image, frames[5].image)
    assert seen["still_count"] == 1, "the walk moved while pinned"
    moved = shown[1]
    assert not np.array_equal(moved.z, first.z)
    cosine = np.dot(moved.z, first.z) / (np.linalg.norm(moved.z) * np.linalg.norm(first.z))
    assert 0.9 < float(cosine) < 0.999                 # one step of 0.15 x sqrt(nz): near
    walked = shown[seen["released"]:]
    assert len(walked) >= 4 and [f.step for f in walked] == sorted({f.step for f in walked})
    marks = bookmarks.Store.in_folder(root).list("bookmark")
    assert [m.name for m in marks] == ["there", "bookmark-0002"]  # numbered by kind
    assert np.array_equal(marks[1].z, moved.z)
    assert state.load(root) is None  # the edition's own place was not touched
    assert os.path.isdir(root / "explore")
