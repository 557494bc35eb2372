"""The generator process (the child): torch, the weights and the stream live there; the
player (GL) process only receives keyframes.

Why a process: a generator that hangs inside torch cannot be stopped in a thread; a
process can be killed and started again. The child also runs at a lower priority
as a whole (the render loop comes first) and keeps torch's threads out of the GL
process.

What it sends and receives, the protocol: common/messages.py. The player's side
(start, watch, restart) is player/session.py.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from passersby.common import state
from passersby.common.config import Config
from passersby.common.errors import UserError
from passersby.common.messages import (
    Alive,
    Command,
    Failed,
    Fatal,
    Figures,
    Hello,
    Keyframe,
    Move,
    Picker,
    Pin,
    Retune,
)

log = logging.getLogger(__name__)


NICE = 10            # the live child's niceness: measured pacing p99 1.49x -> 0.86x
MAX_REPLAY = 20_000  # past this many unseen steps a restart jumps instead of replaying
ALIVE_EVERY = 32     # replayed steps between Alive messages, at most
ALIVE_SECONDS = 0.5  # and about this long
EXPLORE_SEED = 0xE8F1  # the fixed random directions an explorer steps along


def threads(cfg: Config) -> int:
    if cfg.stream.threads:
        return cfg.stream.threads
    # batch 1 gains little from threads; leave cores to the GL driver (llvmpipe renders
    # on the CPU here) and never oversubscribe: spinning OpenMP threads starve everyone
    return max(1, (os.cpu_count() or 2) // 2)


def open_stream(cfg: Config, state_dir: Path | None, seed: int | None = None,
                skip_past: int = 0) -> tuple[Any, Any, Any]:
    """Load the chain, find the edition and its place: (chain, stream, keeper)."""
    import torch

    from passersby.common import rng
    from passersby.generator.chain import Chain
    from passersby.generator.stream import Keeper, Stream

    torch.set_num_threads(threads(cfg))
    chain = Chain.from_config(cfg.weights, cfg.stream.device)  # the refiner when configured
    saved = state.load(state_dir) if state_dir else None
    seed = seed if seed is not None else cfg.stream.seed if cfg.stream.seed is not None else \
        saved.seed if saved is not None else rng.new_seed()
    if saved is not None and seed != saved.seed:
        log.warning("the seed asked for (%032x) is not the edition in %s (%032x): starting "
                    "edition %032x from its beginning", seed, state_dir, saved.seed, seed)
        saved = None
    stream = Stream(chain, cfg.traversal, cfg.stream.keyframes_per_second, seed, saved)
    if skip_past > stream.skip_to:
        if skip_past - stream.step > MAX_REPLAY:  # no usable state: jump, do not replay
            stream.jump(skip_past)
        stream.skip_to = skip_past
    keeper = Keeper(state.Saver(state_dir) if state_dir else None,
                    round(cfg.stream.save_seconds * cfg.stream.keyframes_per_second),
                    cfg.stream.queue)
    return chain, stream, keeper


def _command(stream: Any, cmd: Command, ctl: dict) -> None:
    """A command from the player (tuning, exploring; messages.py): Retune, Move, Pin."""
    import numpy as np

    from passersby.common import rng
    from passersby.generator.traversal.feedback import shell

    match cmd:
        case Retune(traversal):
            stream.set_traversal(traversal)
            log.info("traversal retuned: %s", traversal)
        case Move(k, size):
            nz = stream.z.shape[0]
            d = rng.normal(EXPLORE_SEED, int(k), nz)
            d *= np.sqrt(nz) / np.linalg.norm(d)
            stream.z = shell(stream.z + float(size) * d)
            ctl["show"] = True
        case Pin(on):
            ctl["pinned"] = bool(on)
            ctl["show"] = True
            log.info("walk %s", "pinned" if on else "released")
        case _:
            log.warning("an unknown command from the player, ignored: %r", cmd)


def _child(conn: Any, stop: Any, cfg: Config, state_dir: Path | None, seed: int | None,
           skip_past: int, live: bool, log_level: int, commands: Any = None,
           pinned: bool = False, stills: Picker | None = None) -> None:
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s "
                        "[generator]: %(message)s")
    # stopping is the player's call (the stop event, or its death): a SIGTERM to the whole
    # service or a Ctrl-C to the terminal's process group must not kill this one first
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()

    def orphaned() -> None:  # the player was killed: never write beside its successor
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(0)

    threading.Thread(target=orphaned, daemon=True).start()
    try:
        chain, stream, keeper = open_stream(cfg, state_dir, seed, skip_past)
        if stills is not None:
            from passersby.generator.traversal.modes import likeness_window

            stills = stills.resolved(likeness_window(cfg.traversal,
                                                     cfg.stream.keyframes_per_second))
        conn.send(Hello(size=chain.shown_size, seed=stream.seed, step=stream.step,
                        skip_to=stream.skip_to, device=str(chain.device),
                        generator_sha256=chain.generator_manifest["tensors_sha256"],
                        refiner=chain.refiner_name))
        if live:  # loaded at full speed (the screen waits for it), then the render loop first
            try:
                os.nice(NICE)
            except OSError:
                log.debug("could not lower the generator's priority")
        backoff, ctl = 0.5, {"pinned": pinned, "show": pinned}
        while not stop.is_set():
            try:
                while commands is not None and commands.poll():
                    _command(stream, commands.recv(), ctl)
                if ctl["pinned"]:  # exploring: the walk holds; a move shows at once
                    if ctl["show"]:
                        image = chain.show(chain.generate(stream.z[None]))[0]  # as shown
                        conn.send(Keyframe(stream.step, image, stream.z.copy()))
                    ctl["show"] = False
                    stop.wait(0.02)
                    continue
                while stream.step < stream.skip_to and not stop.is_set():
                    stream.catch_up(ALIVE_EVERY, ALIVE_SECONDS)
                    keeper.replaying(stream)  # a kill now replays from here, not again
                    conn.send(Alive(stream.step))
                frame = stream.next_frame(stills.due) if stills else stream.next_frame()
                still = stills.take(frame.step) if stills else False
            except Exception as e:  # errors are data: report, back off, retry
                conn.send(Failed(f"{type(e).__name__}: {e}"))
                stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 0.5
            info = stream.last_info
            conn.send(Keyframe(frame.step, frame.image, frame.z,
                               Figures(pull=info.pull, agree=info.agree,
                                       escapes=stream.novelty.repeats, still=still)))
            keeper.after_step(stream)
        keeper.final(stream)
    except UserError as e:
        conn.send(Fatal(str(e), user=True))
    except (BrokenPipeError, EOFError):
        pass  # the parent is gone
    except BaseException as e:
        try:
            conn.send(Fatal(f"{type(e).__name__}: {e}", user=False))
        except OSError:
            pass
        raise


def child_main(*args: Any) -> None:
    """The process's entry: the loop, then out at once. Tearing down the interpreter
    (torch's modules) is slow, and a niced process on a busy machine gets little CPU."""
    code = 0
    try:
        _child(*args)
    except BaseException:
        log.exception("the generator process failed")
        code = 1
    logging.shutdown()
    os._exit(code)
