"""Distinct sitters per hour of the live stream, against as many independent samples.

The stream a viewer sees is a walk: consecutive keyframes are the same sitter, slowly
becoming another. Issue 14's bar asks that an hour of it shows nearly as many
different people as an hour of unrelated pictures would: one keyframe every
`every_s` seconds of display time (keyframes_per_second from the config) is read by
the identity descriptor (yardsticks.descriptors, dlib's face-recognition ResNet, which
no network of this project was trained with) and counted as yardsticks counts sitters
(a new sitter is >= 0.6 from every one counted so far). The same count over as many
independent samples z ~ N(0, I) of the generator is the scale: ratio = stream / those.

The stream is the player's own (generator.stream.Stream, the configured traversal,
novelty and taste), G's picture (the refiner paints the portrait, not who it is).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from passersby.common.config import Config

BAR_RATIO = 0.8


def _chain(root: Path, cfg: Config, package: str, device: str):  # type: ignore[no-untyped-def]
    """The generator and the encoder that feeds its walk: `<package>-encoder` when it
    exists, the configured encoder for the configured generator, else none (the walk
    then has no feedback, as the player without an encoder)."""
    from passersby.generator.chain import Chain

    encoder = f"{package}-encoder"
    if not (root / encoder / "manifest.json").exists():
        encoder = cfg.weights.encoder if package == cfg.weights.generator else ""
    return Chain.load(root, package, encoder or None, device), encoder or None


def stream_pictures(chain, cfg: Config, keyframes: int, every: int,  # type: ignore[no-untyped-def]
                    seed: int, progress: Callable[[int, int], None] | None = None
                    ) -> np.ndarray:
    """Every `every`-th of `keyframes` shown keyframes of the stream: [N,S,S,3] uint8."""
    from passersby.generator.stream import Stream

    stream = Stream(chain, cfg.traversal, cfg.stream.keyframes_per_second, seed)
    out = []
    for k in range(keyframes):
        frame = stream.next_frame(shown=lambda _step: False)     # G's picture, unrefined
        if k % every == 0:
            out.append(frame.image)
        if progress and (k + 1) % 1000 == 0:
            progress(k + 1, keyframes)
    return np.stack(out)


def measure(root: Path, cfg: Config, package: str, hours: float, every_s: float = 5.0,
            seed: int = 0, device: str = "cpu", crops: np.ndarray | None = None,
            progress: Callable[[int, int], None] | None = None) -> dict:
    """Figures (JSON-able) for `hours` of the live stream of `package`; with `crops`
    [M,S,S,3] uint8 (the training crops), as many of them (seeded draw) for scale."""
    from passersby.generator.audit import random_samples
    from passersby.train import yardsticks

    kps = cfg.stream.keyframes_per_second
    every = max(1, round(every_s * kps))
    count = max(2, round(hours * 3600 / every_s))
    chain, encoder = _chain(root, cfg, package, device)
    live = stream_pictures(chain, cfg, count * every, every, seed, progress)
    independent = random_samples(chain, count, seed=seed + 1)
    d_live, found_live = yardsticks.descriptors(live)
    d_ind, found_ind = yardsticks.descriptors(independent)
    a, b = yardsticks.identity_figures(d_live), yardsticks.identity_figures(d_ind)
    ratio = round(a["distinct_sitters"] / max(b["distinct_sitters"], 1), 4)
    scale = {}
    if crops is not None:
        pick = np.random.default_rng(seed).permutation(len(crops))[:count]
        d_crops, found = yardsticks.descriptors(crops[np.sort(pick)])
        scale = {"crops": {**yardsticks.identity_figures(d_crops), "face_found": round(found, 4)}}
    return {"weights": package, "encoder": encoder, "mode": cfg.traversal.mode,
            "hours": hours, "every_s": every_s, "keyframes_per_second": kps,
            "keyframes": count * every, "seed": seed,
            "stream": {**a, "face_found": round(found_live, 4)},
            "independent": {**b, "face_found": round(found_ind, 4)}, **scale,
            "ratio_distinct_sitters": ratio,
            "bar": {"value": ratio, "at_least": BAR_RATIO, "ok": ratio >= BAR_RATIO}}
