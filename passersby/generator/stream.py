"""The stream: traversal + chain -> keyframes, deterministic and resumable (run in the
generator process, process.py)."""
from __future__ import annotations

import dataclasses
import logging
import time
import zipfile
from collections.abc import Callable

import numpy as np
import torch

from passersby.common import rng, state
from passersby.common.config import TraversalConfig
from passersby.common.frames import Frame
from passersby.common.novelty import FRESH, NEVER, SITTER_EVERY_S, SITTER_WINDOW_S, Novelty
from passersby.generator import taste
from passersby.generator.chain import Chain, to_uint8
from passersby.generator.traversal import modes, transform
from passersby.generator.traversal.base import StepInfo
from passersby.generator.traversal.journey import JourneyTraversal

log = logging.getLogger(__name__)
MAX_LEAPS = 4         # a keyframe is dropped unseen at most this often in a row
DARK = 15.0           # mean 0..255 below which a keyframe is near black: dropped, like a
                      # repeat (the stand-in makes one in ~300; the screen never goes black)
TASTE_STREAM = 1 << 32  # rng stream of the taste's Gumbel draws (candidates use 0..K-1)
FRESH_STREAM = TASTE_STREAM + 1  # rng stream of a fresh latent after a sitter basin


class Stream:
    """Deterministic keyframe source: frame t is a function of (seed, weights, config, t).

    Its whole state is (step, z, the traversal mode's inner state, novelty memory);
    `snapshot` captures it and `Stream(..., saved=...)` resumes it exactly, first
    replaying (unseen) up to the saved `skip_to`, past anything a crashed run may
    already have shown. `set_traversal` changes mode or parameters while it runs.
    A taste model named in the config is loaded (and checked) at start.
    """

    def __init__(self, chain: Chain, cfg: TraversalConfig, keyframes_per_second: float,
                 seed: int, saved: state.State | None = None) -> None:
        self.chain, self.cfg, self.seed, self.kps = chain, cfg, seed, keyframes_per_second
        self.taste = taste.from_config(cfg, chain.nz,   # TasteError names the file and fix
                                       chain.generator_manifest["tensors_sha256"])
        self.taste_stamp = taste.stamp(cfg)             # a retrained file is reloaded live
        self.traversal = modes.make(cfg, keyframes_per_second)
        self.novelty = Novelty(chain.nz, window=modes.likeness_window(cfg, keyframes_per_second))
        self.novelty.sitter_window = sitter_window(cfg, keyframes_per_second)
        self.sitter_every = sitter_every(keyframes_per_second)
        self.step, self.skip_to = 0, 0
        self._refused = 0  # non-finite latents refused
        self.z = rng.normal(seed, 0, chain.nz)
        if cfg.mode == "journey":
            self._aim(None)
        if saved is not None:
            self._restore(saved)
        self.last_info = StepInfo()
        self.dark = 0  # near-black keyframes dropped
        self.copies = 0  # keyframes dropped as near copies of a training crop (copies.py)
        self.sitter: tuple[int, np.ndarray] | None = None  # (step, descriptor): the last read

    def _restore(self, saved: state.State) -> None:
        self.step, self.skip_to = saved.step, saved.skip_to
        same = saved.generator_sha256 == self.chain.generator_manifest["tensors_sha256"]
        finite = saved.z is not None and bool(np.isfinite(saved.z).all())
        if same and saved.z is not None and saved.z.shape == (self.chain.nz,) and not finite:
            self._refuse_latent("the saved state", saved.skip_to)
        elif same and saved.z is not None and saved.z.shape == (self.chain.nz,):
            self.z = saved.z.astype(np.float32)
            self._restore_traversal(saved.traversal)
        else:
            log.warning("the saved state was made with other weights (%s...): the edition goes "
                        "on from step %d with a fresh latent", saved.generator_sha256[:12],
                        saved.skip_to)
            self.jump(saved.skip_to)
        if saved.memory is not None:
            self.novelty.memory = saved.memory
        if saved.sitters is not None:
            self.novelty.sitters = saved.sitters
        if saved.novelty:
            try:
                self.novelty.load_bytes(saved.novelty)
            except (ValueError, OSError, KeyError) as e:
                log.warning("novelty memory in the state is unreadable (%s); starting it afresh", e)
        leaps = self.novelty.sitter_leaps  # a damaged state must not mute the memory
        leaps[leaps > self.step] = NEVER

    def _refuse_latent(self, source: str, step: int) -> None:
        """A latent with NaN or inf in it (from the state file, a traversal, a config that
        let one through) paints black for ever: leap to a fresh one; logged once."""
        if not self._refused:
            log.warning("%s holds a latent that is not finite (NaN/inf) at step %d: the "
                        "stream leaps to a fresh latent there", source, step)
        self._refused += 1
        self.jump(step)

    def _restore_traversal(self, blob: bytes) -> None:
        try:
            if blob and not self.traversal.load_bytes(blob):
                log.info("the saved place was in another traversal mode: %s starts from it",
                         self.cfg.mode)
        except (ValueError, KeyError, OSError, zipfile.BadZipFile) as e:
            self.traversal.reset()
            log.warning("the saved %s state is unreadable (%s); the mode starts afresh from "
                        "the saved latent", self.cfg.mode, e)

    def set_traversal(self, cfg: TraversalConfig, target: np.ndarray | None = None) -> None:
        """Switch mode or parameters live (the config file changed), keeping step, z and
        novelty; the same mode keeps its inner state (orbit's bodies, journey's path).
        The taste model is reloaded when its path or its file changed (retrained).
        `target` [nz]: for journey, where to go (a bookmark's latent). Raises TasteError
        (and changes nothing) if a newly named taste model is unusable."""
        stamp = taste.stamp(cfg)
        model = self.taste if stamp == self.taste_stamp else taste.from_config(
            cfg, self.chain.nz, self.chain.generator_manifest["tensors_sha256"])
        old, self.cfg, self.taste, self.taste_stamp = self.cfg, cfg, model, stamp
        if cfg.mode == old.mode:
            self.traversal.configure(cfg)
        else:
            self.traversal = modes.make(cfg, self.kps)
            log.info("traversal: %s -> %s at step %d", old.mode, cfg.mode, self.step)
        self.novelty.window = modes.likeness_window(cfg, self.kps)
        self.novelty.sitter_window = sitter_window(cfg, self.kps)
        aimed = (cfg.journey.target_seed, cfg.journey.target_step)
        if cfg.mode == "journey" and (target is not None or cfg.mode != old.mode or
                                      aimed != (old.journey.target_seed, old.journey.target_step)):
            self._aim(target)

    def _aim(self, target: np.ndarray | None) -> None:
        """Journey's destination: `target`, else the config's seed/step, else a random place."""
        j = self.cfg.journey
        if target is None and j.target_step is not None:
            seed = self.seed if j.target_seed is None else j.target_seed
            target = rng.normal(seed, j.target_step, self.chain.nz)
        if target is not None and np.shape(target) != (self.chain.nz,):
            raise ValueError(f"journey target of shape {np.shape(target)}, expected "
                             f"({self.chain.nz},)")
        if isinstance(self.traversal, JourneyTraversal):
            self.traversal.set_target(target)

    def _choose(self, candidates: np.ndarray) -> int:
        """Which candidate latent [K,nz] to take: novelty's least-visited, or with a
        taste, a soft choice weighing the taste's score against the visits (taste.py)."""
        visits = self.novelty.visits[self.novelty.cells(candidates)]
        if self.taste is None or self.cfg.taste <= 0:
            return int(np.argmin(visits))
        g = rng.generator(self.seed, self.step + 1, TASTE_STREAM).gumbel(size=len(candidates))
        return taste.choose(self.taste.score(candidates), visits, self.cfg.taste, g)

    def next_frame(self, shown: Callable[[int], bool] | None = None) -> Frame:
        """The next keyframe to show. A keyframe that nearly repeats a recent one (a fixed
        point, a limit cycle), nearly copies a training portrait (the world's copy guard),
        shows a sitter seen before or is near black is dropped unseen and the walk leaps
        away.

        Its image is what the screen shows: refined when the chain has a refiner. Only
        a keyframe shown is refined (not the dropped ones, nor the steps replayed unseen
        after a restart, nor those for which `shown(step)` is False: a batch of stills
        shows one keyframe in K; they keep G's own picture)."""
        for _ in range(MAX_LEAPS):
            frame, repeat, image = self._advance()
            if not repeat:
                break
        if self.chain.refiner is None or (shown is not None and not shown(frame.step)):
            return frame
        return dataclasses.replace(frame, image=self.chain.show(image)[0])

    def _advance(self) -> tuple[Frame, bool, torch.Tensor]:
        """Render the current latent, then move it one step (feedback reads this picture).

        Everything that steers the walk reads G's own picture (S px): the encoder, the
        novelty sketch and the near-black check, never the refined one, so the walk,
        and so the edition, is the same with the refiner on or off. Returns the frame
        (G's picture, uint8), whether it is dropped, and G's picture [1,3,S,S] f32."""
        image = self.chain.generate(self.z[None])  # [1,3,S,S] f32 -1..1
        frame = Frame(self.step, to_uint8(image)[0], self.z.copy())
        repeat, asked = self.novelty.observe(self.step, frame.image), 0
        if repeat:
            log.info("keyframe %d nearly repeats a recent one: dropped, leaping away", self.step)
        elif self.chain.copies is not None and self.chain.copies.copies(frame.image):
            self.copies += 1
            log.info("keyframe %d nearly copies a training portrait: dropped, leaping away",
                     self.step)
            repeat = True
        elif self.chain.identity is not None and self.step % self.sitter_every == 0:
            sitter = self.chain.identity.read(frame.image[None])[0]
            self.sitter = (self.step, sitter)
            asked = self.novelty.observe_sitter(self.step, sitter)  # 0, LEAP or FRESH
            if asked:
                log.info("keyframe %d shows a sitter seen before: dropped, leaping away%s",
                         self.step, " to a fresh latent" if asked == FRESH else "")
                repeat = True
        if not repeat and float(frame.image.mean()) < DARK:
            self.dark += 1
            log.info("keyframe %d is near black: dropped, leaping away", self.step)
            repeat = True
        self.novelty.visit(self.z)
        zhat = None
        if self.traversal.beta > 0 and self.chain.encoder is not None and not repeat:
            zhat = self.chain.encode(transform.apply(image, self.cfg.transform))[0]
        size = self.traversal.noise_size(self.chain.nz)
        noises = np.stack([rng.normal(self.seed, self.step + 1, size, stream=k)
                           for k in range(self.cfg.candidates)])  # [K,size] f32
        if asked == FRESH:  # out of a basin the walk keeps falling back to
            self.z, self.last_info = rng.normal(self.seed, self.step + 1, self.chain.nz,
                                                stream=FRESH_STREAM), StepInfo(escaped=True)
            self.traversal.reset()
        else:
            self.z, self.last_info = self.traversal.step(self.z, noises, zhat,
                                                         self._choose, escape=repeat)
        self.step += 1
        if not np.isfinite(self.z).all():
            skip_to = self.skip_to
            self._refuse_latent(f"the {self.cfg.mode} traversal", self.step)
            self.skip_to = max(skip_to, self.step)
        return frame, repeat, image

    def catch_up(self, limit: int | None = None, seconds: float | None = None) -> int:
        """Replay, unseen, up to skip_to (after a crash), at most `limit` steps and about
        `seconds` at a time (a step reading a sitter costs several plain ones); returns
        the steps replayed."""
        n, end = 0, None if seconds is None else time.monotonic() + seconds
        while self.step < self.skip_to and (limit is None or n < limit) and \
                (end is None or n == 0 or time.monotonic() < end):
            self._advance()
            n += 1
        return n

    def jump(self, step: int) -> None:
        """Go on from `step` with a fresh latent, without replaying up to it (when there
        is no saved place to replay from)."""
        self.step = self.skip_to = step
        self.z = rng.normal(self.seed, step, self.chain.nz)
        self.traversal.reset()

    def snapshot(self, skip_to: int) -> state.State:
        return state.State(self.seed, self.step, skip_to, self.z.copy(),
                           self.chain.generator_manifest["tensors_sha256"],
                           self.novelty.to_bytes(), self.novelty.memory,
                           self.traversal.to_bytes(), self.novelty.sitters)


def sitter_every(keyframes_per_second: float) -> int:
    """Steps between two sitter readings (novelty.SITTER_EVERY_S of display time)."""
    return max(1, round(SITTER_EVERY_S * keyframes_per_second))


def sitter_window(cfg: TraversalConfig, keyframes_per_second: float) -> int:
    """Steps within which two sitters are one morph: SITTER_WINDOW_S, or the likeness
    window when the walk is slower than that."""
    return max(round(SITTER_WINDOW_S * keyframes_per_second),
               modes.likeness_window(cfg, keyframes_per_second))


class Keeper:
    """Writes a Stream's place at a bounded rate, so that a restart never shows a frame
    again: a periodic snapshot says "resume after `lead` more steps", and `lead` is
    longer than what can be generated (and shown) before the next snapshot."""

    def __init__(self, saver: state.Saver | None, every_steps: int, queue: int) -> None:
        self.saver, self.every = saver, max(1, every_steps)
        self.lead = 2 * self.every + queue
        self.last = -1
        self.replayed_at = -1

    def after_step(self, stream: Stream) -> None:
        if self.saver is not None and (self.last < 0 or stream.step - self.last >= self.every):
            self.saver.save(stream.snapshot(stream.step + self.lead))
            self.last = stream.step

    def replaying(self, stream: Stream) -> None:
        """While a restart replays unseen steps: save the place reached every quarter
        period (the resume point stays `skip_to`), so a unit killed during the replay
        (a watchdog, a power cut) resumes from there, never replays it all again."""
        if self.saver is None or stream.step >= stream.skip_to:
            return
        if self.replayed_at < 0 or stream.step - self.replayed_at >= max(1, self.every // 4):
            if self.replayed_at >= 0:
                self.saver.save(stream.snapshot(stream.skip_to))
            self.replayed_at = stream.step

    def final(self, stream: Stream) -> None:
        """A clean stop: nothing past `stream.step` was made, so resume right there."""
        if self.saver is not None:
            self.saver.save(stream.snapshot(stream.step))
