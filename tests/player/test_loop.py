"""The one frame loop (player/loop.py): the window's screens and `render` show the same
keyframes as the same pixels, the clocks, the take policies, the writer hooks."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from conftest import offscreen_or_skip, xvfb
from passersby.common import config
from passersby.common.frames import Frame, FrameQueue
from passersby.player import loop, session
from passersby.player.screens import Plan
from passersby.player.stage import Screen
from passersby.unit import boot

HERE = Path(__file__).resolve().parent
SIZE, FPS, N = (96, 80), 8.0, 14     # 14 frames at 8 fps and 4 keyframes/s: 7 keyframes


def keyframes(n: int = 12) -> list[Frame]:
    """n different 64 px keyframes (blocky noise: every pass has something to do)."""
    rng = np.random.default_rng(7)
    small = rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
    return [Frame(i, np.kron(small[i], np.ones((8, 8, 1), np.uint8)), np.zeros(4, np.float32))
            for i in range(n)]


def cfg() -> config.Config:
    return config.load(None, {"render": {"size": list(SIZE), "fps": FPS}})


def fake_session(frames: list[Frame]) -> Any:
    """A Session whose generator has already made `frames` (no process, no torch)."""
    queue = FrameQueue(len(frames) + 1)
    for f in frames:
        queue.put(f)
    producer = SimpleNamespace(error=None, progress=0, stop=lambda: None)
    return SimpleNamespace(cfg=cfg(), queue=queue, producer=producer, size=64)


class Kept:
    """A frame writer that keeps copies (loop.Writing reads back into a reused array)."""

    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []

    def write(self, frame: np.ndarray) -> None:
        self.frames.append(frame.copy())


def render_path(frames: list[Frame]) -> np.ndarray:
    """What `passersby render` does with these keyframes: session.play_offscreen."""
    kept = Kept()
    surface = offscreen_or_skip(SIZE)
    session.play_offscreen(cfg(), fake_session(frames), surface, [loop.Writing(kept, N)])
    return np.stack(kept.frames)


def window_path(frames: list[Frame], folder: Path, surface: Any) -> np.ndarray:
    """What the window does: its Screen, which starts from the boot picture the last run
    kept (here the first keyframe) and takes the queue's newest without waiting."""
    boot.StillKeeper(folder, 0.0).offer(frames[0].step, frames[0].image, force=True)
    screen = Screen(Plan(0, cfg(), folder, None))
    screen.session = fake_session(frames[1:])
    screen.attach(surface)
    kept = Kept()
    try:
        shown = loop.play(loop.Solo([screen]), loop.FixedClock(FPS), [loop.Writing(kept, N)])
    finally:
        screen.detach()
    assert shown == N
    return np.stack(kept.frames)


def test_window_and_render_show_the_same_keyframes_as_the_same_pixels(tmp_path: Path) -> None:
    frames = keyframes()
    rendered = render_path(frames)
    shown = window_path(frames, tmp_path, offscreen_or_skip(SIZE))
    assert rendered.shape == (N, SIZE[1], SIZE[0], 3)
    assert np.array_equal(rendered, shown), np.abs(rendered.astype(int) - shown).max()
    moves = [np.abs(rendered[k + 1].astype(int) - rendered[k]).mean() for k in range(N - 1)]
    assert min(moves) > 0.1, moves   # a morph through several keyframes, not one picture


WINDOW_SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    import numpy as np
    sys.path[:0] = [sys.argv[1], str(Path(sys.argv[1]).parent)]   # tests/player, tests
    import test_loop
    from passersby.player.display import Window

    win = Window("passersby loop test", 0, False, test_loop.SIZE, vsync=False)
    np.save(sys.argv[3], test_loop.window_path(test_loop.keyframes(), Path(sys.argv[2]), win))
""")


def test_a_real_window_shows_the_render_s_pixels(tmp_path: Path) -> None:
    """The same through a glfw window's surface (under its own Xvfb, in a child process:
    glfw is process-global)."""
    rendered = render_path(keyframes())
    with xvfb("320x240x24") as display:
        env = {**os.environ, "DISPLAY": display}
        done = subprocess.run([sys.executable, "-c", WINDOW_SCRIPT, str(HERE), str(tmp_path),
                               str(tmp_path / "shown.npy")], env=env, capture_output=True,
                              text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    shown = np.load(tmp_path / "shown.npy")
    assert np.array_equal(rendered, shown), np.abs(rendered.astype(int) - shown).max()


def test_the_window_s_screen_never_waits_for_the_generator(tmp_path: Path) -> None:
    """An empty queue: the screen holds its picture (the morph counts the time held) and
    each frame returns at once."""
    frames = keyframes(2)
    screen = Screen(Plan(0, cfg(), None, None))
    screen.session = fake_session(frames)
    screen.attach(offscreen_or_skip(SIZE))
    try:
        t0 = time.perf_counter()
        shown = loop.play(loop.Solo([screen]), loop.FixedClock(FPS),
                          [loop.Writing(Kept(), 3 * N)])
        assert shown == 3 * N and time.perf_counter() - t0 < 60
        assert screen.shown is frames[1] and screen.morph.held > 1.0
    finally:
        screen.detach()


def test_the_render_s_take_waits_and_names_the_generator_s_error() -> None:
    stalled = fake_session([])
    stalled.producer.error = "the generator process died (exit code -9)"
    with pytest.raises(RuntimeError, match=r"no keyframe in 0 s \(the generator process died"):
        session.next_keyframe(stalled, timeout=0.05)


def test_clocks() -> None:
    fixed = loop.FixedClock(4.0)
    assert [fixed.tick() for _ in range(3)] == [(0.0, 0.0), (0.25, 0.25), (0.5, 0.25)]
    real = loop.RealClock()
    t1, dt1 = real.tick()
    t2, dt2 = real.tick()
    assert 0 <= t1 <= t2 and dt1 >= 0 and dt2 >= 0 and abs(t2 - (dt1 + dt2)) < 1e-9


def test_the_loop_calls_hooks_after_each_picture_then_once_a_frame() -> None:
    calls: list[str] = []

    class Surface:
        closing = False

        def swap(self) -> None:
            calls.append("present")

        def should_close(self) -> bool:
            return self.closing

    class Shot:
        window = Surface()

        def tick(self, dt: float) -> None:
            calls.append(f"tick {dt:g}")

        def render(self, time_s: float) -> None:
            calls.append(f"render {time_s:g}")

    class Spy(loop.Hook):
        def after_picture(self, screen: Any) -> None:
            calls.append("after")

        def tick(self, stage: Any) -> None:
            calls.append("hook")
            if calls.count("hook") == 2:
                stage.screens[0].window.closing = True

    assert loop.play(loop.Solo([Shot()]), loop.FixedClock(2.0), [Spy()]) == 2
    assert calls == ["tick 0", "render 0", "after", "present", "hook",
                     "tick 0.5", "render 0.5", "after", "present", "hook"]
