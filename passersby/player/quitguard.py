"""The quit path when a frame never ends (player process; neither torch nor GL).

The player quits on SIGTERM by setting a flag its frame loop reads. A frame that never
returns (a tuned shader with an endless loop: GL calls cannot be interrupted) never
reads it, and CPython runs a Python signal handler only when the main thread comes back
to the interpreter. But CPython's C-level handler writes the signal's number to the
wakeup fd at once, whatever the main thread is doing; a watcher thread reads it. If the
loop has not stopped `grace` seconds after SIGTERM, the watcher calls `on_stuck` (stop
the generators: they write their exact place) and ends the process with status 0, as a
clean stop would. No signal mask is touched, so child processes inherit nothing.
"""
from __future__ import annotations

import logging
import os
import select
import signal
import socket
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class QuitGuard:
    """Install from the main thread after the SIGTERM handler; close() when the loop ends."""

    def __init__(self, on_stuck: Callable[[], None], grace: float = 10.0) -> None:
        self.grace, self.on_stuck = grace, on_stuck
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        if threading.current_thread() is not threading.main_thread():
            return                  # signals reach the main thread only: nothing to guard
        self._previous = signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)
        self._thread = threading.Thread(target=self._watch, name="quit-guard", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._done.is_set():
            ready, _, _ = select.select([self._read], [], [], 0.5)
            if not ready:
                continue
            try:
                got = self._read.recv(256)
            except OSError:
                return
            if signal.SIGTERM not in got:
                continue
            if self._done.wait(self.grace):
                return
            log.error("the frame loop did not stop within %.0f s of SIGTERM (a frame that "
                      "never ends, e.g. a shader's endless loop): stopping the generators "
                      "and exiting", self.grace)
            try:
                self.on_stuck()
            except Exception:  # noqa: BLE001 - exiting is what matters now
                log.exception("stopping the generators failed")
            finally:
                logging.shutdown()
                os._exit(0)

    def close(self) -> None:
        self._done.set()
        if self._thread is not None:
            signal.set_wakeup_fd(self._previous)
            self._thread.join(timeout=2.0)
        self._read.close()
        self._write.close()
