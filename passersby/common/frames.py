"""Keyframes and the bounded queue between the generator and the renderer.

Neither torch nor GL lives here: a Frame carries numpy arrays only.
"""
from __future__ import annotations

import collections
import threading
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Frame:
    step: int                 # position in the edition's stream
    image: np.ndarray         # [H,W,3] uint8, top row first
    z: np.ndarray             # [nz] f32, the latent that made it
    still: bool = False       # a batch's still (messages.Picker); a batch's other keyframes
                              # are not refined, so their image may be G's own size


class FrameQueue:
    """Bounded FIFO; when full, the newest frame wins (the oldest is dropped).

    `put(frame, timeout)` waits up to `timeout` seconds for room (back-pressure that
    keeps a fast producer in step), then drops the oldest rather than block forever,
    so a stalled renderer never stalls the producer. `get_nowait` never waits.
    """

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"queue size {maxsize} must be >= 1")
        self._items: collections.deque[Frame] = collections.deque()
        self._maxsize = maxsize
        self._cond = threading.Condition()
        self.dropped = 0

    def put(self, frame: Frame, timeout: float | None = 0.0, drop: bool = True) -> bool:
        """Append; wait up to `timeout` s (None: forever) for room. When still full,
        drop the oldest if `drop` (newest wins) and return True, else return False."""
        with self._cond:
            if timeout is None or timeout > 0:
                self._cond.wait_for(lambda: len(self._items) < self._maxsize, timeout)
            if len(self._items) >= self._maxsize:
                if not drop:
                    return False
                self._items.popleft()
                self.dropped += 1
            self._items.append(frame)
            self._cond.notify_all()
            return True

    def get_nowait(self) -> Frame | None:
        with self._cond:
            if not self._items:
                return None
            frame = self._items.popleft()
            self._cond.notify_all()
            return frame

    def get(self, timeout: float | None = None) -> Frame | None:
        """Wait for a frame (offscreen rendering, which must not skip any)."""
        with self._cond:
            self._cond.wait_for(lambda: bool(self._items), timeout)
            if not self._items:
                return None
            frame = self._items.popleft()
            self._cond.notify_all()
            return frame

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
