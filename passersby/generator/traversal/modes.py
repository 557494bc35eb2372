"""The traversal modes by name (config `traversal.mode`), switchable while the stream runs."""
from __future__ import annotations

from passersby.common.config import TraversalConfig
from passersby.generator.traversal.base import Traversal
from passersby.generator.traversal.drift import DriftTraversal
from passersby.generator.traversal.feedback import FeedbackTraversal
from passersby.generator.traversal.journey import JourneyTraversal
from passersby.generator.traversal.orbit import OrbitTraversal

MORPH_WINDOW_S = 2.0  # keyframes closer than this in display time may look alike
MODES: dict[str, type[Traversal]] = {"feedback": FeedbackTraversal, "drift": DriftTraversal,
                                     "orbit": OrbitTraversal, "journey": JourneyTraversal}


def make(cfg: TraversalConfig, keyframes_per_second: float) -> Traversal:
    try:
        return MODES[cfg.mode](cfg, keyframes_per_second)
    except KeyError:
        raise ValueError(f"traversal.mode = {cfg.mode!r}: not one of {sorted(MODES)}") from None


def likeness_window(cfg: TraversalConfig, keyframes_per_second: float) -> int:
    """Steps within which keyframes are the same passer-by morphing: the morph window,
    or the mode's own time to become another face if longer (feedback: the walk's
    correlation time). Beyond it, alike means repeated."""
    seconds = make(cfg, keyframes_per_second).window_seconds()
    return round(max(MORPH_WINDOW_S, seconds) * keyframes_per_second)
