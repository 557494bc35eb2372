"""Issue 16, class 6: OSC while tuning. Only tunables are accepted (validated like the
config, never written back otherwise), messages are coalesced (latest per key), a burst
costs one rebuild, and no sequence of messages crashes the tuned player."""
from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from passersby.common import config
from passersby.player import tune


@pytest.fixture(scope="module")
def osc():  # type: ignore[no-untyped-def]
    o = tune.OscInput("127.0.0.1", 0)
    yield o
    o.close()


def apply(t: tune.Tuning, messages: list) -> None:
    values = dict(messages)
    values.pop("capture", None)
    if values:
        t.set_many(values)


@pytest.mark.parametrize("key, value", [
    ("tune.osc_host", "0.0.0.0"), ("tune.osc_port", 1), ("stream.seed", 5), ("look", 1),
    ("", 1), ("look.painterly.x", 0.3), ("screens", []), ("weights.generator", "x"),
    ("look.mat_color", [0.1, 0.1, 0.1]),
])
def test_only_tunables_are_set_and_written_back(tmp_path: Path, key: str, value: object) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("look:\n  painterly: 0.5\n")
    t = tune.Tuning(path)
    assert not t.set(key, value) and "not a tunable" in t.error and not t.nudges
    assert t.set("look.painterly", 0.25)
    t.write_back()
    assert path.read_text() == "look:\n  painterly: 0.25\n"


def test_a_section_then_its_key_does_not_crash() -> None:
    t = tune.Tuning(None)
    t.set("look", 1)
    t.set("look.painterly", 0.4)
    t.set("traversal.transform", "x")
    t.set("traversal.transform.zoom", 1.2)
    assert t.cfg.look.painterly == 0.4 and t.cfg.traversal.transform.zoom == 1.2


def test_non_finite_and_wrong_values_are_refused() -> None:
    t = tune.Tuning(None)
    for v in (math.nan, math.inf, "lots", 10 ** 400):
        assert not t.set("look.exposure", v) and t.cfg.look.exposure == 0.0
    assert t.set("traversal.transform.mirror", 1) and t.cfg.traversal.transform.mirror is True


def test_a_burst_is_coalesced_to_the_latest_value_per_key(osc) -> None:  # type: ignore[no-untyped-def]
    osc.drain()
    for i in range(20_000):  # a flood: two faders and a capture
        osc._on("/passersby/look/painterly", (i % 100) / 100)
        osc._on("/passersby/look/grain", 0.01)
    osc._on("/passersby/capture")
    got = osc.drain()
    assert got == [("look.painterly", 0.99), ("look.grain", 0.01), ("capture", None)]
    t = tune.Tuning(None)
    builds = []
    real = t._build
    t._build = lambda *a: builds.append(1) or real(*a)  # type: ignore[method-assign]
    apply(t, got)
    assert len(builds) == 1 and t.cfg.look.painterly == 0.99 and osc.drain() == []


def test_a_frame_with_one_bad_value_still_applies_the_good_ones() -> None:
    t = tune.Tuning(None)
    assert t.set_many({"look.grain": 0.02, "look.exposure": math.nan})
    assert t.cfg.look.grain == 0.02 and t.cfg.look.exposure == 0.0


_tunable_addresses = st.sampled_from(["/passersby/" + k.replace(".", "/")
                                      for k in tune.TUNABLE_KEYS])
_addresses = st.one_of(_tunable_addresses, st.sampled_from([
    "/passersby/", "/passersby/look", "/passersby/tune/osc_host", "/passersby/capture",
    "/passersby/stream/seed", "/passersby/look/painterly/x", "/passersby//",
    "/passersby/traversal/transform"]), st.text(max_size=20).map(lambda s: "/passersby/" + s))
_args = st.lists(st.one_of(st.floats(), st.integers(-2 ** 63, 2 ** 63 - 1), st.booleans(),
                           st.text(max_size=10), st.sampled_from(["orbit", "drift", "smooth"]),
                           st.binary(max_size=8), st.none()), max_size=3)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.lists(st.tuples(_addresses, _args), max_size=12), max_size=6))
def test_fuzz_osc_sequences_never_crash_and_keep_a_valid_config(osc, frames: list) -> None:  # type: ignore[no-untyped-def]
    t = tune.Tuning(None)
    osc.drain()
    t0 = time.perf_counter()
    for frame in frames:
        for address, args in frame:
            osc._on(address, *args)
        got = osc.drain()
        assert len(got) <= len(tune.TUNABLE_KEYS) + 1
        apply(t, got)
        assert isinstance(t.cfg, config.Config) and t.cfg.tune == config.TuneConfig()
        assert set(t.nudges) <= set(tune.TUNABLE_KEYS)
        assert all(math.isfinite(v) for v in t.nudges.values() if isinstance(v, float))
        assert t.error is None or ("\n" not in t.error and len(t.error) < 1000)
    assert time.perf_counter() - t0 < 30
