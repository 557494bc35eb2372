"""Overnight batches: `passersby render --count N --out DIR` writes N distinct stills.

A still is one keyframe of the stream rendered settled (morph t = 1) through the
same look and shaders as the player, at the output size, saved as a PNG beside its
bookmark (kind "still", in DIR's own SQLite file), so every still can be returned
to exactly. Stills are every K-th keyframe; the default K is the likeness window,
so consecutive stills are different people.

Resumable: the generator keeps its place in DIR/state (the same atomic state files
as the player), so a re-run continues the stream past anything already made, and
the stills already in DIR's store count towards N. A PNG is written to a hidden
temp name and renamed, so an interruption never leaves a half file; a still's
bookmark is added after its PNG is in place (an orphan PNG from an interruption
between the two is overwritten by the next still of that name).

GL side: this module never imports torch; the generator process does that work. The
frame loop is the window's (loop.play): a screen that takes the picked stills and a
hook that writes them.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from passersby.common import png, state
from passersby.common.bookmarks import Bookmark, Store, config_digest
from passersby.common.config import Config
from passersby.common.errors import UserError
from passersby.common.folders import writable_folder
from passersby.common.frames import Frame
from passersby.player import loop

if TYPE_CHECKING:
    from passersby.player.session import Session

log = logging.getLogger(__name__)

KIND = "still"
STATE = "state"               # DIR/state: the generator's place
PNG_COMPRESS_LEVEL = 6        # lossless either way; stills are kept, so a bit smaller
Progress = Callable[[int, int, float], None]   # (stills in DIR, count, images per hour)


class BatchError(UserError):
    """An unusable batch folder or options; the message names the value and the fix."""


@dataclass
class Result:
    folder: Path
    made: int                 # stills made by this run
    total: int                # stills in the folder now
    seconds: float            # this run's wall time, start-up included
    per_hour: float           # stills per hour once the generator was running (0: none made)


def still_name(n: int) -> str:
    return f"{KIND}-{n:04d}"


def check_folder(out: Path, where: str = "--out") -> Path:
    """Make the batch folder, or a BatchError naming it, where it came from and the fix."""
    return writable_folder(out, where, BatchError,
                           holds=f"the stills (e.g. {out.with_suffix('')}-stills)")


def write_png(path: Path, image: np.ndarray, text: dict[str, str] | None = None) -> None:
    """[H,W,3] uint8 -> PNG at `path`, atomically (common/png.py: temp, fsync, rename)."""
    try:
        png.write_png(path, image, text, PNG_COMPRESS_LEVEL)
    except OSError as e:
        raise BatchError(f"{path}: cannot write the still ({e}); check free disk space "
                         f"and the folder's permissions") from None


def _clean_temps(out: Path) -> None:
    for tmp in out.glob(f"{png.TMP_PREFIX}{KIND}-*.png.tmp"):   # left by a killed run
        log.info("removing %s, an unfinished write of an interrupted run", tmp.name)
        tmp.unlink(missing_ok=True)


def _resume_config(cfg: Config, out: Path, done: list[Bookmark]) -> Config:
    """The config to run: the folder's edition (its stills' seed) unless another was asked
    for, which is an error; a folder whose state was lost resumes after its last still."""
    if not done:
        return cfg
    seed, last = done[-1].seed, max(done, key=lambda b: b.step)
    if cfg.stream.seed is not None and cfg.stream.seed != seed:
        raise BatchError(f"--seed/config stream.seed {cfg.stream.seed:#x} is not the edition of "
                         f"the {len(done)} stills in {out} ({seed:#x}); leave --seed out to go "
                         f"on with them, or give another --out for a new edition")
    if state.load(out / STATE, memory=False) is None:
        log.warning("%s is missing: going on after the last still (step %d)", out / STATE,
                    last.step)
        state.Saver(out / STATE).save(state.State(seed, last.step, last.step + 1,
                                                  last.z.astype(np.float32),
                                                  last.generator_sha256))
    return dataclasses.replace(cfg, stream=dataclasses.replace(cfg.stream, seed=seed))


class StillRenderer:
    """Offscreen target + pipeline: one keyframe -> the settled picture at `size`."""

    def __init__(self, cfg: Config, source: int, size: tuple[int, int]) -> None:
        from passersby.player.display import Offscreen
        from passersby.player.render.pipeline import Pipeline

        self.kps = cfg.stream.keyframes_per_second
        self.off = Offscreen(size)
        self.pipe = Pipeline(self.off.ctx, cfg.look, (source, source))

    def draw(self, image: np.ndarray, step: int) -> None:
        """[S,S,3] uint8 keyframe -> its settled picture in the target (grain keyed by
        the step's display time, so a still renders the same again)."""
        self.pipe.set_keyframes(image, image)
        self.pipe.render(self.off.fbo, 1.0, step / self.kps)

    def render(self, image: np.ndarray, step: int) -> np.ndarray:
        """draw(), then the picture as [H,W,3] uint8, top row first (reused: copy it)."""
        self.draw(image, step)
        return self.off.read()

    def release(self) -> None:
        self.pipe.release()
        self.off.release()


class _Stills:
    """A batch's screen in the frame loop: each frame, the next keyframe the generator
    picked (Frame.still: every `every`-th past the last still, messages.Picker; waiting
    for it, the others skipped), drawn settled at its own step's time, not the clock's."""

    def __init__(self, session: Session, renderer: StillRenderer) -> None:
        self.session, self.renderer = session, renderer
        self.window = renderer.off            # the surface the loop presents and hooks read
        self.shown: Frame | None = None

    def tick(self, dt: float) -> None:
        from passersby.player.session import next_keyframe

        frame = next_keyframe(self.session)
        while not frame.still:
            frame = next_keyframe(self.session)
        self.shown = frame

    def render(self, time_s: float) -> None:
        assert self.shown is not None
        self.renderer.draw(self.shown.image, self.shown.step)


class _Keeping(loop.Hook):
    """The stills writer as a hook: each picture a PNG, then its bookmark; the loop ends
    when the folder holds `count`."""

    def __init__(self, session: Session, cfg: Config, store: Store, out: Path, count: int,
                 done: int, progress: Progress | None) -> None:
        assert session.producer.info is not None
        self.info, self.digest = session.producer.info, config_digest(cfg)
        self.mode, self.store, self.out = cfg.traversal.mode, store, out
        self.count, self.done, self.progress = count, done, progress
        self.made, self.t0 = 0, time.perf_counter()

    def rate(self) -> float:
        return self.made * 3600.0 / max(time.perf_counter() - self.t0, 1e-9)

    def after_picture(self, screen: _Stills) -> None:
        frame, info = screen.shown, self.info
        assert frame is not None
        n = self.done + self.made + 1
        name = still_name(n)
        write_png(self.out / f"{name}.png", screen.window.read(),
                  {"Software": "passersby", "passersby.bookmark": name,
                   "passersby.seed": f"{info.seed:032x}", "passersby.step": str(frame.step)})
        self.store.add(Bookmark(info.seed, frame.step, frame.z, info.generator_sha256,
                                self.digest, kind=KIND, name=name,
                                traversal={"mode": self.mode}, image=f"{name}.png"))
        self.made += 1
        if self.progress:
            self.progress(n, self.count, self.rate())
        if n >= self.count:
            screen.window.request_close()


def render_stills(cfg: Config, out: Path, count: int, every: int | None = None,
                  progress: Progress | None = None) -> Result:
    """Fill `out` with `count` stills (those there already count); see the module doc."""
    from passersby.player import session as player

    started = time.perf_counter()
    if count < 1:
        raise BatchError(f"--count {count}: give the number of stills to make (1 or more)")
    if every is not None and every < 1:
        raise BatchError(f"--every {every}: give a keyframe interval of 1 or more")
    out = check_folder(Path(out))
    store = Store.in_folder(out)
    try:
        done = store.list(KIND)
        if len(done) >= count:
            return Result(out, 0, len(done), time.perf_counter() - started, 0.0)
        _clean_temps(out)
        cfg = _resume_config(cfg, out, done)
        size = (int(cfg.render.size[0]), int(cfg.render.size[1]))
        last = max((b.step for b in done), default=None)
        # the generator process picks the stills (so it refines only those): every
        # `every`-th keyframe past the last still, the others come unrefined and are skipped
        session = player.open_session(cfg, out / STATE, live=False, stills=(every, last))
        try:
            made, rate = _loop(session, cfg, store, out, size, count, done, progress)
        finally:
            session.producer.stop()
        return Result(out, made, len(done) + made, time.perf_counter() - started, rate)
    finally:
        store.close()


def _loop(session: Session, cfg: Config, store: Store, out: Path,
          size: tuple[int, int], count: int, done: list[Bookmark],
          progress: Progress | None) -> tuple[int, float]:
    """The frame loop (loop.play) over the stills the generator picks, until `count`."""
    renderer = StillRenderer(cfg, session.size, size)
    keeping = _Keeping(session, cfg, store, out, count, len(done), progress)
    try:
        if progress:
            progress(len(done), count, 0.0)
        loop.play(loop.Solo([_Stills(session, renderer)]), loop.FixedClock(cfg.render.fps),
                  [keeping])
    finally:
        renderer.release()
    return keeping.made, keeping.rate()
