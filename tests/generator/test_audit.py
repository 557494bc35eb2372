from __future__ import annotations

import numpy as np

from passersby.common import config
from passersby.common.novelty import NEAR_DUPLICATE
from passersby.generator import audit


def test_near_duplicate_search_is_exhaustive_and_respects_the_window() -> None:
    r = np.random.default_rng(0)
    fps = r.standard_normal((3000, 256)).astype(np.float32)
    fps[2500] = fps[100] + 0.05 * r.standard_normal(256)     # a planted repeat, far apart
    fps[11] = fps[10] + 0.01 * r.standard_normal(256)        # alike, but inside the window
    n, closest = audit.near_duplicates(fps, window=20, steps=np.arange(3000) * 2)
    assert n == 1 and len(closest) == 1 and closest[0][2] < NEAR_DUPLICATE
    assert closest[0][:2] == [200, 5000]


def test_near_pair_search_is_the_same_a_block_at_a_time() -> None:
    # the search holds one block of distances at a time: the answer must not depend on
    # the block, and a stream that stands still (every pair near) is counted, not hoarded
    r = np.random.default_rng(1)
    x = r.standard_normal((700, 128)).astype(np.float32) * 0.05
    x[600] = x[30] + 0.001                      # two planted repeats far apart
    x[650] = x[40] + 0.002
    x[300:340] = x[299]                         # a frozen stretch: 40 x 39 / 2 pairs
    where = np.arange(700) * 3
    answers = [audit.near_pairs(x, where, 9, 0.2, where, block=b) for b in (700, 2000, 1 << 24)]
    assert answers[0] == answers[1] == answers[2]
    count, closest = answers[0]
    frozen = sum(1 for i in range(300, 341) for j in range(i + 1, 341) if (j - i) * 3 > 9)
    assert count == frozen + 2, count
    assert len(closest) == 10 and all(d <= 1e-6 for _, _, d in closest), closest
    lone = np.delete(x, range(300, 341), axis=0)
    count, closest = audit.near_pairs(lone, np.arange(len(lone)), 9, 0.2, block=1000)
    assert count == 2 and [c[:2] for c in closest] == [[30, 559], [40, 609]], closest


def test_audit_with_power_cuts(chain, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = config.load(None, {"stream": {"save_seconds": 5.0}})  # short replays after a cut
    figures = audit.run(chain, cfg, 900, seed=0xC0DE, face_every=10,
                        restart_every=300, state_dir=tmp_path / "state",
                        sheet=tmp_path / "pairs.png")
    assert figures["restarts"] == 2 and figures["replayed_steps"] > 0
    assert figures["steps_backwards"] == 0
    assert figures["near_duplicates"] == 0, figures["closest_pairs"]
    if figures["closest_pairs"]:  # pairs closer than 2x the threshold, shown for a look
        from PIL import Image

        rows = len(figures["closest_pairs"])
        assert Image.open(figures["pairs_sheet"]).size == (2 * 256 + 24, rows * 280 + 8)
    assert 0 < figures["state_bytes"] <= 16 << 20
    assert figures["longest_freeze_s"] <= 2.0


def test_audit_refuses_a_state_folder_holding_an_edition(chain, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from passersby.common import state
    from passersby.common.errors import UserError

    folder = tmp_path / "edition"
    cfg = config.Config()
    audit.run(chain, cfg, 20, seed=1, face_every=10, state_dir=folder)  # a new folder: its own
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert state.CURRENT in before
    with pytest.raises(UserError, match="holds an edition.*refuses.*copy"):
        audit.run(chain, cfg, 20, seed=2, face_every=10, state_dir=folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
