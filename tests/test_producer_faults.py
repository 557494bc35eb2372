"""The generator raises: it is retried, the error is logged once, the picture keeps moving."""
from __future__ import annotations

import logging
import time

import numpy as np

from passersby.frames import Frame, FrameQueue
from passersby.morph import Morph
from passersby.stream import Producer


class FlakyStream:
    """Fails `fail` times with the same error, then yields frames."""

    def __init__(self, fail: int) -> None:
        self.fail, self.step, self.skip_to = fail, 0, 0

    def next_frame(self) -> Frame:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        self.step += 1
        return Frame(self.step, np.zeros((4, 4, 3), np.uint8), np.zeros(2, np.float32))


def test_generator_errors_are_retried_logged_once_and_the_morph_holds(caplog) -> None:  # type: ignore[no-untyped-def]
    q = FrameQueue(4)
    p = Producer(FlakyStream(fail=3), q, patience=0.5)  # type: ignore[arg-type]
    morph: Morph[Frame] = Morph(0.1)
    with caplog.at_level(logging.ERROR):
        p.start()
        pushed: list[Frame] = []
        deadline = time.monotonic() + 20
        while len(pushed) < 3 and time.monotonic() < deadline:
            pushed += morph.advance(0.02, q.get_nowait)  # the render loop never waits
            time.sleep(0.02)
        p.stop()
    steps = [f.step for f in pushed]
    assert steps[0] == 1 and steps == sorted(set(steps))  # in order (a fast fake overflows: newest wins)
    assert p.errors == 3 and p.error is None
    assert caplog.text.count("illegal memory access") == 1  # logged once, not per retry
    assert morph.held > 0  # it held the picture while the generator was failing
