"""Where pictures go: a glfw window (one per screen) or an offscreen EGL target.

The window owns GL (context, swap, input); the renderer only draws into `fbo`.
Nothing happens at import: glfw and the contexts are created by the classes.
"""
from __future__ import annotations

import collections
import logging
import warnings
from collections.abc import Callable
from types import TracebackType
from typing import Any

import moderngl
import numpy as np

from passersby.common.errors import UserError
from passersby.unit.hotplug import Monitor

log = logging.getLogger(__name__)


class DisplayError(UserError, RuntimeError):
    """No usable display or GL context; the message says what to install or use."""


def _check_size(size: tuple[int, int], where: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in size)
    except (TypeError, ValueError):
        raise DisplayError(f"{where}: size {size!r} is not a (width, height) pair") from None
    if w < 1 or h < 1:
        raise DisplayError(f"{where}: size {w}x{h} must be at least 1x1")
    return w, h


def standalone_context() -> moderngl.Context:
    """A headless GL 3.3+ context: EGL first (no display needed), then the default."""
    try:
        return moderngl.create_standalone_context(require=330, backend="egl")
    except Exception as egl_error:  # moderngl/glcontext raise several types
        log.info("EGL standalone context failed (%s); trying the default backend", egl_error)
        try:
            return moderngl.create_standalone_context(require=330)
        except Exception as default_error:
            raise DisplayError(
                f"no headless OpenGL 3.3 context: EGL failed ({egl_error}) and the default "
                f"backend failed ({default_error}); install Mesa's EGL and drivers "
                f"(apt-get install -y libegl1 libgl1-mesa-dri) or a GPU driver") from None


class Readback:
    """The one GL read-back: a framebuffer's pixels as [H,W,3] uint8, top row first and
    upright (a picture turned `rotate` degrees clockwise on its panel, screens[k].rotate,
    is turned back). Its buffers are made once per size: with rotate 0 the same array is
    returned every call, so copy it to keep a frame."""

    def __init__(self) -> None:
        self._raw = np.empty((0, 0, 3), np.uint8)    # as GL gives it: bottom row first
        self._out = self._raw                         # top row first

    def __call__(self, fbo: Any, size: tuple[int, int], rotate: int = 0) -> np.ndarray:
        w, h = size
        if self._raw.shape[:2] != (h, w):
            self._raw, self._out = np.empty((h, w, 3), np.uint8), np.empty((h, w, 3), np.uint8)
        fbo.read_into(self._raw, viewport=(0, 0, w, h), components=3, alignment=1)
        if rotate % 360 == 0:
            np.copyto(self._out, self._raw[::-1])
            return self._out
        return np.ascontiguousarray(np.rot90(self._raw[::-1], k=rotate // 90))


class Offscreen:
    """A headless framebuffer of `size` (W, H) to render into and read back; it offers
    the window's surface (ctx, fbo, size, make_current, swap, should_close, close), so
    the frame loop (loop.py) plays on either."""

    def __init__(self, size: tuple[int, int]) -> None:
        self._size = _check_size(size, "Offscreen")
        self._ctx = standalone_context()
        self._rbo = self._ctx.renderbuffer(self._size, 4)           # RGBA8
        self._fbo = self._ctx.framebuffer(color_attachments=[self._rbo])
        self._readback = Readback()
        self._closing = False

    @property
    def ctx(self) -> moderngl.Context:
        return self._ctx

    @property
    def fbo(self) -> moderngl.Framebuffer:
        return self._fbo

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    def read(self, rotate: int = 0) -> np.ndarray:
        """The framebuffer as [H,W,3] uint8, top row first (Readback: the same
        preallocated array every call; copy it to keep a frame)."""
        return self._readback(self._fbo, self._size, rotate)

    def make_current(self) -> None:
        """One context per target, current since it was made: nothing to do."""

    def swap(self) -> None:
        """Nothing is shown: the picture stays in the framebuffer for read()."""

    def should_close(self) -> bool:
        return self._closing

    def request_close(self) -> None:
        """Ends the frame loop after this frame (what Esc does to a window)."""
        self._closing = True

    def release(self) -> None:
        self._fbo.release()
        self._rbo.release()
        self._ctx.release()

    close = release

    def __enter__(self) -> Offscreen:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


_glfw_users = 0    # open windows; glfw is initialised while any exist


def _glfw_acquire(glfw: Any) -> None:
    """glfw.init() for the first window; a clear DisplayError when there is no display."""
    global _glfw_users
    if _glfw_users == 0:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                ok, why = bool(glfw.init()), ""
            except glfw.GLFWError as e:          # when glfw.ERROR_REPORTING = "raise"
                ok, why = False, str(e)
        if not ok:
            why = why or "; ".join(str(w.message) for w in caught) or "glfw.init() failed"
            raise DisplayError(
                f"no display: glfw could not initialise ({why}); DISPLAY/WAYLAND_DISPLAY "
                f"not set or the display server refused. Start the player inside the "
                f"desktop session, or use `passersby render` for offscreen output")
    _glfw_users += 1


def _glfw_release(glfw: Any) -> None:
    global _glfw_users
    _glfw_users -= 1
    if _glfw_users == 0:
        glfw.terminate()


class Monitors:
    """The connected monitors as glfw lists them (a hotplug.MonitorSource).

    Holds glfw initialised while it exists, so monitor handles stay valid and
    events can be polled when every window is closed (all monitors unplugged).
    glfw's monitor callback (run inside poll_events) marks the list changed."""

    def __init__(self) -> None:
        import glfw

        self._glfw = glfw
        _glfw_acquire(glfw)
        self._changed = True
        glfw.set_monitor_callback(self._on_monitor)

    def _on_monitor(self, monitor: Any, event: int) -> None:
        self._changed = True

    def changed(self) -> bool:
        """True once after glfw reported a monitor connected or disconnected."""
        changed, self._changed = self._changed, False
        return changed

    def monitors(self) -> list[Monitor]:
        glfw, out, seen = self._glfw, [], set()
        for handle in glfw.get_monitors() or []:
            name = glfw.get_monitor_name(handle)
            name = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
            unique, n = name, 1
            while unique in seen:          # two identical monitors may share a name
                n += 1
                unique = f"{name}#{n}"
            seen.add(unique)
            mode = glfw.get_video_mode(handle)
            out.append(Monitor(unique, tuple(glfw.get_monitor_pos(handle)),
                               (mode.size.width, mode.size.height), handle))
        return out

    def poll(self) -> None:
        """Process window and monitor events (all windows at once)."""
        self._glfw.poll_events()

    def close(self) -> None:
        if self._glfw is not None:
            self._glfw.set_monitor_callback(None)
            _glfw_release(self._glfw)
            self._glfw = None


class ScreenTarget:
    """The default framebuffer with a size that follows the window.

    moderngl caches the default framebuffer's size when the context is made, so
    after a resize `Framebuffer.size`, `clear()` and `read()` would use the old
    size; this wrapper passes the current size explicitly. It offers what the
    renderer uses (size, viewport, use) plus clear and read_into.
    """

    def __init__(self, fbo: moderngl.Framebuffer, size: Callable[[], tuple[int, int]]) -> None:
        self._fbo = fbo
        self._size = size

    @property
    def size(self) -> tuple[int, int]:
        return self._size()

    @property
    def viewport(self) -> tuple[int, int, int, int]:
        return self._fbo.viewport

    @viewport.setter
    def viewport(self, value: tuple[int, int, int, int]) -> None:
        self._fbo.viewport = value

    def use(self) -> None:
        self._fbo.use()

    def clear(self, red: float = 0.0, green: float = 0.0, blue: float = 0.0) -> None:
        self._fbo.clear(red, green, blue, 1.0, viewport=(0, 0, *self.size))

    def read_into(self, buffer: Any, viewport: tuple[int, int, int, int] | None = None,
                  components: int = 3, alignment: int = 1) -> None:
        """Pixels of the back buffer into `buffer`, bottom row first (GL order)."""
        self._fbo.read_into(buffer, viewport=viewport or (0, 0, *self.size),
                            components=components, alignment=alignment)


class Window:
    """A glfw window with a GL 3.3 core context; fullscreen on a chosen monitor."""

    def __init__(self, title: str = "passersby", monitor_index: int = 0,
                 fullscreen: bool = True, size: tuple[int, int] = (960, 1080),
                 vsync: bool = True, monitor: Monitor | None = None) -> None:
        """`monitor` (from Monitors or hotplug) instead of `monitor_index`: fullscreen
        on its glfw handle, or, for one without a handle, an undecorated window
        covering its pos and size (windowed screens side by side)."""
        import glfw  # imported here: importing passersby.player.display must not need glfw

        self._glfw = glfw
        self.listen = False  # collector mode reads no keys but quit; tuning sets this
        self.keys: collections.deque[tuple[int, int]] = collections.deque(maxlen=64)
        w, h = _check_size(size, "Window")
        _glfw_acquire(glfw)
        self._win = None
        try:
            if monitor is not None:
                self._win = self._create_on(glfw, title, monitor)
                fullscreen = monitor.handle is not None
            else:
                self._win = self._create(glfw, title, monitor_index, fullscreen, (w, h))
            glfw.make_context_current(self._win)
            glfw.swap_interval(1 if vsync else 0)
            self._vsync = vsync
            if fullscreen:
                glfw.set_input_mode(self._win, glfw.CURSOR, glfw.CURSOR_HIDDEN)
            glfw.set_key_callback(self._win, self._on_key)
            self._ctx = moderngl.create_context(require=330)
        except BaseException:
            if self._win is not None:
                glfw.destroy_window(self._win)
                self._win = None
            _glfw_release(glfw)
            raise
        self._screen = ScreenTarget(self._ctx.detect_framebuffer(0), lambda: self.size)
        self._readback = Readback()
        log.info("window %dx%d (%s) on %s", *self.size,
                 "fullscreen" if fullscreen else "windowed", self._ctx.info["GL_RENDERER"])

    @classmethod
    def _create_on(cls, glfw: Any, title: str, monitor: Monitor) -> Any:
        if monitor.handle is not None:
            return cls._create(glfw, title, 0, True, monitor.size, handle=monitor.handle)
        glfw.default_window_hints()
        glfw.window_hint(glfw.DECORATED, False)
        glfw.window_hint(glfw.VISIBLE, False)          # shown once in place
        win = cls._create(glfw, title, 0, False, monitor.size, defaults=False)
        glfw.set_window_pos(win, *monitor.pos)
        glfw.show_window(win)
        return win

    @staticmethod
    def _create(glfw: Any, title: str, monitor_index: int, fullscreen: bool,
                size: tuple[int, int], handle: Any = None, defaults: bool = True) -> Any:
        if defaults:
            glfw.default_window_hints()  # no hint left over from another window
        glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 3)
        glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
        glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
        glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, True)
        monitor = None
        if fullscreen and handle is not None:
            monitor = handle
        elif fullscreen:
            monitors = glfw.get_monitors() or []
            if not 0 <= monitor_index < len(monitors):
                valid = f"valid: 0..{len(monitors) - 1}" if monitors else "is a screen connected?"
                raise DisplayError(
                    f"monitor index {monitor_index} is out of range: {len(monitors)} "
                    f"monitor(s) found ({valid}); set display.monitor in the config")
            monitor = monitors[monitor_index]
        if monitor is not None:
            mode = glfw.get_video_mode(monitor)
            for hint, value in ((glfw.RED_BITS, mode.bits.red), (glfw.GREEN_BITS, mode.bits.green),
                                (glfw.BLUE_BITS, mode.bits.blue),
                                (glfw.REFRESH_RATE, mode.refresh_rate)):
                glfw.window_hint(hint, value)
            size = (mode.size.width, mode.size.height)
        win = glfw.create_window(size[0], size[1], title, monitor, None)
        if not win:
            raise DisplayError(
                f"glfw could not create a {size[0]}x{size[1]} OpenGL 3.3 core window; the "
                f"display's GL driver may be missing (apt-get install -y libgl1-mesa-dri) "
                f"or too old; `passersby render` works offscreen")
        return win

    def _on_key(self, win: Any, key: int, scancode: int, action: int, mods: int) -> None:
        glfw = self._glfw
        if action == glfw.PRESS and key in (glfw.KEY_ESCAPE, glfw.KEY_Q):
            glfw.set_window_should_close(win, True)
        elif self.listen and action in (glfw.PRESS, glfw.REPEAT):
            self.keys.append((key, mods))

    @property
    def ctx(self) -> moderngl.Context:
        return self._ctx

    @property
    def size(self) -> tuple[int, int]:
        """Framebuffer size in pixels (differs from the window size on HiDPI)."""
        return tuple(self._glfw.get_framebuffer_size(self._win))

    @property
    def fbo(self) -> ScreenTarget:
        """The window's default framebuffer; its .size follows resizes."""
        return self._screen

    def read(self, rotate: int = 0) -> np.ndarray:
        """What the window shows, [H,W,3] uint8, top row first, upright (Readback;
        the array is reused: copy it to keep a frame)."""
        return self._readback(self._screen, self.size, rotate)

    def should_close(self) -> bool:
        return bool(self._glfw.window_should_close(self._win))

    def request_close(self) -> None:
        self._glfw.set_window_should_close(self._win, True)

    def poll(self) -> None:
        self._glfw.poll_events()

    def swap(self) -> None:
        self._glfw.swap_buffers(self._win)

    def set_vsync(self, on: bool) -> None:
        """Swap on vertical blank (1) or at once (0); makes this context current."""
        self.make_current()
        if on != self._vsync:
            self._glfw.swap_interval(1 if on else 0)
            self._vsync = on

    def make_current(self) -> None:
        """Make this window's GL context current (needed with one window per screen)."""
        self._glfw.make_context_current(self._win)

    def close(self) -> None:
        if self._win is None:
            return
        self.make_current()
        self._ctx.release()
        self._glfw.destroy_window(self._win)
        _glfw_release(self._glfw)
        self._win = None

    def __enter__(self) -> Window:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
