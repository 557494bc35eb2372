"""Which screen shows on which monitor, as monitors come and go.

Pure bookkeeping (no GL, no torch): the live loop (stage.py) hands the current
monitor list to `Assigner.update`, which answers what to close and what to open.
Monitors are told apart by name (X11: the RandR output, e.g. "HDMI-1"), not by
index: when monitor 0 is unplugged the list shifts and index 0 becomes another
monitor, which must not pull screen 0 onto its neighbour's glass.

Rules, for a screen without a window, in this order:
1. the monitor it was last shown on, when connected and free (plugged back);
2. on first showing: the monitor at its configured index, when free;
3. any free monitor that no other screen was last shown on (its monitor was
   replaced by one on another connector: never leave connected glass dark).
A screen whose monitor disappears loses its window; its stream runs on unseen.
Each event is logged once, when it happens.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Monitor:
    name: str                    # unique within one listing
    pos: tuple[int, int]         # top-left on the virtual desktop, pixels
    size: tuple[int, int]        # current mode (W, H)
    handle: Any = None           # glfw monitor: go fullscreen on it; None: a window at pos/size


@dataclass(frozen=True)
class Change:
    action: str                  # "close" | "open"
    screen: int
    monitor: Monitor | None      # the monitor to open on (None for close)
    why: str


class MonitorSource(Protocol):
    def monitors(self) -> list[Monitor]: ...

    def changed(self) -> bool: ...


class Assigner:
    """Screens (by configured monitor index) -> monitors (by name)."""

    def __init__(self, wanted: Sequence[int]) -> None:
        self.wanted = list(wanted)
        self.on: list[str | None] = [None] * len(wanted)       # shown on now
        self.last: list[str | None] = [None] * len(wanted)     # shown on last (kept when lost)
        self._waiting_logged = [False] * len(wanted)

    def update(self, monitors: Sequence[Monitor]) -> list[Change]:
        """Closes first (their monitors are gone), then opens; apply them in order and
        call `failed(screen)` for an open that did not work."""
        names = {m.name: m for m in monitors}
        changes: list[Change] = []
        for i, name in enumerate(self.on):
            if name is not None and name not in names:
                self.on[i] = None
                self._waiting_logged[i] = True     # this message says it already
                log.warning("screen %d: monitor %s disconnected: window closed, its stream "
                            "runs on unseen until the monitor is back", i, name)
                changes.append(Change("close", i, None, f"monitor {name} disconnected"))
        for rule in (self._plugged_back, self._configured, self._free):
            for i in range(len(self.on)):
                if self.on[i] is None:
                    m = rule(i, monitors)
                    if m is not None:
                        changes.append(self._open(i, m, rule.__name__))
        for i, name in enumerate(self.on):
            if name is None and not self._waiting_logged[i]:
                self._waiting_logged[i] = True
                log.warning("screen %d: no monitor for it (wants index %d; %d connected: %s); "
                            "its stream runs on unseen, and its window opens when one is "
                            "plugged in", i, self.wanted[i], len(monitors),
                            ", ".join(names) or "none")
        return changes

    def failed(self, screen: int) -> None:
        """The window could not be opened: the screen waits for the next update."""
        self.on[screen] = None

    def _taken(self) -> set[str]:
        return {n for n in self.on if n is not None}

    def _plugged_back(self, i: int, monitors: Sequence[Monitor]) -> Monitor | None:
        return next((m for m in monitors if m.name == self.last[i] and
                     m.name not in self._taken()), None)

    def _configured(self, i: int, monitors: Sequence[Monitor]) -> Monitor | None:
        k = self.wanted[i]
        if self.last[i] is None and 0 <= k < len(monitors) and \
                monitors[k].name not in self._taken():
            return monitors[k]
        return None

    def _free(self, i: int, monitors: Sequence[Monitor]) -> Monitor | None:
        others = {n for j, n in enumerate(self.last) if j != i and n is not None}
        return next((m for m in monitors if m.name not in self._taken() and
                     m.name not in others), None)

    def _open(self, i: int, m: Monitor, rule: str) -> Change:
        own = self.last[i] or f"index {self.wanted[i]}"
        why = {"_plugged_back": f"monitor {m.name} is back",
               "_configured": f"monitor {self.wanted[i]} ({m.name}) is connected",
               "_free": f"monitor {m.name} is free and its own ({own}) is not connected"}[rule]
        if rule == "_configured" and not self._waiting_logged[i]:
            log.info("screen %d: on monitor %d (%s)", i, self.wanted[i], m.name)
        else:
            log.warning("screen %d: %s: opening its window there", i, why)
        self.on[i] = self.last[i] = m.name
        self._waiting_logged[i] = False
        return Change("open", i, m, why)


class DeskSlots:
    """Windowed mode: one window per screen, side by side on the desktop; no hotplug."""

    def __init__(self, sizes: Sequence[tuple[int, int]], origin: tuple[int, int] = (0, 0)) -> None:
        x, slots = origin[0], []
        for i, (w, h) in enumerate(sizes):
            slots.append(Monitor(f"window{i}", (x, origin[1]), (int(w), int(h))))
            x += int(w)
        self._slots = slots

    def monitors(self) -> list[Monitor]:
        return list(self._slots)

    def changed(self) -> bool:
        return False
