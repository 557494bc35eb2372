"""The loop: take keyframes, morph, render, present. Keyframes come from the generator
process (worker.py: torch, the stream and the chain live there); this process is the
GL side (pipeline, display)."""
from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from passersby import boot, watchdog
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


def open_session(cfg: Config, state_dir: Path | None, live: bool) -> Session:
    """Start the generator process (torch, the weights, the edition and its place) and
    wait until it has loaded; its start-up error (bad weights, bad config) is raised
    here. This process never imports torch: the window shows a picture meanwhile."""
    from passersby.worker import Worker

    queue = FrameQueue(cfg.stream.queue)
    producer = Worker(cfg, state_dir, queue, lockstep=not live).start()
    try:
        info = producer.wait_ready(producer.start_seconds)
    except BaseException:
        producer.stop()
        raise
    log.info("edition %032x, step %d (first shown: %d), %s on %s", info.seed, info.step,
             max(info.step, info.skip_to), cfg.weights.generator, info.device)
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


def run_window(cfg: Config, state_dir: Path | None, windowed: bool) -> dict:
    """The endless stream in a glfw window until Esc/Q, SIGTERM or the window closes.

    The last picture shown before (or the bare mat, on a first start) is on screen at
    once; torch, the weights and the producer load in a thread meanwhile, and the
    live stream morphs out of that picture."""
    from passersby.display import Window
    from passersby.render.pipeline import Pipeline

    disp = cfg.display if not windowed else replace(cfg.display, fullscreen=False)
    window = Window("passersby", disp.monitor, disp.fullscreen, tuple(disp.window_size),
                    disp.vsync)
    # systemd and `kill` stop the player with SIGTERM: quit like Esc, saving the place
    signal.signal(signal.SIGTERM, lambda *_: window.request_close())
    heartbeat = watchdog.Heartbeat()  # a no-op outside systemd
    still = boot.load_still(state_dir)
    size = (still.shape[1], still.shape[0]) if still is not None else (64, 64)
    placeholder = still if still is not None else boot.blank(size, cfg.look.mat_color)
    pipe = Pipeline(window.ctx, cfg.look, size)
    pipe.set_keyframes(placeholder, placeholder)
    opener: boot.Opener[Session] | None = None
    session: Session | None = None
    start, shown_once = time.perf_counter(), False
    try:
        while session is None:  # the still, grain moving, until the stream is ready
            if window.should_close():
                return {"frames": 0, "seconds": 0.0, "step": -1, "held_s": 0.0}
            pipe.render(window.fbo, 1.0, time.perf_counter() - start)
            window.swap()
            window.poll()
            if not shown_once:
                shown_once = True
                log.info("first picture %.2f s after the process started", boot.process_age())
                watchdog.ready("showing the last picture; loading the stream")
                # only now: importing torch in a thread would hold the GIL from the picture
                opener = boot.Opener(lambda: open_session(cfg, state_dir, live=True))
            session = opener.result() if opener is not None else None
        if session.size != size[0]:
            pipe.release()
            pipe = Pipeline(window.ctx, cfg.look, (session.size,) * 2)
            placeholder = None
        return _live(window, pipe, session, placeholder, heartbeat, state_dir, start)
    finally:
        watchdog.stopping()
        heartbeat.close()
        if session is not None:
            session.producer.stop()
        pipe.release()
        window.close()


def _live(window: Any, pipe: Any, session: Session, placeholder: Any,
          heartbeat: watchdog.Heartbeat, state_dir: Path | None, start: float) -> dict:
    """The render loop proper: never waits for the generator."""
    cfg = session.cfg
    first = _first(session)
    pipe.set_keyframes(first.image if placeholder is None else placeholder, first.image)
    log.info("live stream %.2f s after the process started (step %d)", boot.process_age(),
             first.step)
    shown, stills = first, boot.StillKeeper(state_dir, cfg.stream.save_seconds)
    morph: Morph[Frame] = Morph(1.0 / cfg.stream.keyframes_per_second)
    last = last_log = live_start = time.perf_counter()
    frames = 0
    while not window.should_close():
        now = time.perf_counter()
        for frame in morph.advance(now - last, session.queue.get_nowait):
            pipe.push_keyframe(frame.image)
            shown = frame
        last = now
        pipe.render(window.fbo, morph.t, now - start)
        window.swap()
        heartbeat.beat(shown.step)  # WATCHDOG=1 only while the picture advances
        window.poll()
        frames += 1
        stills.offer(shown.step, shown.image)
        if now - last_log > 60.0:
            fps = frames / (now - live_start)
            log.info("%.1f fps, step %d, held %.1f s in all, %d keyframes dropped",
                     fps, shown.step, morph.held, session.queue.dropped)
            watchdog.status(f"{fps:.1f} fps, step {shown.step}")
            last_log = now
    stills.offer(shown.step, shown.image, force=True)
    return {"frames": frames, "seconds": time.perf_counter() - live_start,
            "step": shown.step, "held_s": morph.held}
