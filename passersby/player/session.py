"""The player's side of the generator process (generator/process.py: torch, the stream
and the chain live there; this process is the GL side): a Worker that starts, watches
and restarts it, a Session around it, and the offscreen render: the window's own screen
(stage.py) and frame loop (loop.py) on an Offscreen surface.

Restarts: when the child dies, or sends nothing for `hang_seconds` of the parent's
waiting (time the parent spends blocked on a full queue does not count), it is
killed and started again with the edition seed it reported and `skip_past` = the
last step received + 1, so the new child resumes from the state folder and never
shows a keyframe again. The screen keeps morphing what it has meanwhile; each
distinct event is logged once. What crosses the pipes: common/messages.py."""
from __future__ import annotations

import atexit
import logging
import multiprocessing as mp
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from passersby.common.config import Config
from passersby.common.errors import UserError
from passersby.common.frames import Frame, FrameQueue
from passersby.common.messages import (
    Alive,
    Command,
    Failed,
    Fatal,
    Figures,
    Hello,
    Keyframe,
    Picker,
    Pin,
    Retune,
    child_entry,
)

if TYPE_CHECKING:
    from passersby.player.loop import Hook

log = logging.getLogger(__name__)
_workers: set[Worker] = set()  # running ones, told at exit that their end is expected


@atexit.register
def _exiting() -> None:
    for w in list(_workers):
        w._closing.set()


class WorkerError(RuntimeError):
    """The generator process could not start or keeps failing."""


@dataclass(frozen=True)
class _Died:
    """The reader's own event, never sent: the pipe closed (the child is gone)."""


@dataclass(frozen=True)
class _Hung:
    """The reader's own event, never sent: nothing from the child for `waited` s."""
    waited: float


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
        self.info: Hello | None = None  # the running child's Hello
        self.error: str | None = None  # the last problem, for messages
        self.errors = self.restarts = 0
        self.last_step = -1
        self.progress = 0  # messages that show the child working (Hello, Alive, Keyframe)
        self._fatal: str | None = None
        self._user_fatal = False
        self._ready = threading.Event()
        self._closing = threading.Event()
        self._ctx = mp.get_context("spawn")  # never fork a process that holds GL or threads
        self._proc: Any = None
        self._conn: Any = None
        self._stop: Any = None
        self._commands: Any = None
        self.figures = Figures()  # the traversal's figures with the newest keyframe
        self._unknown: set[str] = set()  # message types already logged as unknown
        self._thread = threading.Thread(target=self._run, name="passersby-worker", daemon=True)

    # -- the parent's side -------------------------------------------------------------
    def start(self) -> Worker:
        _workers.add(self)
        self._spawn()
        self._thread.start()
        return self

    def wait_ready(self, timeout: float | None = None) -> Hello:
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
            target=child_entry, name="passersby-generator", daemon=True,
            args=("passersby.generator.process", "child_main", send, self._stop, self.cfg,
                  self.state_dir, seed, self.last_step + 1,
                  not self.lockstep, logging.getLogger().getEffectiveLevel(), commands,
                  self.pinned, self.stills))
        self._proc.start()
        send.close()  # the child holds the only writer: EOF when it dies
        commands.close()
        self._conn = recv

    def command(self, cmd: Command) -> None:
        """Send a command to the generator (messages.py): Move / Pin (exploring), Retune.
        A restarted child starts pinned or not, and with the traversal, as last asked."""
        from dataclasses import replace

        if isinstance(cmd, Pin):
            self.pinned = bool(cmd.on)
        elif isinstance(cmd, Retune):
            self.cfg = replace(self.cfg, traversal=cmd.traversal)
        try:
            self._commands.send(cmd)
        except (OSError, AttributeError):
            if not isinstance(cmd, Retune):  # a restarted child starts with self.cfg
                log.info("the generator is restarting: %s not applied", type(cmd).__name__)

    def retune(self, traversal: Any) -> None:
        """Change the walk's parameters (or mode) live; a restarted child keeps them."""
        self.command(Retune(traversal))

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
                msg = _Died()
            if msg is None:
                waited += time.monotonic() - t0
                limit = self.hang_seconds if started else self.start_seconds
                if waited < limit:
                    continue
                msg = _Hung(waited)
            waited = 0.0
            if isinstance(msg, (Hello, Alive, Keyframe)):
                self.progress += 1  # the heartbeat reads it: replaying unseen is alive too
            match msg:
                case Hello():
                    self.info, started = msg, True
                    self._ready.set()
                case Alive():
                    pass
                case Keyframe(step, image, z, figures):
                    self.figures = figures
                    self._deliver(Frame(step, image, z, still=figures.still))
                    backoff, self.error = 0.5, None
                case Failed(text):
                    self._report(text)
                case Fatal(text, user):
                    self._fatal, self._user_fatal = text, user
                    self._report(text)
                case _Died() | _Hung():
                    if self._closing.is_set():
                        break
                    if isinstance(msg, _Hung):
                        self._report(f"no keyframe for {msg.waited:.0f} s: the generator hangs")
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
                case _:
                    self._unknown_message(msg)

    def _unknown_message(self, msg: object) -> None:
        """Not in the protocol (a child of another version?): ignored, logged once a type."""
        kind = f"{type(msg).__module__}.{type(msg).__qualname__}"
        if kind not in self._unknown:
            self._unknown.add(kind)
            log.warning("generator: an unknown message ignored (%s)", kind)

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



@dataclass
class Session:
    cfg: Config
    queue: FrameQueue
    producer: Worker
    size: int  # keyframe side in pixels


def open_session(cfg: Config, state_dir: Path | None, live: bool,
                 pinned: bool = False,
                 stills: tuple[int | None, int | None] | None = None) -> Session:
    """Start the generator process (torch, the weights, the edition and its place) and
    wait until it has loaded; its start-up error (bad weights, bad config) is raised
    here. This process never imports torch: the window shows a picture meanwhile.
    `stills` (every, last): a batch's, see messages.Picker."""
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


def next_keyframe(session: Session, timeout: float = 120.0) -> Frame:
    """The next keyframe, waiting up to `timeout` s for it: the one wait on the generator,
    for the offscreen runs (render, stills: lockstep, they show every keyframe) and their
    start. The window never calls it: its screens take the queue's newest or nothing."""
    frame = session.queue.get(timeout)
    if frame is None:
        raise RuntimeError(f"the generator made no keyframe in {timeout:.0f} s "
                           f"({session.producer.error or 'no error reported'})")
    return frame


def play_offscreen(cfg: Config, session: Session, surface: Any,
                   hooks: Sequence[Hook]) -> int:
    """The stream on an offscreen surface through the window's own screen (stage.Screen)
    and frame loop (loop.play), at a fixed 1 / cfg.render.fps: from the first two
    keyframes, taking every keyframe (waiting for it) until a hook closes the surface."""
    from passersby.player import loop
    from passersby.player.screens import Plan
    from passersby.player.stage import Screen

    screen = Screen(Plan(0, cfg, None, None), take=lambda: next_keyframe(session))
    screen.session = session
    prev = next_keyframe(session)
    screen.go_live(next_keyframe(session), prev.image)
    screen.attach(surface)
    try:
        return loop.play(loop.Solo([screen]), loop.FixedClock(cfg.render.fps), hooks)
    finally:
        screen.detach()


def render_offscreen(cfg: Config, out: Path, state_dir: Path | None,
                     progress: Callable[[int, int], None] | None = None) -> Path:
    """Write cfg.render.seconds of the stream, exactly as the window would show it."""
    from passersby.player.display import Offscreen
    from passersby.player.loop import Writing
    from passersby.player.video import open_writer

    size = tuple(cfg.render.size)
    n_frames = max(1, round(cfg.render.seconds * cfg.render.fps))
    writer = open_writer(out, size, cfg.render.fps)  # fails early on a bad destination
    session = open_session(cfg, state_dir, live=False)
    try:
        play_offscreen(cfg, session, Offscreen(size), [Writing(writer, n_frames, progress)])
    finally:
        session.producer.stop()
    return writer.close()
