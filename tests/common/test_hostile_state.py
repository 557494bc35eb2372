"""Issue 16, classes 1 and 7: a state file that is hostile rather than broken (checksum
right, fields wrong) falls back to the previous generation; a non-finite latent, from the
state or from the walk, is refused and the stream leaps to a fresh one, logged once."""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from test_state import make

from passersby.common import config, state


def resign(path: Path, **fields: object) -> None:
    doc = json.loads(path.read_text())
    doc["payload"].update(fields)
    body = json.dumps(doc["payload"], sort_keys=True)
    doc["sha256"] = hashlib.sha256(body.encode()).hexdigest()
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize("fields", [
    {"step": True}, {"step": "2"}, {"skip_to": 10 ** 30}, {"seed": 12}, {"seed": "-5"},
    {"seed": "f" * 64}, {"generator_sha256": 7}, {"generator_sha256": ["x"]},
    {"novelty": None}, {"z": [1.0, 2.0]}, {"z": "AAA"}, {"traversal": 5},
])
def test_hostile_fields_fall_back_to_the_previous_generation(tmp_path: Path, fields: dict,
                                                             caplog) -> None:  # type: ignore[no-untyped-def]
    s = state.Saver(tmp_path)
    s.save(make(1))
    s.save(make(2))
    resign(tmp_path / state.CURRENT, **fields)
    with caplog.at_level(logging.WARNING):
        got = state.load(tmp_path)
    assert got is not None and got.step == 1 and "unreadable" in caplog.text


def test_deeply_nested_state_json_falls_back(tmp_path: Path) -> None:
    s = state.Saver(tmp_path)
    s.save(make(1))
    s.save(make(2))
    (tmp_path / state.CURRENT).write_text("[" * 200_000 + "]" * 200_000)
    got = state.load(tmp_path)
    assert got is not None and got.step == 1


def test_a_saved_nan_latent_is_refused_and_the_stream_leaps(chain, caplog) -> None:  # type: ignore[no-untyped-def]
    from passersby.generator.stream import Stream

    cfg = config.Config()
    a = Stream(chain, cfg.traversal, 4.0, seed=5)
    for _ in range(3):
        a.next_frame()
    snap = a.snapshot(skip_to=a.step + 2)
    snap.z = np.full_like(snap.z, np.nan)
    with caplog.at_level(logging.WARNING):
        b = Stream(chain, cfg.traversal, 4.0, seed=5, saved=snap)
        b.catch_up()
        frames = [b.next_frame() for _ in range(3)]
    assert caplog.text.count("not finite") == 1
    assert b.step >= 5 and all(np.isfinite(f.z).all() for f in frames)
    assert all(f.image.mean() > 15 for f in frames)


def test_a_walk_that_goes_non_finite_leaps_once_logged(chain, caplog) -> None:  # type: ignore[no-untyped-def]
    from passersby.generator.stream import Stream

    s = Stream(chain, config.Config().traversal, 4.0, seed=6)
    s.next_frame()
    real = s.traversal.step
    s.traversal.step = lambda z, *a, **k: (np.full_like(z, np.inf), real(z, *a, **k)[1])
    with caplog.at_level(logging.WARNING):
        f1, f2 = s.next_frame(), s.next_frame()
    s.traversal.step = real
    f3 = s.next_frame()
    assert caplog.text.count("not finite") == 1
    assert all(np.isfinite(f.z).all() for f in (f1, f2, f3)) and f3.step > f2.step > f1.step
