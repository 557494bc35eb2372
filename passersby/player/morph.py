"""Which two keyframes are on screen, and how far the morph between them has come.

Pure bookkeeping (no torch, no GL): the render loop calls `advance(dt, take)` once
per displayed frame and hands `t` to Pipeline.render, which applies the morph curve
(look.morph_curve) and the present pass dissolves. The morph clock runs at one
keyframe per `seconds_per_keyframe`; when it completes and a new keyframe is available
it moves on, otherwise it holds on the newest picture (and counts the time held) but
never waits.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Morph(Generic[T]):
    def __init__(self, seconds_per_keyframe: float) -> None:
        if seconds_per_keyframe <= 0:
            raise ValueError(f"seconds_per_keyframe {seconds_per_keyframe} must be > 0")
        self.spk = seconds_per_keyframe
        self.t = 0.0            # 0 = previous keyframe, 1 = next keyframe
        self.held = 0.0         # seconds spent at t = 1 waiting for a keyframe, in total
        self.longest_hold = 0.0
        self._hold_run = 0.0

    def advance(self, dt: float, take: Callable[[], T | None]) -> list[T]:
        """Move the clock by dt seconds; returns the keyframes to push, oldest first."""
        pushed: list[T] = []
        self.t += dt / self.spk
        while self.t >= 1.0 and len(pushed) < 2:
            frame = take()
            if frame is None:
                over = (self.t - 1.0) * self.spk
                self.held += over
                self._hold_run += over
                self.longest_hold = max(self.longest_hold, self._hold_run)
                self.t = 1.0
                break
            pushed.append(frame)
            self._hold_run = 0.0
            self.t -= 1.0
        self.t = min(self.t, 1.0)
        return pushed
