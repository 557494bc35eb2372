"""The stage: several screens played from one process, one window per monitor.

Like player.py, this module sees both sides (sessions on the torch side, windows
and pipelines on the GL side), importing them only when it runs.

Contexts: one GL context per window, none shared. glfw gives every window its
own context anyway, and each screen has its own pipeline (look, keyframes, work
textures), so sharing objects would save only the shader compiles. Unshared, a
context lives and dies with its window: when a monitor is unplugged its window is
destroyed with everything in it and the other screen's context is untouched,
whereas a shared object space would need a hidden window kept alive to hold it,
and one lost context would take every screen with it. The cost is one
make_current per screen per frame.

Vsync: with swap interval 1 on every window, each swap blocks until its own
vertical blank, so two windows would present at half the refresh rate (two waits
per loop). Only the first open window (the leader) swaps with interval 1; the
others swap with interval 0 right after the leader's swap returns, i.e. just
after the vertical blank, so a tear (monitors in phase) sits near the top, in
the flat mat.
The loop runs at the leader's refresh rate; when the leader's monitor goes, the
next open window leads. With no window open (every monitor unplugged) the loop
sleeps to about 60 Hz and the streams run on unseen.
"""
from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from passersby.common.config import Config
from passersby.common.errors import UserError
from passersby.common.frames import Frame
from passersby.player import loop
from passersby.player.morph import Morph
from passersby.player.quitguard import QuitGuard
from passersby.player.screens import Plan, plans
from passersby.unit import boot, watchdog
from passersby.unit.hotplug import Assigner, Change, DeskSlots, MonitorSource

if TYPE_CHECKING:
    from passersby.player.session import Session

log = logging.getLogger(__name__)
IDLE_S = 1 / 60      # loop period when no window is open (nothing to block on)
SCAN_S = 1.0         # re-read the monitor list at least this often
LOG_S = 60.0
RETRY_S = 300.0       # a stream that could not start (bad weights) is tried again this often
START_GRACE_S = 180.0  # loading the weights may take this long before the watchdog gives up


def _fit(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """`image` [H,W,3] uint8 resized to hw (the still of an older, other-sized model)."""
    if image.shape[:2] == hw:
        return image
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((hw[1], hw[0]), Image.BILINEAR))


class Screen:
    """One screen: its window (None while its monitor is away), pipeline and stream.

    The window's screens take the queue's newest keyframe or nothing (never wait);
    an offscreen render's screen (session.play_offscreen) is this same class on an
    Offscreen surface with a `take` that waits for every keyframe."""

    def __init__(self, plan: Plan, take: Callable[[], Frame | None] | None = None) -> None:
        self.plan, look = plan, plan.cfg.look
        self.take = take  # None: the session queue's get_nowait
        still = boot.load_still(plan.state_dir)
        image = still if still is not None else boot.blank((64, 64), look.mat_color)
        self.pair = (image, image)                # [H,W,3] uint8: prev, next keyframe shown
        self.window: Any = None
        self.pipe: Any = None
        self.opener: boot.Opener[Session] | None = None
        self.session: Session | None = None
        self.morph: Morph[Frame] | None = None    # None until the first live keyframe
        self.shown: Frame | None = None
        self.stills = boot.StillKeeper(plan.state_dir,
                                       boot.still_seconds(plan.cfg.stream.save_seconds))
        self.pinned = False  # explore: the walk starts held at the saved place
        self.started_at: float | None = None
        self.has_still = still is not None
        self.failure: str | None = None  # why the stream could not start (kept on screen)

    def liveness(self, now: float) -> Any:
        """What changes while this screen's picture is alive, for the watchdog (None: not
        alive). Live: the step shown and the generator's progress (a restarted generator
        replaying unseen steps is alive, while the morph holds the last picture); loading:
        the seconds since the start, for at most START_GRACE_S (the worker itself kills a
        generator that does not load in its own time)."""
        if self.failure is not None:  # a restart would not help: keep the picture up
            return ("failed", int(now))
        if self.session is None:
            if self.started_at is None or now - self.started_at > START_GRACE_S:
                return None
            return ("loading", int(now - self.started_at))
        return (self.shown.step if self.shown is not None else -1,
                self.session.producer.progress)

    def attach(self, window: Any) -> None:
        from passersby.player.render.pipeline import Pipeline

        h, w = self.pair[0].shape[:2]
        try:
            self.pipe = Pipeline(window.ctx, self.plan.cfg.look, (w, h))
            self.pipe.set_keyframes(*self.pair)
        except BaseException:
            window.close()
            raise
        self.window = window

    def detach(self) -> None:
        if self.window is None:
            return
        try:
            self.window.make_current()
            self.pipe.release()
        finally:
            self.window.close()
            self.window = self.pipe = None

    def start(self) -> None:
        from passersby.player import session as player

        self.started_at = time.perf_counter()
        self.opener = boot.Opener(lambda: player.open_session(self.plan.cfg, self.plan.state_dir,
                                                              live=True, pinned=self.pinned))

    def tick(self, dt: float) -> None:
        """Take the keyframes due (never waits); headless too, the stream runs on."""
        if self.session is None:
            from passersby.player.session import WorkerError

            if self.failure is not None and time.perf_counter() - self.started_at > RETRY_S:
                self.start()
            try:
                self.session = self.opener.result() if self.opener else None  # re-raises
            except (UserError, WorkerError) as e:
                self._failed(e)
            if self.session is None:
                return
            self.failure = None
        if self.window is not None:
            self.window.make_current()
        take = self.take or self.session.queue.get_nowait
        if self.morph is None:
            first = take()
            if first is not None:
                self.go_live(first)
                log.info("screen %d: live stream %.2f s after the process started (step %d)",
                         self.plan.index, boot.process_age(), first.step)
            return
        for frame in self.morph.advance(dt, take):
            self.pair = (self.pair[1], frame.image)
            if self.pipe is not None:
                self.pipe.push_keyframe(frame.image)
            self.shown = frame
        self.stills.offer(self.shown.step, self.shown.image)

    def _failed(self, error: Exception) -> None:
        """The stream could not start (corrupt weights, a bad taste model...). A unit that
        has played before keeps its last picture on screen (never black), logs why and
        tries again every RETRY_S; on a first start (nothing to show) it fails clearly."""
        self.opener = None
        if not self.has_still:
            raise error
        if str(error) != self.failure:
            log.error("screen %d: the stream cannot start: %s. The last picture stays on "
                      "screen; trying again every %.0f s", self.plan.index, error, RETRY_S)
            watchdog.status(f"screen {self.plan.index}: showing the last picture; the stream "
                            f"cannot start: {str(error)[:200]}")
        self.failure = str(error)

    def go_live(self, first: Frame, prev: np.ndarray | None = None) -> None:
        """Morph from `prev` ([H,W,3] uint8; default what is on screen, the still) into
        the stream: no cut."""
        prev = _fit(self.pair[1], first.image.shape[:2]) if prev is None else prev
        self.pair = (prev, first.image)
        if self.window is not None:
            if self.pipe.source_size == (self.pair[0].shape[1], self.pair[0].shape[0]):
                self.pipe.set_keyframes(*self.pair)
            else:
                self.pipe.release()
                window, self.window = self.window, None
                self.attach(window)
        self.morph = Morph(1.0 / self.plan.cfg.stream.keyframes_per_second)
        self.shown = first

    def render(self, time_s: float) -> None:
        if self.window is not None:
            self.window.make_current()
            self.pipe.render(self.window.fbo, self.morph.t if self.morph else 1.0, time_s,
                             self.plan.rotate)

    def stop(self) -> None:
        """Stop the generator (it writes the exact place) and keep the last picture."""
        if self.session is not None:
            self.session.producer.stop()
        if self.shown is not None:
            self.stills.offer(self.shown.step, self.shown.image, force=True)


class Stage:
    def __init__(self, plans_: list[Plan], source: MonitorSource, wanted: list[int],
                 vsync: bool) -> None:
        self.screens = [Screen(p) for p in plans_]
        self.source, self.vsync = source, vsync
        self.assigner = Assigner(wanted)
        self.stopping = False
        self._scanned = -1e18
        self._open_errors: set[str] = set()
        self._leader: int | None = None
        self.instruments: Any = None  # instruments.Instruments in a tuned run

    def reconcile(self) -> None:
        """Close windows whose monitor left, open windows on monitors that came."""
        self._scanned = time.perf_counter()
        for change in self.assigner.update(self.source.monitors()):
            self._apply(change)
        shown = [i for i, s in enumerate(self.screens) if s.window is not None]
        for i in shown:
            self.screens[i].window.set_vsync(self.vsync and i == shown[0])  # only it blocks
        leader = shown[0] if shown and self.vsync else None
        if leader is not None and leader != self._leader:
            log.info("vsync: screen %d leads (its swap waits for the vertical blank, the "
                     "others swap right after it)", leader)
        self._leader = leader

    def _apply(self, change: Change) -> None:
        from passersby.player.display import Window

        screen = self.screens[change.screen]
        screen.detach()
        if change.action == "close":
            return
        try:
            window = Window(f"passersby screen {change.screen}", monitor=change.monitor,
                            vsync=False)
            if self.instruments is not None:
                self.instruments.window_opened(window)
            screen.attach(window)
        except Exception as e:  # a monitor going as we open on it, a driver refusing
            self.assigner.failed(change.screen)
            msg = f"screen {change.screen}: cannot open a window on {change.monitor.name}: {e}"
            if msg not in self._open_errors:
                self._open_errors.add(msg)
                log.error("%s (retrying every %.0f s; its stream runs on unseen)", msg, SCAN_S)

    def present(self) -> None:
        """The leader's swap first (it waits for the vertical blank), then the others'."""
        windows = [s.window for s in self.screens if s.window is not None]
        for w in windows:
            w.swap()
        if not windows:
            time.sleep(IDLE_S)

    def should_close(self) -> bool:
        return self.stopping or any(s.window is not None and s.window.should_close()
                                    for s in self.screens)

    def play(self, poll: Any, max_seconds: float | None = None) -> dict:
        """The frame loop (loop.play) at the display's time: every screen takes its
        keyframes and renders, the instruments' after_picture; one present; then events,
        the instruments' tick and the stage's upkeep (_Upkeep)."""
        clock = loop.RealClock()
        upkeep = _Upkeep(clock, max_seconds)
        self.reconcile()
        hooks = [_Events(poll), *([self.instruments] if self.instruments else []), upkeep]
        try:
            frames = loop.play(self, clock, hooks)
        finally:
            upkeep.heartbeat.close()
        return {"frames": frames, "seconds": time.perf_counter() - clock.start,
                "steps": [s.shown.step if s.shown else -1 for s in self.screens],
                "held_s": [s.morph.held if s.morph else 0.0 for s in self.screens]}

    def _log(self, fps: float) -> None:
        parts = []
        for i, s in enumerate(self.screens):
            where = f"on {self.assigner.on[i]}" if s.window is not None else "unseen"
            parts.append(f"screen {i} {where} step {s.shown.step if s.shown else -1}")
        dropped = [s.session.queue.dropped if s.session else 0 for s in self.screens]
        log.info("%.1f fps; %s; keyframes dropped %s", fps, "; ".join(parts), dropped)
        watchdog.status(f"{fps:.1f} fps; " + "; ".join(parts))

    def close(self) -> None:
        for s in self.screens:
            try:
                s.stop()
            finally:
                s.detach()


class _Events(loop.Hook):
    """Window and monitor events (glfw's poll), right after the present."""

    def __init__(self, poll: Callable[[], None]) -> None:
        self.poll = poll

    def tick(self, stage: Any) -> None:
        self.poll()


class _Upkeep(loop.Hook):
    """The live stage's work once a frame, after the present: hotplug, the streams' start
    once the first picture is up, the watchdog's heartbeat, the log line, max_seconds."""

    def __init__(self, clock: loop.RealClock, max_seconds: float | None) -> None:
        self.clock, self.max_seconds = clock, max_seconds
        self.heartbeat = watchdog.Heartbeat()
        self.frames, self.loading, self.last_log = 0, False, clock.start

    def tick(self, stage: Any) -> None:
        now, start = self.clock.last, self.clock.start  # this frame's time, as the screens'
        self.frames += 1
        if stage.source.changed() or now - stage._scanned > SCAN_S:
            stage.reconcile()
        if not self.loading:
            self.loading = True
            log.info("first picture %.2f s after the process started", boot.process_age())
            watchdog.ready("showing the last pictures; loading the streams")
            for s in stage.screens:
                s.start()
        alive = [s.liveness(now) for s in stage.screens]
        if all(a is not None for a in alive):
            self.heartbeat.beat(tuple(alive))  # silent when any screen is frozen
        if now - self.last_log > LOG_S:
            stage._log(self.frames / (now - start))
            self.last_log = now
        if self.max_seconds is not None and now - start > self.max_seconds:
            stage.stopping = True


def run(cfg: Config, root: Path | None, windowed: bool,
        source: MonitorSource | None = None, max_seconds: float | None = None,
        tuning: Any = None, store_root: Path | None = None, pinned: bool = False) -> dict:
    """Every configured screen until Esc/Q in any window, SIGTERM, or max_seconds.

    Fullscreen: one window per monitor, following hotplug. Windowed (--windowed or
    display.fullscreen false): the windows side by side on the desktop. `source`
    replaces the monitor list (tests, rehearsals); screens then want their
    configured monitor indices in it. `tuning` (tune.Tuning): the artist's instruments
    (instruments.py); without it the player reads no key but quit and opens no port."""
    from passersby.player.display import Monitors

    todo = plans(cfg, root)
    windowed = windowed or not cfg.display.fullscreen
    held = Monitors()         # glfw stays initialised while every window may be closed
    if source is not None:
        wanted = [p.cfg.display.monitor for p in todo]
    elif windowed:
        source = DeskSlots([p.size or tuple(cfg.display.window_size) for p in todo])
        wanted = list(range(len(todo)))
    else:
        source, wanted = held, [p.cfg.display.monitor for p in todo]
    try:
        stage = Stage(todo, source, wanted, cfg.display.vsync)
        if tuning is not None:
            from passersby.player.instruments import Instruments

            stage.instruments = Instruments(tuning, root, store_root, pinned)
        for screen in stage.screens:
            screen.pinned = pinned
    except BaseException:
        held.close()
        raise
    # systemd and `kill` stop the player with SIGTERM: quit like Esc, saving every place
    previous = signal.signal(signal.SIGTERM, lambda *_: setattr(stage, "stopping", True))
    # ...and if a frame never ends (a tuned shader's endless loop), still stop, saving
    guard = QuitGuard(lambda: [s.stop() for s in stage.screens])
    try:
        result = stage.play(held.poll, max_seconds)
    finally:
        guard.close()
        watchdog.stopping()
        try:
            if stage.instruments is not None:
                stage.instruments.close()
            stage.close()
        finally:
            held.close()
            signal.signal(signal.SIGTERM, previous)
    return {**result, "step": result["steps"][0]}
