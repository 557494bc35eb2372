"""train/align.py's square from dlib's 5 points, on synthetic points (no dlib needed)."""
from __future__ import annotations

import numpy as np

from passersby.train import align

# a level face: eye corners (outer, inner) on the picture's right, then left, the nose
LEVEL = np.array([[130, 100], [110, 100], [70, 100], [90, 100], [100, 133.6]], np.float64)


def test_level_face_gives_the_ffhq_square_of_the_estimated_features() -> None:
    """Eyes 40 px apart: the 68-point eye centres 40 x EYE_SCALE apart, the mouth
    (1.108 x 0.84 + 0.24) x 40 px below them; FFHQ's square: level, side 4 x max(eyes,
    0.9 x eyes-to-mouth), centred a tenth of the way from the eyes to the mouth."""
    left, right = align.eyes(LEVEL)
    assert np.allclose(left, [100 - 20 * align.EYE_SCALE, 100])
    assert np.allclose(right, [100 + 20 * align.EYE_SCALE, 100])
    drop = (align.MOUTH_NOSE * 0.84 + align.MOUTH_DOWN) * 40
    assert np.allclose(align.mouth(LEVEL), [100, 100 + drop])
    assert 44 < drop < 50                                     # ~1.17 eye distances
    half = max(2 * 40 * align.EYE_SCALE, 1.8 * drop)
    c = np.array([100, 100 + 0.1 * drop])
    want = c + np.array([[-1, -1], [-1, 1], [1, 1], [1, -1]]) * half
    assert np.abs(align.quad_of(LEVEL) - want).max() < 1e-9
    assert align.plausible(LEVEL) and abs(align.eye_distance(LEVEL) - 40.64) < 0.01


def test_square_follows_the_face_turned_moved_and_scaled() -> None:
    """Rotating, scaling and moving the points does the same to the square; a head
    turned sideways moves the mouth a quarter as far as the nose (MOUTH_SIDEWAYS)."""
    t = np.radians(25)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    move = lambda p: (p - 100) @ rot.T * 1.7 + [300, 220]    # noqa: E731
    assert np.abs(align.quad_of(move(LEVEL)) - move(align.quad_of(LEVEL))).max() < 1e-9
    turned = LEVEL.copy()
    turned[align.NOSE, 0] += 8
    assert np.isclose(align.mouth(turned)[0] - 100, 8 * align.MOUTH_SIDEWAYS)
    q = align.quad_of(turned)
    tilt = np.degrees(np.arctan2(*(q[3] - q[0])[::-1]))
    assert 0.5 < abs(tilt) < 3                                # the square turns a little


def test_implausible_points_are_told() -> None:
    up = LEVEL.copy()
    up[align.NOSE, 1] = 70                                    # the nose above the eyes
    steep = LEVEL.copy()
    steep[[0, 1], 1] += 60                                    # eyes at ~56 degrees
    close = LEVEL.copy()
    close[:4, 0] = 100 + (close[:4, 0] - 100) * 0.05          # eyes 2 px apart
    assert not any(align.plausible(p) for p in (up, steep, close))
