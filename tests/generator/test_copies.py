"""The copy guard (generator/copies.py): never fewer drops than the measure's memorisation
test, hardly more; and the stream leaps away from a keyframe that copies a crop."""
from __future__ import annotations

import numpy as np
from PIL import Image

from passersby.generator import copies
from passersby.train import measure


def pictures(count: int, seed: int, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (count, 8, 8, 3), dtype=np.uint8)
    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BICUBIC))
                     for im in small])


def guard_of(crops: np.ndarray, threshold: float) -> copies.Guard:
    q = copies.quantise(copies.features(crops))
    return copies.Guard.from_tensors(q, threshold, "test")


def test_the_guard_drops_every_copy_the_measure_counts_and_hardly_more() -> None:
    crops = pictures(80, 0)
    guard = guard_of(crops, 0.4)
    # queries: the crops, their mirrors, near copies, blends drifting from a crop to a
    # stranger (so that distances cross the threshold), and strangers
    strangers = pictures(60, 1)
    t = np.linspace(0, 1, 60)[:, None, None, None]
    blends = (crops[:60] * (1 - t) + strangers * t).astype(np.uint8)
    queries = np.concatenate([crops[:20], np.ascontiguousarray(crops[20:40, :, ::-1]),
                              measure.near_copies(crops[40:80], seed=3), blends, strangers])
    fq = measure.features(queries)
    fc = measure.features(crops)
    fm = measure.features(np.ascontiguousarray(crops[:, :, ::-1]))
    exact = np.minimum(measure.distances(fq, fc).min(1), measure.distances(fq, fm).min(1))
    near = np.array([guard.nearest(q) for q in queries])
    assert (near <= exact + 1e-4).all()                        # a lower bound: none slips by
    assert (exact - near).max() <= float(guard.error.max()) * 2 + 1e-4   # and a tight one
    dropped, memorised = near < guard.threshold, exact < guard.threshold
    assert memorised[:40].all() and dropped[:40].all()        # crops and mirrors
    assert (dropped >= memorised).all() and memorised.sum() > 60
    assert 0 < (~memorised[60:120]).sum()                    # the blends leave the crops
    assert (dropped & ~memorised).sum() <= 3                 # hardly more than the measure
    assert not dropped[-60:].any()                           # strangers pass


def test_quantisation_error_is_measured_per_crop() -> None:
    f = copies.features(pictures(10, 4))
    q = copies.quantise(f)
    back = q["codes"].astype(np.float32) / q["scale"][:, None]
    err = np.sqrt(((back - f) ** 2).mean(1))
    assert np.allclose(err, q["error"]) and (q["error"] < 0.02).all()
    assert np.abs(q["codes"]).max() == 127                   # each row uses the whole range


def test_hostile_tensors_are_refused_naming_what() -> None:
    good = copies.quantise(copies.features(pictures(4, 5)))
    bad = [{**good, "scale": np.full(4, np.nan, np.float32)},
           {**good, "codes": good["codes"][:, :100]},
           {**good, "error": good["error"][:3]},
           {k: v for k, v in good.items() if k != "error"},
           {**good, "codes": good["codes"].astype(np.int16)}]
    for t in bad:
        try:
            copies.Guard.from_tensors(t, 0.4, "x.safetensors")
        except ValueError as e:
            assert "x.safetensors" in str(e)
        else:
            raise AssertionError(f"accepted {[(k, v.dtype, v.shape) for k, v in t.items()]}")
    for threshold in (float("nan"), float("inf"), -1.0, 0.0):
        try:
            copies.Guard.from_tensors(good, threshold, "x.safetensors")
        except ValueError as e:
            assert "threshold" in str(e)
        else:
            raise AssertionError(threshold)


def test_the_stream_leaps_away_from_a_copy(chain) -> None:  # type: ignore[no-untyped-def]
    """A guard made of the stream's own first keyframes: the same stream, guarded, shows
    none of them; it drops each as it comes and leaps elsewhere."""
    import dataclasses

    from passersby.common.config import Config
    from passersby.generator.stream import Stream

    cfg = Config()
    plain = Stream(chain, cfg.traversal, 4.0, seed=5)
    first = np.stack([plain.next_frame().image for _ in range(6)])
    guarded = dataclasses.replace(chain, copies=guard_of(first, 0.3))
    s = Stream(guarded, cfg.traversal, 4.0, seed=5)
    shown = np.stack([s.next_frame().image for _ in range(6)])
    assert s.copies >= 1
    assert not any(guarded.copies.copies(im) for im in shown)
    assert not np.array_equal(shown[0], first[0])
