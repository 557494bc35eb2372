"""The benchmarks' own arithmetic and output (not their speed: no timed tests)."""
from __future__ import annotations

import json
import sys

import pytest
import torch

from passersby.common import novelty
from passersby.generator.chain import Chain

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "bench"))
import chain_peak  # noqa: E402
import common  # noqa: E402
import flash_writes  # noqa: E402


def test_flop_count_of_the_default_chain(chain: Chain) -> None:
    g = chain_peak.count_flops(torch, chain.generator, torch.randn(2, chain.nz))
    # 2 x MACs of the five transposed convolutions of the 64 px DCGAN (per sample)
    layers = [(100, 1, 512), (512, 16, 256), (256, 64, 128), (128, 256, 64), (64, 1024, 3)]
    expect = sum(2.0 * cin * pix * cout * 16 for cin, pix, cout in layers)
    assert g == pytest.approx(expect)
    assert 200e6 < g < 220e6


def test_stats_helpers() -> None:
    assert common.pct([1.0, 2.0, 3.0, 4.0, 100.0], 50) == 3.0
    assert common.slope_per_hour([0, 3600, 7200], [10, 12, 14]) == pytest.approx(2.0)
    assert common.size_list("640x360,1920X1080") == [(640, 360), (1920, 1080)]


def test_emit_prints_a_table_or_json(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"size": "640x360", "ratio": 1.234}]
    common.emit("x", rows, as_json=True, extra={"met": False})
    out = json.loads(capsys.readouterr().out)
    assert out["bench"] == "x" and out["rows"] == rows and out["met"] is False
    common.emit("x", rows, as_json=False)
    text = capsys.readouterr().out
    assert "size" in text and "1.23" in text


def test_aged_sketches_count_appends_and_every_rewrite() -> None:
    days, kps = 0.2, 4.0  # 69,120 keyframes, a sitter reading each
    out = flash_writes._aged_sketches(kps, 120.0, days, seed=1)
    # full at the start: a thinning at the first reading, then one per quarter capacity
    # (sitters: 65,536 readings, pictures: 61,440), so two each
    for layout in (novelty.SITTERS, novelty.PICTURES):
        assert layout.capacity // 4 < 69_120 < layout.capacity // 2
        assert out["rewrites_per_day"][layout.file] == pytest.approx(2 / days)
        item = layout.record.itemsize
        whole = 2 * (novelty.HEADER + layout.capacity * 3 // 4 * item)
        written = out["bytes_per_day"][layout.file] * days
        assert whole < written <= whole + 69_120 * item  # each reading once, or in a rewrite
        assert out["size"][layout.file] > novelty.HEADER + layout.capacity * 3 // 4 * item
