"""The one frame loop: the window (`run`, `explore`), `render` and `render --count`.

Like moderngl-window's run loop it is short and everything else is called from it:

- a stage: its screens, `present()` (the swaps) and `should_close()`. The window's is
  stage.Stage (one glfw window per monitor, hotplug); an offscreen run's is Solo, one
  screen on an Offscreen target, which offers the window's surface (ctx, fbo, size,
  swap, should_close, close);
- a screen: `tick(dt)` takes the keyframes due through its take policy (the window
  never waits: the queue's newest or nothing; a render waits for every keyframe: it
  must show them all), `render(time_s)` draws into its surface;
- a clock: real time (the window) or a fixed 1/fps (a render: frame i is shown at
  i/fps whatever the machine's speed);
- hooks, called after each screen's picture and once per frame after the present:
  the artist's instruments (captures, recording, overlay), the stage's own upkeep
  (events, hotplug, heartbeat), the MP4/PNG writer of a render, the stills writer.

So the window, `render` and `render --count` show the same stream through the same
screens and shaders; the render and the stills differ only in the clock, the take
policy and the hook that keeps the pictures.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol


class Clock(Protocol):
    def tick(self) -> tuple[float, float]:
        """(seconds since the first tick: the picture's time, seconds since the last)."""
        ...


class RealClock:
    """The display's time (perf_counter): the window."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()

    def tick(self) -> tuple[float, float]:
        now = time.perf_counter()
        dt, self.last = now - self.last, now
        return now - self.start, dt


class FixedClock:
    """Frame i at i / fps, 1 / fps apart (the first frame: time 0, dt 0): a render."""

    def __init__(self, fps: float) -> None:
        self.fps, self.frame = fps, 0

    def tick(self) -> tuple[float, float]:
        i, self.frame = self.frame, self.frame + 1
        return i / self.fps, 1.0 / self.fps if i else 0.0


class Hook:
    """Called by the loop; both methods do nothing unless overridden."""

    def after_picture(self, screen: Any) -> None:
        """`screen`'s picture is drawn, not yet presented: read it, draw over it."""

    def tick(self, stage: Any) -> None:
        """Once per frame, after the present: events, keys, upkeep; may end the loop
        (stage.stopping, or the surface's request_close)."""


def play(stage: Any, clock: Clock, hooks: Sequence[Hook] = ()) -> int:
    """Frames until the stage should close; returns how many were shown."""
    frames = 0
    while not stage.should_close():
        time_s, dt = clock.tick()
        for screen in stage.screens:
            screen.tick(dt)
        for screen in stage.screens:
            screen.render(time_s)
            for hook in hooks:
                hook.after_picture(screen)
        stage.present()
        for hook in hooks:
            hook.tick(stage)
        frames += 1
    return frames


class Solo:
    """The stage of an offscreen run: screens on their own surfaces, no monitors."""

    def __init__(self, screens: list[Any]) -> None:
        self.screens = screens
        self.stopping = False

    def present(self) -> None:
        for s in self.screens:
            s.window.swap()

    def should_close(self) -> bool:
        return self.stopping or any(s.window.should_close() for s in self.screens)


class Writing(Hook):
    """A render's frame writer as a hook: each picture read back (display.Readback) and
    written; after `frames` of them the loop ends. progress(i, n) after each."""

    def __init__(self, writer: Any, frames: int,
                 progress: Callable[[int, int], None] | None = None) -> None:
        self.writer, self.frames, self.progress = writer, frames, progress
        self.written = 0

    def after_picture(self, screen: Any) -> None:
        self.writer.write(screen.window.read())
        self.written += 1
        if self.progress:
            self.progress(self.written, self.frames)
        if self.written >= self.frames:
            screen.window.request_close()
