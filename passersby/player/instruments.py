"""The artist's instruments in a tuned run (`passersby run --tune`), hooked into the stage:

- the config file watched (tune.Tuning): an edit applies live, an invalid one keeps
  the last good config and shows the error on screen; shader files hot-reload the
  same way (the last good program stays);
- the overlay (H or F1 toggles): fps, keyframe rate, queue depth, step, escapes, the
  feedback's pull, the tunable parameters with the selected one highlighted;
  Up/Down select, Left/Right nudge (Shift: 5x), W writes them back to the YAML file;
- C captures the picture at full output resolution (PNG, without the overlay) with a
  bookmark (SQLite) that returns exactly there; R starts/stops an MP4 recording;
- OSC (python-osc, localhost by default): /passersby/<section>/<key> value, and
  /passersby/capture.
GL side: never imports torch (the walk is retuned in the generator process).
"""
from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from passersby.common import bookmarks, messages
from passersby.common.errors import UserError
from passersby.player import loop, tune

if TYPE_CHECKING:
    from passersby.player.stage import Screen, Stage

log = logging.getLogger(__name__)
SHADER_POLL_S = 0.5
VISIBLE_ROWS = 12


class Instruments(loop.Hook):
    """A hook of the frame loop (loop.py): after each picture, and once a frame."""

    def __init__(self, tuning: tune.Tuning, root: Path | None,
                 store_root: Path | None = None, pinned: bool = False) -> None:
        """`root`: the state folder played from; `store_root`: where bookmarks and
        captures go (default: root; explore plays from a scratch folder); `pinned`:
        the walk starts held (explore starts still, at its bookmark)."""
        self.tuning, self.root = tuning, root
        self.step_size, self.pinned = 0.15, pinned
        store_root = store_root or root
        self.items = tune.tunables()
        self.selected, self.visible = 0, True
        cfg = tuning.cfg
        self.osc = tune.OscInput(cfg.tune.osc_host, cfg.tune.osc_port) \
            if cfg.tune.osc_port else None
        self.captures = Path(cfg.tune.captures) if cfg.tune.captures else \
            (store_root / "captures" if store_root else Path("captures"))
        self.store = bookmarks.Store.in_folder(store_root) if store_root else None
        self.recording: tuple[Any, Any] | None = None  # (screen, writer)
        self.capture_next: list[Any] = []
        self.notice, self.notice_until = "", 0.0
        self._shaders_at = 0.0
        self._frames, self._fps, self._fps_at = 0, 0.0, time.perf_counter()
        self._keyframes: dict[int, tuple[int, float]] = {}
        self._kps: dict[int, float] = {}

    # -- called by the stage ---------------------------------------------------------
    def window_opened(self, window: Any) -> None:
        window.listen = True

    def after_picture(self, screen: Screen) -> None:
        """The picture is drawn, the overlay not yet: capture and record here."""
        if screen.window is None:
            return
        if screen in self.capture_next:
            self.capture_next.remove(screen)
            self._capture(screen)
        if self.recording is not None and self.recording[0] is screen:
            try:
                self.recording[1].write(screen.window.read(screen.plan.rotate))
            except UserError as e:
                self._say(f"recording stopped: {e}")
                self._stop_recording()
        if self.visible:
            self._draw_overlay(screen)

    def tick(self, stage: Stage) -> None:
        """Once per loop: keys, OSC, the config file, the shaders, the figures."""
        self._count(stage)
        for screen in stage.screens:
            while screen.window is not None and screen.window.keys:
                self._key(stage, screen, *screen.window.keys.popleft())
        if self.osc is not None:  # coalesced: one rebuild and repaint a frame at most
            values = dict(self.osc.drain())
            if "capture" in values:
                del values["capture"]
                if stage.screens[0] not in self.capture_next:
                    self.capture_next.append(stage.screens[0])
            if values and self.tuning.set_many(values):
                self._apply(stage)
        if self.tuning.poll():
            self._apply(stage)
        now = time.perf_counter()
        if now - self._shaders_at > SHADER_POLL_S:
            self._shaders_at = now
            for screen in stage.screens:
                if screen.window is not None:
                    screen.window.make_current()
                    errors = screen.pipe.reload_shaders()  # logs each new error once
                    if errors:
                        self.notice = errors[0].splitlines()[0]  # on screen while it lasts
                        self.notice_until = now + 2 * SHADER_POLL_S

    def close(self) -> None:
        self._stop_recording()
        if self.osc is not None:
            self.osc.close()
        if self.store is not None:
            self.store.close()

    # -- the rest --------------------------------------------------------------------
    def _apply(self, stage: Stage) -> None:
        """Push the tuned configuration to every screen: the look here, the walk to its
        generator process. What needs a restart (screens, weights, rates) says so."""
        from passersby.player.screens import plans

        try:
            new = plans(self.tuning.cfg, self.root)
        except UserError as e:
            self._say(str(e))
            return
        if len(new) != len(stage.screens) or any(
                p.cfg.weights != s.plan.cfg.weights or p.cfg.stream != s.plan.cfg.stream
                for p, s in zip(new, stage.screens)):
            self._say("screens, weights and stream settings apply at the next start")
        for plan, screen in zip(new, stage.screens):
            if plan.cfg.look != screen.plan.cfg.look and screen.window is not None:
                screen.window.make_current()
                screen.pipe.set_look(plan.cfg.look)
            if plan.cfg.traversal != screen.plan.cfg.traversal and screen.session is not None:
                screen.session.producer.retune(plan.cfg.traversal)
            keep = {"stream": screen.plan.cfg.stream, "weights": screen.plan.cfg.weights}
            screen.plan = dataclasses.replace(screen.plan,
                                              cfg=dataclasses.replace(plan.cfg, **keep))

    def _key(self, stage: Stage, screen: Screen, key: int, mods: int) -> None:
        import glfw

        big = 5 if mods & glfw.MOD_SHIFT else 1
        if key in (glfw.KEY_H, glfw.KEY_F1):
            self.visible = not self.visible
        elif key == glfw.KEY_UP:
            self.selected = (self.selected - 1) % len(self.items)
        elif key == glfw.KEY_DOWN:
            self.selected = (self.selected + 1) % len(self.items)
        elif key in (glfw.KEY_LEFT, glfw.KEY_RIGHT):
            item = self.items[self.selected]
            direction = 1 if key == glfw.KEY_RIGHT else -1
            value = tune.get(self.tuning.cfg, item.key)
            for _ in range(big if item.kind in (int, float) else 1):
                value = tune.nudged(item, value, direction)
            if self.tuning.set(item.key, value):
                self._apply(stage)
        elif key == glfw.KEY_W:
            try:
                self._say(f"wrote {self.tuning.write_back()}")
            except (UserError, OSError) as e:
                self._say(f"cannot write the config: {e}")
        elif key == glfw.KEY_C:
            self.capture_next.append(screen)
        elif key == glfw.KEY_B:
            self._bookmark(screen, "bookmark")
        elif glfw.KEY_1 <= key <= glfw.KEY_9 and screen.session is not None:
            sign = -1 if mods & glfw.MOD_SHIFT else 1
            screen.session.producer.command(
                messages.Move(key - glfw.KEY_1, sign * self.step_size))
        elif key in (glfw.KEY_LEFT_BRACKET, glfw.KEY_RIGHT_BRACKET):
            self.step_size *= 2.0 if key == glfw.KEY_RIGHT_BRACKET else 0.5
            self.step_size = min(2.0, max(0.005, self.step_size))
        elif key == glfw.KEY_P and screen.session is not None:
            self.pinned = not self.pinned
            screen.session.producer.command(messages.Pin(self.pinned))
        elif key == glfw.KEY_R:
            if self.recording is None:
                self._start_recording(screen)
            else:
                self._stop_recording()

    def _here(self, screen: Screen, kind: str) -> bookmarks.Bookmark | None:
        """A bookmark of the picture on `screen` (not yet stored)."""
        if screen.shown is None or screen.session is None or screen.session.producer.info is None:
            self._say("nothing to keep yet: the stream is loading")
            return None
        frame, info = screen.shown, screen.session.producer.info
        return bookmarks.Bookmark(info.seed, frame.step, frame.z, info.generator_sha256,
                                  bookmarks.config_digest(screen.plan.cfg), kind=kind,
                                  traversal={"mode": screen.plan.cfg.traversal.mode})

    def _bookmark(self, screen: Screen, kind: str) -> None:
        bm = self._here(screen, kind)
        if bm is None:
            return
        if self.store is None:
            self._say("no state folder: bookmarks need one (--state)")
            return
        try:
            self._say(f"bookmarked {self.store.add(bm).name} (step {bm.step})")
        except UserError as e:
            self._say(str(e))

    def _capture(self, screen: Screen) -> None:
        from passersby.player.batch import write_png

        bm = self._here(screen, "capture")
        if bm is None:
            return
        frame, info = screen.shown, screen.session.producer.info
        try:
            self.captures.mkdir(parents=True, exist_ok=True)
            name = f"capture-{info.seed:032x}-{frame.step:09d}-s{screen.plan.index}.png"
            path = self.captures / name
            write_png(path, screen.window.read(screen.plan.rotate))
            if self.store is not None:
                where = self.store.path.parent  # relative when inside: the folder can move
                image = path.relative_to(where) if path.is_relative_to(where) else path
                bm = self.store.add(dataclasses.replace(bm, image=str(image)))
            self._say(f"captured {path.name} ({bm.name or 'no bookmark store'})")
        except (OSError, UserError) as e:
            self._say(f"capture failed: {e}")

    def _start_recording(self, screen: Screen) -> None:
        from passersby.player.video import open_writer

        if screen.window is None:
            return
        self.captures.mkdir(parents=True, exist_ok=True)
        path = self.captures / time.strftime(f"recording-%Y%m%d-%H%M%S-s{screen.plan.index}.mp4")
        try:
            w, h = screen.window.size
            writer = open_writer(path, (h, w) if screen.plan.rotate in (90, 270) else (w, h), 30.0)
        except (OSError, UserError) as e:
            self._say(f"cannot record: {e}")
            return
        self.recording = (screen, writer)
        self._say(f"recording {path.name} (R stops)")

    def _stop_recording(self) -> None:
        if self.recording is not None:
            screen, writer = self.recording
            self.recording = None
            try:
                self._say(f"recorded {writer.close()}")
            except (OSError, UserError) as e:
                self._say(f"recording failed: {e}")

    def _count(self, stage: Stage) -> None:
        self._frames += 1
        now = time.perf_counter()
        for i, s in enumerate(stage.screens):
            if s.shown is None:
                continue
            step, at = self._keyframes.get(i, (s.shown.step, now))
            if now - at >= 2.0:
                self._kps[i] = (s.shown.step - step) / (now - at)
                self._keyframes[i] = (s.shown.step, now)
            elif i not in self._keyframes:
                self._keyframes[i] = (step, at)
        if now - self._fps_at >= 1.0:
            self._fps, self._frames, self._fps_at = self._frames / (now - self._fps_at), 0, now

    def _say(self, text: str, seconds: float = 6.0) -> None:
        log.info("%s", text)
        self.notice, self.notice_until = text, time.perf_counter() + seconds

    def _draw_overlay(self, screen: Screen) -> None:
        from passersby.player.render.overlay import Overlay

        window = screen.window
        overlay = getattr(window, "overlay", None)  # dies with its window's context
        if overlay is None:
            overlay = window.overlay = Overlay(window.ctx)
        lines, highlight = self._lines(screen)
        error = self.tuning.error
        if not error and time.perf_counter() < self.notice_until:
            lines = lines + [self.notice]
        overlay.set_text(lines, highlight, error)
        overlay.draw(window.fbo)

    def _lines(self, screen: Screen) -> tuple[list[str], int]:
        i = screen.plan.index
        session = screen.session
        fig = session.producer.figures if session is not None else messages.Figures()
        depth = len(session.queue) if session is not None else 0
        rec = "  REC" if self.recording and self.recording[0] is screen else ""
        head = [f"screen {i}  {self._fps:5.1f} fps  {self._kps.get(i, 0.0):4.1f} keyframes/s  "
                f"queue {depth}{rec}",
                f"step {screen.shown.step if screen.shown else -1}  escapes "
                f"{fig.escapes}  pull {fig.pull:.3f}  agree "
                f"{fig.agree:+.2f}  mode {screen.plan.cfg.traversal.mode}"]
        first = max(0, min(self.selected - VISIBLE_ROWS // 2, len(self.items) - VISIBLE_ROWS))
        rows = []
        for item in self.items[first:first + VISIBLE_ROWS]:
            value = tune.get(self.tuning.cfg, item.key)
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            rows.append(f"{'>' if item is self.items[self.selected] else ' '} {item.key} = {shown}")
        keys = ["Up/Down select  Left/Right nudge (Shift 5x)  W write  C capture  R record  H hide",
                f"1-9 step along a direction (Shift back)  [ ] step {self.step_size:.3g}  "
                f"P {'release' if self.pinned else 'pin'}  B bookmark"]
        return head + rows + keys, len(head) + self.selected - first

