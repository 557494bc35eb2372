"""What the player and the generator process say to each other (player/session.py is the
parent's side, generator/process.py the child's): the pipe's protocol, one frozen
dataclass per message, read by type (isinstance / match), never by position.

Child -> parent (one pipe, the child the only writer: EOF when it dies):
  Hello     once loaded: the edition and the chain (the keyframes' size, the refiner).
  Alive     while replaying unseen steps after a restart (process.ALIVE_EVERY apart):
            the child works though it shows nothing yet.
  Keyframe  a keyframe, the image as shown (refined when the chain has a refiner,
            stream.py), its latent and the traversal's Figures.
  Failed    a step failed; the child retries it with back-off.
  Fatal     the child cannot go on and exits; `user`: a problem the user can fix (bad
            weights or config: the player exits clearly instead of restarting).
Parent -> child (a second pipe, polled between steps):
  Retune    new walk parameters (or mode), live.
  Move      the latent along one fixed random direction (exploring).
  Pin       hold the walk where it is, or let it go (moves still show).
The parent asks the child to stop through an Event, never a message.

Everything here crosses a `spawn` process boundary: it must stay picklable, and this
module imports only the common modules, numpy and the standard library (no torch:
images and latents are numpy arrays)."""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from passersby.common.config import TraversalConfig


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


# -- child -> parent --------------------------------------------------------------------
@dataclass(frozen=True)
class Hello:
    """Once, when the child has loaded: what it plays (the player's Worker.info)."""
    size: int              # side of the keyframes sent (the refiner's, when it is on)
    seed: int              # the edition
    step: int              # where its saved place is
    skip_to: int           # the first step it will send (past those already shown)
    device: str
    generator_sha256: str
    refiner: str = ""      # the refiner package in use, "" when none


@dataclass(frozen=True)
class Alive:
    """Replaying unseen steps after a restart: at `step` now, nothing to show yet."""
    step: int


@dataclass(frozen=True)
class Figures:
    """The traversal's figures with a keyframe (the tuning overlay shows them)."""
    pull: float = 0.0      # how far the feedback moved z this step (StepInfo.pull)
    agree: float = 0.0     # cosine(zhat, z): how much E recognises the latent
    escapes: int = 0       # near repeats the novelty memory escaped from, so far
    still: bool = False    # a batch's still (Picker): the parent delivers it as one


@dataclass(frozen=True, eq=False)  # eq: arrays do not compare to one truth value
class Keyframe:
    """A keyframe: `image` [S,S,3] uint8 as shown, `z` the latent it came from. A pinned
    walk sends one at once after each move, with empty Figures."""
    step: int
    image: np.ndarray
    z: np.ndarray
    figures: Figures = field(default_factory=Figures)


@dataclass(frozen=True)
class Failed:
    """A step failed (`text`: the exception); the child backs off and retries."""
    text: str


@dataclass(frozen=True)
class Fatal:
    """The child stops for good after this. `user`: the user's to fix (a UserError: bad
    weights or config), so the player does not restart it."""
    text: str
    user: bool


# -- parent -> child --------------------------------------------------------------------
@dataclass(frozen=True)
class Retune:
    """Walk on with these parameters (or this mode), without a restart."""
    traversal: TraversalConfig


@dataclass(frozen=True)
class Move:
    """Move the latent along the k-th fixed random direction by `size` (a fraction of
    the prior's radius); the new picture shows at once, pinned or not."""
    k: int
    size: float


@dataclass(frozen=True)
class Pin:
    """`on`: hold the walk where it is (moves still show); off: walk on from there."""
    on: bool


FromChild = Hello | Alive | Keyframe | Failed | Fatal
Command = Retune | Move | Pin
