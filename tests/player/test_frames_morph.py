from __future__ import annotations

import threading
import time

import numpy as np

from passersby.common.frames import Frame, FrameQueue
from passersby.player.morph import Morph


def frame(step: int) -> Frame:
    return Frame(step, np.zeros((4, 4, 3), np.uint8), np.zeros(2, np.float32))


def test_queue_is_bounded_and_newest_wins() -> None:
    q = FrameQueue(3)
    for k in range(5):
        assert q.put(frame(k))
    assert len(q) == 3 and q.dropped == 2
    assert [q.get_nowait().step for _ in range(3)] == [2, 3, 4]
    assert q.get_nowait() is None


def test_lockstep_put_refuses_instead_of_dropping() -> None:
    q = FrameQueue(1)
    q.put(frame(0))
    t0 = time.perf_counter()
    assert not q.put(frame(1), timeout=0.05, drop=False)
    assert time.perf_counter() - t0 >= 0.04 and q.dropped == 0


def test_put_waits_for_room() -> None:
    q = FrameQueue(1)
    q.put(frame(0))
    threading.Timer(0.05, q.get_nowait).start()
    assert q.put(frame(1), timeout=2.0, drop=False)
    assert q.get_nowait().step == 1


def test_morph_advances_one_keyframe_per_interval_and_never_waits() -> None:
    m: Morph[Frame] = Morph(0.25)
    supply = [frame(k) for k in range(2, 10)]
    take = lambda: supply.pop(0) if supply else None  # noqa: E731
    pushed = []
    for _ in range(60):  # 1 s at 60 fps
        pushed += m.advance(1 / 60, take)
    assert [f.step for f in pushed] == [2, 3, 4, 5] or [f.step for f in pushed] == [2, 3, 4]
    assert 0 <= m.t <= 1 and m.held == 0


def test_morph_holds_when_the_generator_is_late() -> None:
    m: Morph[Frame] = Morph(0.5)
    for _ in range(120):  # 2 s with nothing arriving
        assert m.advance(1 / 60, lambda: None) == []
    assert m.t == 1.0 and 1.4 < m.held < 1.6 and m.longest_hold == m.held
    assert [f.step for f in m.advance(1 / 60, lambda: frame(9))] == [9]
    assert m.t < 0.1
