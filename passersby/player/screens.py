"""Several screens from one config: each its own stream, state folder, weights and look.

Neither torch nor GL here: this module turns the config into one plan per screen
(a complete per-screen Config: its own weights, look and traversal, i.e. its own
character; and how its panel is mounted, `rotate`), finds the edition, and renders each screen's
output offscreen through player.render_offscreen. The live loop is stage.py.

Seeds: screen k's stream is keyed by `edition ^ H(seed_offset)`, where H(0) = 0
and H(n) is 128 bits of a hash of n. So offset 0 is the edition's own stream (a
single-screen unit that gains a second screen carries on where it was), the
derivation is deterministic, and it can be undone: any screen's saved state
names the edition, even when screen 0's folder is gone.

State: screen 0 keeps the state folder itself (where a single-screen unit keeps
its place), screen k>0 its sub-folder `screen<k>/`.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from passersby.common import rng, state
from passersby.common.config import Config, ScreenConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    index: int
    cfg: Config                   # this screen's: seed, weights, look, traversal, size, monitor
    state_dir: Path | None
    size: tuple[int, int] | None  # asked-for window/render size; None = the global one
    rotate: int = 0               # degrees the picture turns clockwise in its window


def offset_key(offset: int) -> int:
    """H(offset): 0 for 0, else 128 bits of sha256."""
    if offset == 0:
        return 0
    digest = hashlib.sha256(f"passersby screen seed offset {offset}".encode()).digest()
    return int.from_bytes(digest[:16], "little")


def screen_seed(edition: int, offset: int) -> int:
    """The seed of the stream of a screen with `offset` in `edition` (and, applied to a
    screen's seed, the edition back: the operation is its own inverse)."""
    return edition ^ offset_key(offset)


def entries(cfg: Config) -> tuple[ScreenConfig, ...]:
    """The configured screens; none = one screen from `display` and `look`."""
    if cfg.screens:
        return cfg.screens
    return (ScreenConfig(monitor=cfg.display.monitor, weights=cfg.weights, look=cfg.look,
                         traversal=cfg.traversal),)


def state_dir(root: Path | None, index: int) -> Path | None:
    if root is None:
        return None
    return root if index == 0 else root / f"screen{index}"


def edition(cfg: Config, root: Path | None) -> int:
    """The edition seed: the config's, else the one any screen's saved state names
    (screen 0 first), else a fresh one."""
    if cfg.stream.seed is not None:
        return cfg.stream.seed
    for i, s in enumerate(entries(cfg)):
        folder = state_dir(root, i)
        saved = state.load(folder, memory=False) if folder is not None and folder.exists() else None
        if saved is not None:
            return screen_seed(saved.seed, s.seed_offset)
    return rng.new_seed()


def plans(cfg: Config, root: Path | None) -> list[Plan]:
    """One plan per screen: a complete Config each, with the screen's own stream seed."""
    ed = edition(cfg, root)
    out = []
    for i, s in enumerate(entries(cfg)):
        size = tuple(s.size) if s.size is not None else None
        own = replace(cfg, stream=replace(cfg.stream, seed=screen_seed(ed, s.seed_offset)),
                      weights=s.weights, look=s.look, traversal=s.traversal, screens=(),
                      display=replace(cfg.display, monitor=s.monitor),
                      render=replace(cfg.render, size=size or cfg.render.size))
        out.append(Plan(i, own, state_dir(root, i), size, s.rotate))
    if len(out) > 1:
        log.info("edition %032x on %d screens (seeds %s)", ed, len(out),
                 ", ".join(f"{p.cfg.stream.seed:032x}" for p in out))
    return out


def output_path(out: Path, index: int, count: int) -> Path:
    """out.mp4 -> out.screen<index>.mp4, a PNG folder `pngs` -> `pngs/screen<index>`,
    when there are several screens; unchanged for one."""
    if count < 2:
        return out
    if out.suffix:
        return out.with_name(f"{out.stem}.screen{index}{out.suffix}")
    return out / f"screen{index}"


def render_all(cfg: Config, out: Path, root: Path | None,
               progress: Callable[[int, int, int], None] | None = None
               ) -> list[tuple[Path, tuple[int, int]]]:
    """Each screen's output, one after the other: [(path, (W, H))]; progress(screen, i, n)."""
    from passersby.player import session as player

    todo = plans(cfg, root)
    written = []
    for p in todo:
        report = (lambda i, n, k=p.index: progress(k, i, n)) if progress else None
        path = player.render_offscreen(p.cfg, output_path(out, p.index, len(todo)),
                                       p.state_dir, report)
        written.append((path, tuple(p.cfg.render.size)))
    return written
