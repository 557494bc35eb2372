"""Fixtures of the training tests."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def few_ship_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped average's BatchNorm statistics from 2 batches, not 32: the same code,
    and ~90 % of the generator runs' time here was those 2,048 pictures per sample grid
    and export (what these tests check is exactness and lineage, not those statistics)."""
    from passersby.train import generator

    monkeypatch.setattr(generator, "SHIP_BATCHES", 2)
