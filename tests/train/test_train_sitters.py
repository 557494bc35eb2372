"""`passersby train measure --stream-hours`: distinct sitters of the live stream."""
from __future__ import annotations

import numpy as np
import pytest

from passersby.cli.main import main
from passersby.common import config
from passersby.generator.weights import weights_dir
from passersby.train import sitters, yardsticks


def test_hours_are_bounded_and_finite(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in ("nan", "inf", "0", "-1", "5000", "one"):
        with pytest.raises(SystemExit) as e:
            main(["train", "measure", "--stream-hours", bad])
        assert e.value.code == 2
        assert "--stream-hours" in capsys.readouterr().err


def test_a_stream_of_one_sitter_fails_the_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    """The live stream's pictures read as one person, the independent samples as as many
    people as pictures: the ratio is 1/N and the bar fails."""
    calls: list[int] = []

    def fake(images: np.ndarray) -> tuple[np.ndarray, float]:
        calls.append(len(images))
        n = len(images)
        d = np.zeros((n, 128), np.float32) if len(calls) == 1 else np.eye(n, 128, dtype=np.float32)
        return d, 1.0

    monkeypatch.setattr(yardsticks, "descriptors", fake)
    cfg = config.load(None, {"stream": {"keyframes_per_second": 4.0}})
    figures = sitters.measure(weights_dir(cfg.weights.dir), cfg, cfg.weights.generator,
                              hours=30 / 3600, every_s=5.0, seed=3)
    assert calls == [6, 6]
    assert figures["keyframes"] == 6 * 20
    assert figures["stream"]["distinct_sitters"] == 1
    assert figures["independent"]["distinct_sitters"] == 6
    assert figures["ratio_distinct_sitters"] == pytest.approx(1 / 6, abs=1e-4)
    assert not figures["bar"]["ok"]


def test_every_fifth_second_of_the_stream_is_read() -> None:
    cfg = config.load(None, {})
    chain, encoder = sitters._chain(weights_dir(cfg.weights.dir), cfg, cfg.weights.generator,
                                    "cpu")
    assert encoder == cfg.weights.encoder
    every = sitters.stream_pictures(chain, cfg, 40, 20, seed=5)
    all_ = sitters.stream_pictures(chain, cfg, 40, 1, seed=5)
    assert every.shape[0] == 2 and np.array_equal(every, all_[::20])
