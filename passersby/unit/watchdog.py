"""sd_notify without dependencies: tell systemd we are ready, alive, or stopping.

systemd passes `$NOTIFY_SOCKET` (a filesystem path, or an abstract address written
with a leading '@') to a `Type=notify` service; a datagram "READY=1",
"WATCHDOG=1", "STOPPING=1" or "STATUS=..." sent there is the whole protocol
(sd_notify(3)). Outside systemd `$NOTIFY_SOCKET` is unset and every call here is
a cheap no-op, so the player calls them unconditionally. Nothing here raises: a
notification that cannot be sent is logged once and forgotten (the player must
never stop because its supervisor is unreachable).

`Heartbeat` is the watchdog half: `WatchdogSec=` in the unit makes systemd restart
the player when no "WATCHDOG=1" arrives in time, and `Heartbeat.beat(step)` sends
one only while the stream's step advances, so a frozen picture (hung generator,
stuck loop) gets the unit restarted, not just a hung process.
"""
from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Hashable, Mapping

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 10.0   # heartbeat spacing when systemd does not say (WATCHDOG_USEC unset)
_warned: set[str] = set()   # failure kinds already logged (log once, then stay quiet)


def _warn_once(key: str, msg: str, *args: object) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(msg, *args)


def socket_address(env: Mapping[str, str] | None = None) -> str | bytes | None:
    """The address in $NOTIFY_SOCKET for socket.sendto, or None when unset/unsupported.

    '@name' is Linux's abstract namespace: the address is b'\\0name'. A path must be
    absolute. Other forms (e.g. systemd's 'vsock:' for VMs) are not supported.
    """
    raw = (os.environ if env is None else env).get("NOTIFY_SOCKET", "")
    if not raw:
        return None
    if raw.startswith("@"):
        return b"\0" + raw[1:].encode()
    if raw.startswith("/"):
        return raw
    _warn_once("address", "NOTIFY_SOCKET=%r is not a path or an abstract socket; "
               "systemd notifications are off", raw)
    return None


class Notifier:
    """One datagram socket to $NOTIFY_SOCKET, opened lazily and kept."""

    def __init__(self, address: str | bytes | None = None, from_env: bool = True) -> None:
        self.address = address if address is not None or not from_env else socket_address()
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, message: str) -> bool:
        """Send one notification ("KEY=value" lines); True when it went out."""
        if self.address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(message.encode(), self.address)
            return True
        except OSError as e:
            _warn_once("send", "cannot notify systemd at %r (%s); the unit's watchdog may "
                       "restart the player", self.address, e)
            self.close()
            return False

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def notify(message: str) -> bool:
    """Send `message` to $NOTIFY_SOCKET once (a fresh socket; fine for rare messages)."""
    notifier = Notifier()
    try:
        return notifier.send(message)
    finally:
        notifier.close()


def _clean(text: str) -> str:
    return " ".join(text.split())      # one line: a newline would start a new KEY=


def ready(status_text: str | None = None) -> bool:
    """Start-up is complete (the first picture is on screen): READY=1."""
    return notify("READY=1" + (f"\nSTATUS={_clean(status_text)}" if status_text else ""))


def stopping() -> bool:
    """Shutting down on purpose: STOPPING=1 (systemd then expects the exit)."""
    return notify("STOPPING=1")


def status(text: str) -> bool:
    """A one-line status shown by `systemctl status passersby`."""
    return notify(f"STATUS={_clean(text)}")


def watchdog_interval(default_s: float = DEFAULT_INTERVAL_S,
                      env: Mapping[str, str] | None = None) -> float:
    """Half of systemd's watchdog timeout ($WATCHDOG_USEC), as sd_watchdog_enabled advises.

    `default_s` when the watchdog is off, or is meant for another process
    ($WATCHDOG_PID names a different pid).
    """
    env = os.environ if env is None else env
    pid = env.get("WATCHDOG_PID")
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return default_s
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return default_s
    return usec / 2e6 if usec > 0 else default_s


class Heartbeat:
    """WATCHDOG=1 while the picture advances; silence when it is frozen.

    Call `beat(step)` as often as you like (every frame): it sends at most one
    notification per `interval_s`, and only when `step` differs from the step of
    the last notification sent. `interval_s` None: half of $WATCHDOG_USEC, else
    DEFAULT_INTERVAL_S. Without $NOTIFY_SOCKET every beat is a no-op.
    """

    def __init__(self, interval_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 notifier: Notifier | None = None) -> None:
        self.interval_s = watchdog_interval() if interval_s is None else float(interval_s)
        if self.interval_s <= 0:
            raise ValueError(f"Heartbeat interval_s={interval_s!r} must be > 0 seconds")
        self._clock = clock
        self._notifier = notifier if notifier is not None else Notifier()
        self._last_step: int | None = None
        self._last_sent = -float("inf")
        self.sent = 0           # notifications that went out (for logs and tests)

    @property
    def enabled(self) -> bool:
        return self._notifier.enabled

    def beat(self, step: Hashable) -> bool:
        """True when a WATCHDOG=1 went out for this call. `step`: anything that changes
        while the picture is alive (the stage passes each screen's step and generator
        progress, or its loading time)."""
        if not self._notifier.enabled:
            return False
        now = self._clock()
        if now - self._last_sent < self.interval_s or step == self._last_step:
            return False
        if not self._notifier.send("WATCHDOG=1"):
            self._last_sent = now       # retry once per interval, not every frame
            return False
        self._last_step, self._last_sent = step, now
        self.sent += 1
        return True

    def close(self) -> None:
        self._notifier.close()
