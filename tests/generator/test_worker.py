"""The generator process: keyframes cross the process boundary in order; a crash or a
hang gets it killed and restarted without showing anything twice; bad weights fail
at start with the file's name; a failing step is retried and logged once; the
messages cross by pickle and an unknown one is ignored."""
from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import signal
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import default_world
from passersby.common import config, messages, state
from passersby.common.errors import UserError
from passersby.common.frames import Frame, FrameQueue
from passersby.generator import process
from passersby.generator.traversal.feedback import StepInfo
from passersby.player import session as worker


def cfg(**stream) -> config.Config:  # type: ignore[no-untyped-def]
    """The 64 px world, refiner off whether or not its package is made (the refiner
    through the pipe: tests/generator/test_refiner_chain.py)."""
    return config.load(None, {"stream": {"threads": 1, "save_seconds": 1.0, **stream},
                              "weights": {"refiner": None}})


def take(q: FrameQueue, n: int, timeout: float = 60.0) -> list[Frame]:
    got: list[Frame] = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        assert time.monotonic() < deadline, f"only {len(got)} keyframes in {timeout:.0f} s"
        f = q.get(0.5)
        if f is not None:
            got.append(f)
    return got


def test_frames_cross_in_order_and_a_second_worker_resumes_after_them(tmp_path: Path) -> None:
    q = FrameQueue(4)
    w = worker.Worker(cfg(seed=0x77), tmp_path, q, lockstep=True).start()
    try:
        info = w.wait_ready(120)
        frames = take(q, 12)
    finally:
        w.stop()
    assert info.size == 64 and info.seed == 0x77 and not w.alive
    steps = [f.step for f in frames]
    assert steps == list(range(steps[0], steps[0] + 12))
    assert frames[0].image.shape == (64, 64, 3) and frames[0].z.shape == (100,)
    assert state.load(tmp_path) is not None
    q2 = FrameQueue(4)
    w2 = worker.Worker(cfg(seed=0x77), tmp_path, q2, lockstep=True).start()
    try:
        assert take(q2, 1)[0].step > steps[-1]
    finally:
        w2.stop()


@pytest.mark.parametrize("fault", ["crash", "hang"])
def test_a_dead_or_hung_generator_is_restarted_and_never_repeats(tmp_path: Path, fault: str,
                                                                 caplog) -> None:  # type: ignore[no-untyped-def]
    q = FrameQueue(4)
    w = worker.Worker(cfg(seed=0x78), tmp_path, q, lockstep=True, hang_seconds=3.0).start()
    try:
        w.wait_ready(120)
        before = take(q, 8)
        pid = w.pid
        assert pid is not None
        with caplog.at_level(logging.ERROR):
            os.kill(pid, signal.SIGKILL if fault == "crash" else signal.SIGSTOP)
            after = take(q, 8, timeout=120)
        assert w.restarts == 1 and w.pid != pid
    finally:
        w.stop()
        if fault == "hang":
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    steps = [f.step for f in before + after]
    assert all(b > a for a, b in zip(steps, steps[1:])), steps  # nothing shown twice
    assert ("died" if fault == "crash" else "hangs") in caplog.text


def test_corrupt_weights_fail_at_start_naming_the_file(tmp_path: Path, weights_root: Path) -> None:
    import shutil

    bad = tmp_path / "weights"
    world, encoder, _ = default_world()
    shutil.copytree(weights_root / world, bad / world)               # the default world
    shutil.copytree(weights_root / encoder, bad / encoder)
    f = bad / world / "model.safetensors"
    blob = bytearray(f.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    f.write_bytes(bytes(blob))
    c = config.load(None, {"stream": {"threads": 1}, "weights": {"dir": str(bad)}})
    w = worker.Worker(c, None, FrameQueue(4)).start()
    try:
        with pytest.raises(UserError, match="model.safetensors"):
            w.wait_ready(120)
    finally:
        w.stop()
    assert not w.alive and w.restarts == 0  # a start-up error does not spin


class FlakyStream:
    def __init__(self, fail: int) -> None:
        self.fail, self.step, self.skip_to, self.seed = fail, 0, 0, 1
        self.last_info, self.novelty = StepInfo(), SimpleNamespace(repeats=0)

    def next_frame(self) -> Frame:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        self.step += 1
        return Frame(self.step, np.zeros((4, 4, 3), np.uint8), np.zeros(2, np.float32))


class FakeKeeper:
    def __init__(self) -> None:
        self.final_at = -1

    def after_step(self, stream: FlakyStream) -> None:
        pass

    def final(self, stream: FlakyStream) -> None:
        self.final_at = stream.step


class Chain:
    size, device, generator_manifest = 4, "cpu", {"tensors_sha256": "00" * 32}
    shown_size, refiner_name = 4, ""


def test_a_failing_step_is_reported_and_retried_in_the_child(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The child's loop, run in this process with a stream that fails three times."""
    sent: list[messages.FromChild] = []
    stop = threading.Event()
    keeper = FakeKeeper()

    class Conn:
        def send(self, msg: messages.FromChild) -> None:
            sent.append(msg)
            if sum(isinstance(m, messages.Keyframe) for m in sent) == 3:
                stop.set()

    monkeypatch.setattr(process, "open_stream",
                        lambda *a: (Chain(), FlakyStream(fail=3), keeper))
    monkeypatch.setattr(threading.Event, "wait", lambda self, t=None: self.is_set())  # no back-off
    process._child(Conn(), stop, cfg(), None, None, 0, False, logging.INFO)
    kinds = [type(m).__name__ for m in sent]
    assert kinds == ["Hello", "Failed", "Failed", "Failed", "Keyframe", "Keyframe", "Keyframe"]
    assert sent[0] == messages.Hello(4, 1, 0, 0, "cpu", "00" * 32, "")
    assert isinstance(sent[1], messages.Failed) and "illegal memory access" in sent[1].text
    assert [m.step for m in sent if isinstance(m, messages.Keyframe)] == [1, 2, 3]
    assert sent[-1].figures == messages.Figures(0.0, 0.0, 0, False) and keeper.final_at == 3


def test_the_walk_is_retuned_live_without_a_restart(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    """`run --tune` changes the mode: the generator process switches, steps go on."""
    c = cfg(seed=0x79)
    q = FrameQueue(4)
    w = worker.Worker(c, tmp_path, q, lockstep=True).start()
    try:
        w.wait_ready(120)
        before = take(q, 4)
        w.retune(dataclasses.replace(c.traversal, mode="orbit"))
        after = take(q, 12)
    finally:
        w.stop()
    steps = [f.step for f in before + after]
    assert steps == list(range(steps[0], steps[0] + 16)) and w.restarts == 0
    assert w.cfg.traversal.mode == "orbit"  # a restarted child would keep it
    saved = state.load(tmp_path)
    assert saved is not None and saved.traversal  # the orbit's bodies were saved


def every_message() -> list:  # type: ignore[type-arg]
    return [messages.Hello(64, 0x77 << 100, 5, 9, "cuda:0", "ab" * 32, "refiner-256"),
            messages.Alive(32),
            messages.Keyframe(7, np.arange(48, dtype=np.uint8).reshape(4, 4, 3),
                              np.linspace(-1, 1, 100, dtype=np.float32),
                              messages.Figures(0.25, -0.5, 3, True)),
            messages.Failed("RuntimeError: CUDA error"),
            messages.Fatal("weights/met64/model.safetensors is corrupt", user=True),
            messages.Retune(config.Config().traversal),
            messages.Move(3, -0.125),
            messages.Pin(True)]


@pytest.mark.parametrize("msg", every_message(), ids=lambda m: type(m).__name__)
def test_every_message_crosses_by_pickle_unchanged(msg) -> None:  # type: ignore[no-untyped-def]
    back = pickle.loads(pickle.dumps(msg))
    assert type(back) is type(msg)
    if isinstance(msg, messages.Keyframe):  # arrays: compared field by field
        assert back.step == msg.step and back.figures == msg.figures
        assert np.array_equal(back.image, msg.image) and back.image.dtype == np.uint8
        assert np.array_equal(back.z, msg.z) and back.z.dtype == np.float32
    else:
        assert back == msg
    with pytest.raises(dataclasses.FrozenInstanceError):
        msg.text = "changed"  # type: ignore[union-attr]


class Pipe:
    """The reader's end of the pipe, fed from a list; then the child "dies" (EOF)."""

    def __init__(self, w: worker.Worker, msgs: list) -> None:  # type: ignore[type-arg]
        self.w, self.msgs = w, msgs

    def poll(self, timeout: float = 0.0) -> bool:
        return True

    def recv(self):  # type: ignore[no-untyped-def]
        if self.msgs:
            return self.msgs.pop(0)
        self.w._closing.set()  # the reader stops at the death it would restart after
        raise EOFError


def test_the_reader_follows_each_message_and_ignores_an_unknown_one(caplog) -> None:  # type: ignore[no-untyped-def]
    """The parent's side in this thread, fed messages as a child would send them,
    among them two of another kind: logged once, nothing breaks, the rest goes on."""
    w = worker.Worker(cfg(), None, FrameQueue(8), lockstep=True,
                      stills=messages.Picker(2, -2))
    hello, alive, kf, failed = every_message()[:4]
    plain = messages.Keyframe(8, kf.image, kf.z)
    w._conn = Pipe(w, [hello, ("frame", 1, None, None, {}), alive, failed, kf,
                       ("frame", 2, None, None, {}), plain])
    with caplog.at_level(logging.WARNING):
        w._run()
    assert w.info is hello and w.progress == 4 and w.restarts == 0
    assert w.last_step == 8 and w.stills == messages.Picker(2, 7)
    got = [w.queue.get_nowait(), w.queue.get_nowait()]
    assert [(f.step, f.still) for f in got] == [(7, True), (8, False)]
    assert w.figures == messages.Figures() and w.errors == 1 and w.error is None
    unknown = [r for r in caplog.records if "unknown message" in r.getMessage()]
    assert len(unknown) == 1 and "tuple" in unknown[0].getMessage()


def test_commands_are_kept_for_a_restarted_child() -> None:
    """Pin and Retune are what a new child starts with; with no child the command is
    dropped (logged), and nothing raises."""
    c = cfg()
    w = worker.Worker(c, None, FrameQueue(4))
    sent: list = []  # type: ignore[type-arg]
    w._commands = SimpleNamespace(send=sent.append)
    orbit = dataclasses.replace(c.traversal, mode="orbit")
    w.command(messages.Pin(True))
    w.retune(orbit)
    w.command(messages.Move(0, 0.1))
    assert sent == [messages.Pin(True), messages.Retune(orbit), messages.Move(0, 0.1)]
    assert w.pinned and w.cfg.traversal.mode == "orbit"
    w._commands = None  # restarting
    w.command(messages.Pin(False))
    w.retune(c.traversal)
    assert not w.pinned and w.cfg.traversal == c.traversal
