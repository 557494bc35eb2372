"""The producer as a child process: torch, the weights and the stream live there; the
player (GL) process only receives keyframes.

Why a process: a generator that hangs inside torch cannot be stopped in a thread; a
process can be killed and started again. The child also runs at a lower priority
as a whole (the render loop comes first) and keeps torch's threads out of the GL
process.

Protocol (child -> parent, one pipe): ("hello", info) once loaded; ("alive", step)
while replaying unseen steps after a restart; ("frame", step, image, z, figures) with
the image as shown (refined when the chain has a refiner, stream.py); ("error",
text) for a failed step (the child retries with back-off); ("fatal", text, user)
before it exits. The parent asks it to stop through an Event.

Restarts: when the child dies, or sends nothing for `hang_seconds` of the parent's
waiting (time the parent spends blocked on a full queue does not count), it is
killed and started again with the edition seed it reported and `skip_past` = the
last step received + 1, so the new child resumes from the state folder and never
shows a keyframe again. The screen keeps morphing what it has meanwhile; each
distinct event is logged once.
"""
from __future__ import annotations

import atexit
import logging
import multiprocessing as mp
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from passersby import state
from passersby.config import Config
from passersby.errors import UserError
from passersby.frames import Frame, FrameQueue

log = logging.getLogger(__name__)
_workers: "set[Worker]" = set()  # running ones, told at exit that their end is expected


@atexit.register
def _exiting() -> None:
    for w in list(_workers):
        w._closing.set()
NICE = 10            # the live child's niceness: measured pacing p99 1.49x -> 0.86x
MAX_REPLAY = 20_000  # past this many unseen steps a restart jumps instead of replaying
ALIVE_EVERY = 32     # replayed steps between "alive" messages
EXPLORE_SEED = 0xE8F1  # the fixed random directions an explorer steps along


class WorkerError(RuntimeError):
    """The generator process could not start or keeps failing."""


@dataclass
class Picker:
    """A batch's stills (batch.py): every `every`-th keyframe past the step `last` of the
    last still. The generator process picks them, so it refines only those (a still in
    `every` keyframes: the others go unrefined, as the batch skips them); the parent
    keeps `last` up to date, so a restarted child picks as the first would have."""
    every: int
    last: int

    def due(self, step: int) -> bool:
        return step >= self.last + self.every

    def take(self, step: int) -> bool:
        """Is the keyframe at `step` a still? (then the next is `every` past it)"""
        if not self.due(step):
            return False
        self.last = step
        return True


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

    from passersby import rng
    from passersby.chain import Chain
    from passersby.stream import Keeper, Stream

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


def _command(stream: Any, msg: tuple, ctl: dict) -> None:
    """A command from the player (tuning, exploring):
    ("traversal", TraversalConfig) retunes the walk live; ("move", k, size) moves the
    latent along the k-th fixed random direction by `size` (fraction of the prior's
    radius); ("pin", bool) holds the walk where it is (moves still show)."""
    import numpy as np

    from passersby import rng
    from passersby.traversal.feedback import shell

    if msg[0] == "traversal":
        stream.set_traversal(msg[1])
        log.info("traversal retuned: %s", msg[1])
    elif msg[0] == "move":
        nz = stream.z.shape[0]
        d = rng.normal(EXPLORE_SEED, int(msg[1]), nz)
        d *= np.sqrt(nz) / np.linalg.norm(d)
        stream.z = shell(stream.z + float(msg[2]) * d)
        ctl["show"] = True
    elif msg[0] == "pin":
        ctl["pinned"] = bool(msg[1])
        ctl["show"] = True
        log.info("walk %s", "pinned" if msg[1] else "released")


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
        conn.send(("hello", {"size": chain.shown_size, "seed": stream.seed, "step": stream.step,
                             "skip_to": stream.skip_to, "device": str(chain.device),
                             "generator_sha256":
                                 chain.generator_manifest["tensors_sha256"],
                             "refiner": chain.refiner_name}))
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
                        conn.send(("frame", stream.step, image, stream.z.copy(), {}))
                    ctl["show"] = False
                    stop.wait(0.02)
                    continue
                while stream.step < stream.skip_to and not stop.is_set():
                    stream.catch_up(ALIVE_EVERY)
                    keeper.replaying(stream)  # a kill now replays from here, not again
                    conn.send(("alive", stream.step))
                frame = stream.next_frame(stills.due) if stills else stream.next_frame()
                still = stills.take(frame.step) if stills else False
            except Exception as e:  # errors are data: report, back off, retry
                conn.send(("error", f"{type(e).__name__}: {e}"))
                stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 0.5
            info = stream.last_info
            conn.send(("frame", frame.step, frame.image, frame.z,
                       {"pull": info.pull, "agree": info.agree, "escapes":
                        stream.novelty.repeats, "still": still}))
            keeper.after_step(stream)
        keeper.final(stream)
    except UserError as e:
        conn.send(("fatal", str(e), True))
    except (BrokenPipeError, EOFError):
        pass  # the parent is gone
    except BaseException as e:
        try:
            conn.send(("fatal", f"{type(e).__name__}: {e}", False))
        except OSError:
            pass
        raise


def _child_main(*args: Any) -> None:
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


@dataclass
class Info:
    size: int              # side of the keyframes sent (the refiner's, when it is on)
    seed: int
    step: int
    skip_to: int
    device: str
    generator_sha256: str
    refiner: str = ""      # the refiner package in use, "" when none


class Worker:
    """A generator child process feeding a FrameQueue; see the module docstring.

    `lockstep=True` (offscreen rendering): every keyframe is delivered, waiting for
    room as long as it takes. Otherwise the newest wins after `patience` seconds.
    `stills` (a batch, lockstep): the keyframes it picks come with Frame.still set."""

    def __init__(self, cfg: Config, state_dir: Path | None, queue: FrameQueue,
                 lockstep: bool = False, patience: float = 5.0, hang_seconds: float = 20.0,
                 start_seconds: float = 300.0, pinned: bool = False,
                 stills: Picker | None = None) -> None:
        self.cfg, self.state_dir, self.queue, self.stills = cfg, state_dir, queue, stills
        self.lockstep, self.patience, self.pinned = lockstep, patience, pinned
        self.hang_seconds, self.start_seconds = hang_seconds, start_seconds
        self.info: Info | None = None
        self.error: str | None = None  # the last problem, for messages
        self.errors = self.restarts = 0
        self.last_step = -1
        self.progress = 0  # messages that show the child working (hello, alive, frame)
        self._fatal: str | None = None
        self._user_fatal = False
        self._ready = threading.Event()
        self._closing = threading.Event()
        self._ctx = mp.get_context("spawn")  # never fork a process that holds GL or threads
        self._proc: Any = None
        self._conn: Any = None
        self._stop: Any = None
        self._commands: Any = None
        self.figures: dict = {}  # the traversal's figures with the newest keyframe
        self._thread = threading.Thread(target=self._run, name="passersby-worker", daemon=True)

    # -- the parent's side -------------------------------------------------------------
    def start(self) -> "Worker":
        _workers.add(self)
        self._spawn()
        self._thread.start()
        return self

    def wait_ready(self, timeout: float | None = None) -> Info:
        """Block until the first child has loaded; its fatal start-up error is raised
        here (UserError for bad weights or config: the caller exits clearly)."""
        if not self._ready.wait(timeout):
            raise WorkerError(f"the generator did not start within {timeout:.0f} s")
        if self.info is None:
            if self._user_fatal:
                raise UserError(self._fatal or "the generator could not start")
            raise WorkerError(f"the generator could not start: {self._fatal}")
        return self.info

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the child to stop (it writes its exact place), then make sure it is gone."""
        self._closing.set()
        _workers.discard(self)
        if self._stop is not None:
            self._stop.set()
        self.queue.get_nowait()  # make room so a blocked put returns
        self._thread.join(timeout)
        self._reap(timeout)

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    # -- the reader thread -------------------------------------------------------------
    def _spawn(self) -> None:
        recv, send = self._ctx.Pipe(duplex=False)
        commands, self._commands = self._ctx.Pipe(duplex=False)
        self._stop = self._ctx.Event()
        seed = self.info.seed if self.info else None
        self._proc = self._ctx.Process(
            target=_child_main, name="passersby-generator", daemon=True,
            args=(send, self._stop, self.cfg, self.state_dir, seed, self.last_step + 1,
                  not self.lockstep, logging.getLogger().getEffectiveLevel(), commands,
                  self.pinned, self.stills))
        self._proc.start()
        send.close()  # the child holds the only writer: EOF when it dies
        commands.close()
        self._conn = recv

    def command(self, *msg: Any) -> None:
        """Send an exploring command ("move", k, size) / ("pin", on) to the generator."""
        if msg[0] == "pin":
            self.pinned = bool(msg[1])  # a restarted child starts as it was
        try:
            self._commands.send(msg)
        except (OSError, AttributeError):
            log.info("the generator is restarting: %s not applied", msg[0])

    def retune(self, traversal: Any) -> None:
        """Change the walk's parameters (or mode) live; a restarted child keeps them."""
        from dataclasses import replace

        self.cfg = replace(self.cfg, traversal=traversal)
        try:
            self._commands.send(("traversal", traversal))
        except (OSError, AttributeError):
            pass  # the child is being restarted: it starts with self.cfg

    def _reap(self, timeout: float) -> None:
        proc = self._proc
        if proc is None:
            return
        deadline = time.monotonic() + timeout
        while proc.is_alive() and time.monotonic() < deadline:  # a child blocked on a full
            try:                                                 # pipe must get to stop
                if self._conn.poll(0.1):
                    self._conn.recv()
            except (EOFError, OSError):
                proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            log.warning("the generator process did not stop within %.0f s; killing it", timeout)
            proc.kill()
            proc.join(5.0)

    def _run(self) -> None:
        waited, backoff, started = 0.0, 0.5, False
        while not self._closing.is_set():
            t0 = time.monotonic()
            try:
                msg = self._conn.recv() if self._conn.poll(0.25) else None
            except (EOFError, OSError):
                msg = ("died",)
            if msg is None:
                waited += time.monotonic() - t0
                limit = self.hang_seconds if started else self.start_seconds
                if waited < limit:
                    continue
                msg = ("hung", waited)
            waited = 0.0
            kind = msg[0]
            if kind in ("hello", "alive", "frame"):
                self.progress += 1  # the heartbeat reads it: replaying unseen is alive too
            if kind == "hello":
                self.info, started = Info(**msg[1]), True
                self._ready.set()
            elif kind == "frame":
                self.figures = msg[4]
                self._deliver(Frame(msg[1], msg[2], msg[3], still=bool(msg[4].get("still"))))
                backoff, self.error = 0.5, None
            elif kind == "error":
                self._report(msg[1])
            elif kind == "fatal":
                self._fatal, self._user_fatal = msg[1], msg[2]
                self._report(msg[1])
            elif kind in ("died", "hung"):
                if self._closing.is_set():
                    break
                if kind == "hung":
                    self._report(f"no keyframe for {msg[1]:.0f} s: the generator hangs")
                elif self._fatal is None:
                    self._report(f"the generator process died (exit code "
                                 f"{self._proc.exitcode if self._proc else '?'})")
                if self.info is None and self._fatal is not None:
                    self._ready.set()  # a start-up failure: wait_ready raises it
                    if self._user_fatal:
                        return
                self._restart(backoff)
                backoff, started = min(backoff * 2, 60.0), False
                self._fatal = None

    def _deliver(self, frame: Frame) -> None:
        self.last_step = frame.step
        if frame.still and self.stills is not None:  # a restarted child picks on from here
            self.stills = Picker(self.stills.every, frame.step)
        if self.lockstep:
            while not self._closing.is_set() and not self.queue.put(frame, 0.5, drop=False):
                pass
        else:
            self.queue.put(frame, self.patience)

    def _restart(self, backoff: float) -> None:
        self._proc.kill()
        self._proc.join(5.0)
        self._conn.close()
        if self._closing.wait(backoff):
            return
        self.restarts += 1
        self._spawn()
        log.info("generator restarted (%d so far), resuming after step %d", self.restarts,
                 self.last_step)

    def _report(self, msg: str) -> None:
        self.errors += 1
        if msg != self.error:
            log.error("generator: %s (the screen keeps morphing; retrying)", msg)
        self.error = msg
