"""Issue 16, classes 1-3: whatever the config file (or a flag) holds, it is a config or one
short ConfigError line naming the file; non-finite numbers never pass; while tuning, a bad
edit keeps the last good config."""
from __future__ import annotations

import dataclasses
import time
import typing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from passersby.common import config
from passersby.common.config import ConfigError
from passersby.player import tune

MAX_MSG = 1000


def float_keys() -> list[tuple[str, bool]]:
    """(dotted key, is a list of numbers) for every float of the config."""
    out: list[tuple[str, bool]] = []

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            tp, key = hints[f.name], f"{prefix}{f.name}"
            if dataclasses.is_dataclass(tp):
                walk(tp, key + ".")
            elif tp is float or tp == float | None:
                out.append((key, False))
            elif tp is tuple and f.name != "screens" and isinstance(f.default_factory()[0], float):
                out.append((key, True))

    walk(config.Config, "")
    return out


def nested(key: str, value: object) -> dict:
    *parents, leaf = key.split(".")
    d: dict = {leaf: value}
    for p in reversed(parents):
        d = {p: d}
    return d


def one_line_error(path: Path) -> str:
    with pytest.raises(ConfigError) as e:
        config.load(path)
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < MAX_MSG and str(path) in msg, msg
    return msg


def test_every_float_key_is_listed() -> None:
    keys = dict(float_keys())
    assert "look.exposure" in keys and "traversal.correlation_seconds" in keys
    assert keys["look.mat_color"] and len(keys) > 30


@pytest.mark.parametrize("literal", [".nan", ".inf", "-.inf", "1e999"])
def test_non_finite_numbers_are_refused_for_every_float_key(tmp_path: Path, literal: str) -> None:
    path = tmp_path / "c.yaml"
    for key, is_list in float_keys():
        *parents, leaf = key.split(".")
        lines = [f"{'  ' * i}{p}:" for i, p in enumerate(parents)]
        value = f"[{literal}, 0.5, 0.5]" if is_list else literal
        lines.append(f"{'  ' * len(parents)}{leaf}: {value}")
        path.write_text("\n".join(lines) + "\n")
        msg = one_line_error(path)
        assert key in msg and "finite" in msg, (key, msg)


def test_non_finite_numbers_are_refused_from_the_command_line() -> None:
    for value in (float("nan"), float("inf"), 10 ** 400):
        with pytest.raises(ConfigError, match="command line: render.seconds"):
            config.load(None, {"render": {"seconds": value}})


def test_non_finite_flags_are_refused_by_the_parser(capsys: pytest.CaptureFixture) -> None:
    """Every float flag of every command and subcommand (`train generator` too, whose
    flags come from its recipe) goes through the type that refuses NaN and inf."""
    from passersby.cli import args
    from passersby.cli import main as cli

    floats = []
    for path, parser in args.walk(cli.parser()):
        for action in parser._actions:
            assert action.type is not float, f"{' '.join(path)} {action.option_strings}"
            if action.type is args.number:
                floats.append((*path, action.option_strings[0]))
    assert ("render", "--seconds") in floats and ("train", "generator", "--lr-g") in floats
    assert ("train", "data", "--margin") in floats and len(floats) > 15
    for *path, flag in floats:
        for literal in ("nan", "inf", "1e400"):
            with pytest.raises(SystemExit):
                cli.parser().parse_args([*path, flag, literal])
            assert "finite" in capsys.readouterr().err, (path, flag, literal)


def test_alias_bomb_is_refused_quickly_and_briefly(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):  # 9**10 values once expanded
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    path = tmp_path / "c.yaml"
    path.write_text("look:\n  exposure: 0.0\n" + "\n".join(lines) + "\nstream:\n  seed: *a9\n")
    t0 = time.perf_counter()
    msg = one_line_error(path)
    assert time.perf_counter() - t0 < 10 and ("aliases" in msg or "values" in msg), msg
    path.write_text("look: &a {mat_color: *a}\n")  # an alias into itself
    assert "itself" in one_line_error(path) or "contains it" in one_line_error(path)


@pytest.mark.parametrize("content, words", [
    (b"look:\n  exposure: 0.5\n  grain: \xff\xfe\n", ["line 3", "UTF-8"]),
    (b"look:\n  exposure: " + b"9" * 400 + b"\n", ["look.exposure", "..."]),
    (b"look:\n  painterly_radius: " + b"9" * 400 + b"\n", ["look.painterly_radius", "..."]),
    (b"stream:\n  seed: " + b"9" * 5000 + b"\n", ["cannot be read"]),
    (b"!!int", ["cannot be read"]),                 # found by the fuzz: PyYAML IndexError
    (b"look:\n  warmth: !!float\n", ["cannot be read"]),
    (b"look:\n  mat_color: " + b"[" * 5000 + b"]" * 5000 + b"\n", ["nested more than"]),
    (b"look:\n  exposure: 0.1\n  1: 2\n", ["line 3", "not a name"]),
    (b"look: {exposure: 0.1, [1]: 2}\n", ["not a name"]),
    (b"look:\n  exposure: 0.1\n  grain: 0.2\n  exposure: 0.3\n", ["line 4", "line 2",
                                                                  "exposure"]),
    (b"look:\n  mat_color: [" + b"0.1, " * 300_000 + b"]\n", ["more than"]),
    (b"look:\n  warmth: !!python/object:os.system x\n", ["not valid YAML"]),
    (b"look: [" + b"x" * 200_000 + b"\n", ["not valid YAML"]),
])
def test_hostile_content_is_one_config_error_line(tmp_path: Path, content: bytes,
                                                   words: list) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    msg = one_line_error(path)
    for w in words:
        assert w in msg, (w, msg)


def test_live_edits_of_hostile_content_keep_the_last_good(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("look:\n  exposure: 0.5\n")
    t = tune.Tuning(path)
    for i, bad in enumerate([b"look:\n  exposure: \xff\n", b"look: " + b"[" * 3000,
                             b"look:\n  exposure: .nan\n", b"look:\n  1: 2\n  exposure: 1\n",
                             b"look:\n  exposure: " + b"9" * 400 + b"\n",
                             b"stream:\n  seed: " + b"7" * 5000 + b"\n"]):
        path.write_bytes(bad)
        t._mtime = -1 - i  # as if the clock moved
        assert not t.poll() and t.cfg.look.exposure == 0.5
        assert t.error and "\n" not in t.error and len(t.error) < MAX_MSG
    path.write_text("look:\n  exposure: 0.25\n")
    t._mtime = -100
    assert t.poll() and t.cfg.look.exposure == 0.25 and t.error is None


def test_a_tuned_nudge_cannot_be_nan() -> None:
    t = tune.Tuning(None)
    assert not t.set("look.exposure", float("nan")) and t.cfg.look.exposure == 0.0
    assert "finite" in t.error


_yaml_atoms = st.sampled_from([
    "look", "exposure", "grain", "stream", "seed", "screens", "traversal", "mode", "monitor",
    ":", ": ", "\n", "  ", "- ", "[", "]", "{", "}", ",", "&a ", "*a", "!!int ", "!!binary ",
    ".nan", ".inf", "1e999", "0x", "9" * 50, "true", "null", "~", "'", '"', "#", "<<: ",
    "\xff", "\t", "0.5", "-1", "? ", "|", ">", "---", "...", "%YAML 1.1\n", "\u2028",
])


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(st.binary(max_size=200),
                 st.lists(_yaml_atoms, max_size=40).map(lambda xs: "".join(xs).encode(
                     "utf-8", "surrogatepass")),
                 st.recursive(st.none() | st.booleans() | st.floats() | st.integers() |
                              st.text(max_size=8),
                              lambda c: st.lists(c, max_size=4) |
                              st.dictionaries(st.text(max_size=8) | st.integers(), c,
                                              max_size=4), max_leaves=20)
                 .map(lambda d: ("look: " + repr(d) + "\n").encode())))
def test_fuzz_any_content_is_a_config_or_one_error_line(tmp_path_factory: pytest.TempPathFactory,
                                                         content: bytes) -> None:
    path = tmp_path_factory.getbasetemp() / "fuzz.yaml"
    path.write_bytes(content)
    try:
        cfg = config.load(path)
    except ConfigError as e:
        msg = str(e)
        assert "\n" not in msg and len(msg) < MAX_MSG, msg
    else:
        assert isinstance(cfg, config.Config)
