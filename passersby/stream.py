"""The stream: traversal + chain -> keyframes, deterministic and resumable (run in the
generator process, worker.py)."""
from __future__ import annotations

import logging

import numpy as np

from passersby import rng, state
from passersby.chain import Chain, to_uint8
from passersby.config import TraversalConfig
from passersby.frames import Frame
from passersby.novelty import Novelty
from passersby.traversal import transform
from passersby.traversal.feedback import FeedbackTraversal, StepInfo

log = logging.getLogger(__name__)
MORPH_WINDOW_S = 2.0  # keyframes closer than this in display time may look alike
MAX_LEAPS = 4         # a keyframe is dropped unseen at most this often in a row


def likeness_window(cfg: TraversalConfig, keyframes_per_second: float) -> int:
    """Steps within which keyframes are the same passer-by morphing: the morph window,
    or the walk's correlation time if longer. Beyond it, alike means repeated."""
    return round(max(MORPH_WINDOW_S, cfg.correlation_seconds) * keyframes_per_second)


class Stream:
    """Deterministic keyframe source: frame t is a function of (seed, weights, config, t).

    Its whole state is (step, z, novelty memory); `snapshot` captures it and
    `Stream(..., saved=...)` resumes it exactly, first replaying (unseen) up to the
    saved `skip_to`, past anything a crashed run may already have shown.
    """

    def __init__(self, chain: Chain, cfg: TraversalConfig, keyframes_per_second: float,
                 seed: int, saved: state.State | None = None) -> None:
        self.chain, self.cfg, self.seed = chain, cfg, seed
        self.traversal = FeedbackTraversal(cfg, keyframes_per_second)
        self.novelty = Novelty(chain.nz, window=likeness_window(cfg, keyframes_per_second))
        self.step, self.skip_to = 0, 0
        self.z = rng.normal(seed, 0, chain.nz)
        if saved is not None:
            self._restore(saved)
        self.last_info = StepInfo()

    def _restore(self, saved: state.State) -> None:
        self.step, self.skip_to = saved.step, saved.skip_to
        same = saved.generator_sha256 == self.chain.generator_manifest["tensors_sha256"]
        if same and saved.z is not None and saved.z.shape == (self.chain.nz,):
            self.z = saved.z.astype(np.float32)
        else:
            log.warning("the saved state was made with other weights (%s...): the edition goes "
                        "on from step %d with a fresh latent", saved.generator_sha256[:12],
                        saved.skip_to)
            self.jump(saved.skip_to)
        if saved.memory is not None:
            self.novelty.memory = saved.memory
        if saved.novelty:
            try:
                self.novelty.load_bytes(saved.novelty)
            except (ValueError, OSError, KeyError) as e:
                log.warning("novelty memory in the state is unreadable (%s); starting it afresh", e)

    def next_frame(self) -> Frame:
        """The next keyframe to show. A keyframe that nearly repeats a recent one (a fixed
        point, a limit cycle) is dropped unseen and the walk leaps away instead."""
        for _ in range(MAX_LEAPS):
            frame, repeat = self._advance()
            if not repeat:
                return frame
        return frame

    def _advance(self) -> tuple[Frame, bool]:
        """Render the current latent, then move it one step (feedback reads this picture)."""
        image = self.chain.generate(self.z[None])  # [1,3,S,S] f32 -1..1
        frame = Frame(self.step, to_uint8(image)[0], self.z.copy())
        repeat = self.novelty.observe(self.step, frame.image)
        self.novelty.visit(self.z)
        zhat = None
        if self.traversal.beta > 0 and self.chain.encoder is not None and not repeat:
            zhat = self.chain.encode(transform.apply(image, self.cfg.transform))[0]
        noises = np.stack([rng.normal(self.seed, self.step + 1, self.chain.nz, stream=k)
                           for k in range(self.cfg.candidates)])
        self.z, self.last_info = self.traversal.step(self.z, noises, zhat,
                                                     self.novelty.choose, escape=repeat)
        if repeat:
            log.info("keyframe %d nearly repeats a recent one: dropped, leaping away", self.step)
        self.step += 1
        return frame, repeat

    def catch_up(self, limit: int | None = None) -> int:
        """Replay, unseen, up to skip_to (after a crash), at most `limit` steps at a time;
        returns the steps replayed."""
        n = 0
        while self.step < self.skip_to and (limit is None or n < limit):
            self._advance()
            n += 1
        return n

    def jump(self, step: int) -> None:
        """Go on from `step` with a fresh latent, without replaying up to it (when there
        is no saved place to replay from)."""
        self.step = self.skip_to = step
        self.z = rng.normal(self.seed, step, self.chain.nz)

    def snapshot(self, skip_to: int) -> state.State:
        return state.State(self.seed, self.step, skip_to, self.z.copy(),
                           self.chain.generator_manifest["tensors_sha256"],
                           self.novelty.to_bytes(), self.novelty.memory)


class Keeper:
    """Writes a Stream's place at a bounded rate, so that a restart never shows a frame
    again: a periodic snapshot says "resume after `lead` more steps", and `lead` is
    longer than what can be generated (and shown) before the next snapshot."""

    def __init__(self, saver: state.Saver | None, every_steps: int, queue: int) -> None:
        self.saver, self.every = saver, max(1, every_steps)
        self.lead = 2 * self.every + queue
        self.last = -1

    def after_step(self, stream: Stream) -> None:
        if self.saver is not None and (self.last < 0 or stream.step - self.last >= self.every):
            self.saver.save(stream.snapshot(stream.step + self.lead))
            self.last = stream.step

    def final(self, stream: Stream) -> None:
        """A clean stop: nothing past `stream.step` was made, so resume right there."""
        if self.saver is not None:
            self.saver.save(stream.snapshot(stream.step))
