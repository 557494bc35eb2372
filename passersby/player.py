"""A session with the generator process (worker.py: torch, the stream and the chain
live there; this process is the GL side), and the offscreen render. The live loop,
one window per screen, is stage.py."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from passersby.config import Config
from passersby.frames import Frame, FrameQueue
from passersby.morph import Morph

if TYPE_CHECKING:
    from passersby.worker import Worker

log = logging.getLogger(__name__)


@dataclass
class Session:
    cfg: Config
    queue: FrameQueue
    producer: "Worker"
    size: int  # keyframe side in pixels


def open_session(cfg: Config, state_dir: Path | None, live: bool,
                 pinned: bool = False, stills: tuple[int, int] | None = None) -> Session:
    """Start the generator process (torch, the weights, the edition and its place) and
    wait until it has loaded; its start-up error (bad weights, bad config) is raised
    here. This process never imports torch: the window shows a picture meanwhile.
    `stills` (every, last): a batch's, see worker.Picker."""
    from passersby.worker import Picker, Worker

    queue = FrameQueue(cfg.stream.queue)
    producer = Worker(cfg, state_dir, queue, lockstep=not live, pinned=pinned,
                      stills=Picker(*stills) if stills else None).start()
    try:
        info = producer.wait_ready(producer.start_seconds)
    except BaseException:
        producer.stop()
        raise
    log.info("edition %032x, step %d (first shown: %d), %s%s on %s, %d px keyframes",
             info.seed, info.step, max(info.step, info.skip_to), cfg.weights.generator,
             f" + {info.refiner}" if info.refiner else "", info.device, info.size)
    return Session(cfg, queue, producer, info.size)


def _first(session: Session, timeout: float = 120.0) -> Frame:
    """The next keyframe, waiting for it (start-up only: the render loop never waits)."""
    frame = session.queue.get(timeout)
    if frame is None:
        raise RuntimeError(f"the generator made no keyframe in {timeout:.0f} s "
                           f"({session.producer.error or 'no error reported'})")
    return frame


def render_offscreen(cfg: Config, out: Path, state_dir: Path | None,
                     progress: Callable[[int, int], None] | None = None) -> Path:
    """Write cfg.render.seconds of the stream, exactly as the window would show it."""
    from passersby.display import Offscreen
    from passersby.render.pipeline import Pipeline
    from passersby.video import open_writer

    size = tuple(cfg.render.size)
    n_frames = max(1, round(cfg.render.seconds * cfg.render.fps))
    writer = open_writer(out, size, cfg.render.fps)  # fails early on a bad destination
    session = open_session(cfg, state_dir, live=False)
    shown: Frame | None = None
    try:
        off = Offscreen(size)
        pipe = Pipeline(off.ctx, cfg.look, (session.size,) * 2)
        prev, shown = _first(session), _first(session)
        pipe.set_keyframes(prev.image, shown.image)
        morph: Morph[Frame] = Morph(1.0 / cfg.stream.keyframes_per_second)

        def take() -> Frame | None:
            frame = session.queue.get(timeout=120.0)
            if frame is None:
                raise RuntimeError(f"generator stalled: {session.producer.error}")
            return frame

        for i in range(n_frames):
            for frame in morph.advance(1.0 / cfg.render.fps if i else 0.0, take):
                pipe.push_keyframe(frame.image)
                shown = frame
            pipe.render(off.fbo, morph.t, i / cfg.render.fps)
            writer.write(off.read())
            if progress:
                progress(i + 1, n_frames)
        pipe.release()
        off.release()
    finally:
        session.producer.stop()
    return writer.close()
