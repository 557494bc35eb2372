"""The loop: take keyframes, morph, render, present. The only module that sees both
the torch side (stream, chain) and the GL side (pipeline, display)."""
from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch

from passersby import rng, state, watchdog
from passersby.chain import Chain
from passersby.config import Config
from passersby.frames import Frame, FrameQueue
from passersby.morph import Morph
from passersby.stream import Keeper, Producer, Stream
from passersby.weights import weights_dir

log = logging.getLogger(__name__)


@dataclass
class Session:
    cfg: Config
    chain: Chain
    stream: Stream
    queue: FrameQueue
    producer: Producer


def _threads(cfg: Config) -> int:
    if cfg.stream.threads:
        return cfg.stream.threads
    # batch 1 gains little from threads; leave cores to the GL driver (llvmpipe renders
    # on the CPU here) and never oversubscribe: spinning OpenMP threads starve everyone
    return max(1, (os.cpu_count() or 2) // 2)


def open_session(cfg: Config, state_dir: Path | None, live: bool) -> Session:
    """Load the chain, find the edition and its place, start the producer."""
    torch.set_num_threads(_threads(cfg))
    chain = Chain.load(weights_dir(cfg.weights.dir), cfg.weights.generator,
                       cfg.weights.encoder or None, cfg.stream.device)
    saved = state.load(state_dir) if state_dir else None
    seed = cfg.stream.seed if cfg.stream.seed is not None else \
        saved.seed if saved is not None else rng.new_seed()
    if saved is not None and seed != saved.seed:
        log.warning("the seed asked for (%032x) is not the edition in %s (%032x): starting "
                    "edition %032x from its beginning", seed, state_dir, saved.seed, seed)
        saved = None
    stream = Stream(chain, cfg.traversal, cfg.stream.keyframes_per_second, seed, saved)
    log.info("edition %032x, step %d (first shown: %d), %s on %s", seed, stream.step,
             max(stream.step, stream.skip_to), cfg.weights.generator, chain.device)
    queue = FrameQueue(cfg.stream.queue)
    keeper = Keeper(state.Saver(state_dir) if state_dir else None,
                    round(cfg.stream.save_seconds * cfg.stream.keyframes_per_second),
                    cfg.stream.queue)
    producer = Producer(stream, queue, keeper, lockstep=not live).start()
    return Session(cfg, chain, stream, queue, producer)


def _first_two(session: Session, timeout: float = 120.0) -> tuple[Frame, Frame]:
    frames = [session.queue.get(timeout), session.queue.get(timeout)]
    if frames[0] is None or frames[1] is None:
        raise RuntimeError(f"the generator made no keyframe in {timeout:.0f} s "
                           f"({session.producer.error or 'no error reported'})")
    return frames[0], frames[1]


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
        pipe = Pipeline(off.ctx, cfg.look, (session.chain.size,) * 2)
        prev, shown = _first_two(session)
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
    """The endless stream in a glfw window until Esc/Q or the window closes."""
    from passersby.display import Window
    from passersby.render.pipeline import Pipeline

    disp = cfg.display if not windowed else replace(cfg.display, fullscreen=False)
    window = Window("passersby", disp.monitor, disp.fullscreen, tuple(disp.window_size),
                    disp.vsync)
    # systemd and `kill` stop the player with SIGTERM: quit like Esc, saving the place
    signal.signal(signal.SIGTERM, lambda *_: window.request_close())
    session = open_session(cfg, state_dir, live=True)
    heartbeat = watchdog.Heartbeat()  # a no-op outside systemd
    shown: Frame | None = None
    try:
        pipe = Pipeline(window.ctx, cfg.look, (session.chain.size,) * 2)
        prev, shown = _first_two(session)
        pipe.set_keyframes(prev.image, shown.image)
        morph: Morph[Frame] = Morph(1.0 / cfg.stream.keyframes_per_second)
        start = last = last_log = time.perf_counter()
        frames = 0
        while not window.should_close():
            now = time.perf_counter()
            for frame in morph.advance(now - last, session.queue.get_nowait):
                pipe.push_keyframe(frame.image)
                shown = frame
            last = now
            pipe.render(window.fbo, morph.t, now - start)
            window.swap()
            if frames == 0:  # the first picture is on screen
                watchdog.ready(f"edition {session.stream.seed:032x}, step {shown.step}")
            heartbeat.beat(shown.step)  # WATCHDOG=1 only while the picture advances
            window.poll()
            frames += 1
            if now - last_log > 60.0:
                log.info("%.1f fps, step %d, held %.1f s in all, %d keyframes dropped",
                         frames / (now - start), shown.step, morph.held, session.queue.dropped)
                watchdog.status(f"{frames / (now - start):.1f} fps, step {shown.step}")
                last_log = now
        pipe.release()
        return {"frames": frames, "seconds": time.perf_counter() - start,
                "step": shown.step, "held_s": morph.held}
    finally:
        watchdog.stopping()
        heartbeat.close()
        session.producer.stop()
        window.close()
