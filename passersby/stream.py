"""The producer: traversal + chain -> keyframes, beside the render loop."""
from __future__ import annotations

import logging
import threading

import numpy as np

from passersby import rng
from passersby.chain import Chain, to_uint8
from passersby.config import TraversalConfig
from passersby.frames import Frame, FrameQueue
from passersby.traversal import transform
from passersby.traversal.feedback import FeedbackTraversal, StepInfo

log = logging.getLogger(__name__)


class Stream:
    """Deterministic keyframe source: frame t is a function of (seed, weights, config, t)."""

    def __init__(self, chain: Chain, cfg: TraversalConfig, keyframes_per_second: float,
                 seed: int, step: int = 0, z: np.ndarray | None = None) -> None:
        self.chain, self.cfg, self.seed, self.step = chain, cfg, seed, step
        self.traversal = FeedbackTraversal(cfg, keyframes_per_second)
        self.z = rng.normal(seed, 0, chain.nz) if z is None else z.astype(np.float32)
        self.last_info = StepInfo()

    def next_frame(self) -> Frame:
        """Render the current latent, then move it one step (feedback reads this picture)."""
        image = self.chain.generate(self.z[None])  # [1,3,S,S] f32 -1..1
        frame = Frame(self.step, to_uint8(image)[0], self.z.copy())
        zhat = None
        if self.traversal.beta > 0 and self.chain.encoder is not None:
            zhat = self.chain.encode(transform.apply(image, self.cfg.transform))[0]
        noise = rng.normal(self.seed, self.step + 1, self.chain.nz)
        self.z, self.last_info = self.traversal.step(self.z, noise, zhat)
        self.step += 1
        return frame


class Producer:
    """Runs a Stream in a thread and feeds a FrameQueue; errors are logged once, retried.

    `lockstep=True` (offscreen rendering): `put` waits for room forever, no frame is
    dropped. Otherwise `put` waits up to `patience` seconds, then the newest wins.
    """

    def __init__(self, stream: Stream, queue: FrameQueue, lockstep: bool = False,
                 patience: float = 5.0) -> None:
        self.stream, self.queue = stream, queue
        self.lockstep, self.patience = lockstep, patience
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="passersby-producer", daemon=True)
        self.error: str | None = None
        self.errors = 0

    def start(self) -> "Producer":
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.queue.get_nowait()  # make room so a blocked put returns
        self._thread.join(timeout)

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                frame = self.stream.next_frame()
            except Exception as e:  # errors are data: log once, keep the picture moving
                self._report(e)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff, self.error = 0.5, None
            if self.lockstep:
                while not self._stop.is_set() and not self.queue.put(frame, 0.5, drop=False):
                    pass
            else:
                self.queue.put(frame, self.patience)

    def _report(self, e: Exception) -> None:
        msg = f"{type(e).__name__}: {e}"
        self.errors += 1
        if msg != self.error:
            log.error("generator failed at step %d: %s (retrying; the screen keeps morphing)",
                      self.stream.step, msg)
        self.error = msg
