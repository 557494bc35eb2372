"""Bad input gets one clear line and exit status 2, never a traceback."""
from __future__ import annotations

from pathlib import Path

import pytest

from passersby.cli import main as cli


def run(capsys, *argv: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    rc = cli.main(list(argv))
    cap = capsys.readouterr()
    return rc, cap.out + cap.err


def test_bad_config_file(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "c.yaml"
    cfg.write_text("look:\n  vignette: -3\n")
    rc, out = run(capsys, "render", "--config", str(cfg), "--out", str(tmp_path / "x.mp4"))
    assert rc == 2 and "look.vignette" in out and str(cfg) in out and "Traceback" not in out


def test_missing_weights_name_the_file_and_the_fix(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PASSERSBY_WEIGHTS", str(tmp_path / "empty"))
    rc, out = run(capsys, "render", "--seconds", "0.5", "--out", str(tmp_path / "x.mp4"))
    assert rc == 2 and "met64" in out and "copy that folder into" in out
    rc, out = run(capsys, "render", "--weights", "dcgan64-standin", "--seconds", "0.5",
                  "--out", str(tmp_path / "x.mp4"))
    assert rc == 2 and "dcgan64-standin" in out and "passersby weights fetch" in out
    rc, out = run(capsys, "weights", "verify")
    assert rc == 1 and "copy that folder into" in out


def test_weights_flag_picks_a_world_and_its_encoder(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from passersby.cli.main import _load_config, parser

    for command in ("run", "render", "explore", "audit"):
        cfg = _load_config(parser().parse_args([command, "--weights", "dcgan64-standin"]))
        assert (cfg.weights.generator, cfg.weights.encoder) == (
            "dcgan64-standin", "dcgan64-standin-encoder")
    cfg = _load_config(parser().parse_args(["render"]))
    assert (cfg.weights.generator, cfg.weights.encoder) == ("met64", "met64-encoder")
    rc, out = run(capsys, "render", "--weights", "nobody", "--seconds", "0.5",
                  "--out", str(tmp_path / "x.mp4"))
    assert rc == 2 and "nobody" in out and "--weights" in out


def test_unwritable_output(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc, out = run(capsys, "render", "--seconds", "0.5", "--out", str(blocker / "sub" / "x.mp4"))
    assert rc == 2 and str(blocker) in out


def test_odd_size_for_mp4(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    rc, out = run(capsys, "render", "--seconds", "0.5", "--size", "101x100",
                  "--out", str(tmp_path / "x.mp4"))
    assert rc == 2 and "101" in out


def test_run_without_a_display_says_what_to_do(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    rc, out = run(capsys, "run", "--windowed")
    assert rc == 2 and "passersby render" in out


def test_bad_size_argument(capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as e:
        cli.main(["render", "--size", "big"])
    assert e.value.code == 2 and "WxH" in capsys.readouterr().err
