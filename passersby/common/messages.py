"""What the player and the generator process say to each other (player/session.py is the
parent's side, generator/process.py the child's)."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


def child_entry(module: str, function: str, *args: Any) -> None:
    """A child process's entry, named by module and function: the parent never imports the
    generator's modules (torch), only the child does."""
    getattr(importlib.import_module(module), function)(*args)


@dataclass
class Picker:
    """A batch's stills (batch.py): every `every`-th keyframe past the step `last` of the
    last still. The generator process picks them, so it refines only those (a still in
    `every` keyframes: the others go unrefined, as the batch skips them); the parent
    keeps `last` up to date, so a restarted child picks as the first would have.
    `every` None: the traversal's likeness window (the generator knows it; `resolved`);
    `last` None: no still yet (the first keyframe is one)."""
    every: int | None
    last: int | None

    def resolved(self, window: int) -> Picker:
        every = self.every if self.every is not None else window
        return Picker(every, self.last if self.last is not None else -every)

    def due(self, step: int) -> bool:
        return step >= self.last + self.every

    def take(self, step: int) -> bool:
        """Is the keyframe at `step` a still? (then the next is `every` past it)"""
        if not self.due(step):
            return False
        self.last = step
        return True
