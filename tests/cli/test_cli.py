"""Bad input gets one clear line and exit status 2, never a traceback."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import default_world
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
    assert rc == 2 and default_world()[0] in out and "copy that folder into" in out
    rc, out = run(capsys, "render", "--weights", "dcgan64-standin", "--seconds", "0.5",
                  "--out", str(tmp_path / "x.mp4"))
    assert rc == 2 and "dcgan64-standin" in out and "passersby weights fetch" in out
    rc, out = run(capsys, "weights", "verify")
    assert rc == 1 and "copy that folder into" in out


def test_weights_flag_picks_a_world_and_its_encoder(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from passersby.cli.args import load_config
    from passersby.cli.main import parser

    for command in ("run", "render", "explore", "audit"):
        cfg = load_config(parser().parse_args([command, "--weights", "dcgan64-standin"]))
        assert (cfg.weights.generator, cfg.weights.encoder) == (
            "dcgan64-standin", "dcgan64-standin-encoder")
    cfg = load_config(parser().parse_args(["render"]))
    assert (cfg.weights.generator, cfg.weights.encoder) == default_world()[:2]
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


def test_train_subcommands_have_their_own_flags(capsys) -> None:  # type: ignore[no-untyped-def]
    """`train WHAT` is a subcommand with WHAT's flags only; a recipe's flags are made from
    its fields, with their defaults in the help."""
    from passersby.cli import train
    from passersby.cli.main import parser
    from passersby.train import generator

    args = parser().parse_args(
        ["train", "generator", "--data", "D", "--out", "N", "--steps", "9", "--d-arch",
         "projected", "--imle", "1.0", "--ada", "--seed-train", "3", "--batch", "8", "--size",
         "64", "--lr-g", "2e-3", "--d-norm", "none"])
    assert (args.what, args.data, args.out, args.steps, args.device) == ("generator", "D", "N",
                                                                         9, "auto")
    recipe = generator.Recipe(**train.given(args, generator.Recipe))
    assert recipe == generator.Recipe(d_arch="projected", imle=1.0, ada=True, seed=3, batch=8,
                                      lr_g=2e-3, d_norm="none")
    args = parser().parse_args(["train", "data", "--images", "I", "--out", "O", "--size", "64",
                                "128", "--no-align", "--margin", "0.09"])
    from passersby.train import data

    assert data.CropRecipe(**train.given(args, data.CropRecipe)) == data.CropRecipe(
        sizes=(64, 128), align=False, margin=0.09)
    assert train.given(parser().parse_args(["train", "data"]), data.CropRecipe) == {}
    for argv in (["train", "encoder", "--d-arch", "projected"], ["train", "carry", "--data", "D"],
                 ["train", "data", "--steps", "3"]):
        with pytest.raises(SystemExit):
            parser().parse_args(argv)
        assert "unrecognized arguments" in capsys.readouterr().err
    with pytest.raises(SystemExit):         # not taken for an abbreviation of --seed-train
        parser().parse_args(["train", "generator", "--seed", "1"])
    assert "the training seed is --seed-train" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser().parse_args(["train", "generator", "--help"])
    text = capsys.readouterr().out
    assert "--imle-pool N" in text and "(default 2048)" in text and "generator:" not in text


def test_every_recipe_flag_is_one_field() -> None:
    """A recipe field made with `flag` is a flag of its command, and the generator's
    manifest line (RECIPE_FLAGS) names the same flags."""
    import dataclasses

    from passersby.cli import args
    from passersby.cli import train as cli_train
    from passersby.cli.main import parser
    from passersby.train import data, encoder, generator, refiner

    commands = {path[-1]: p for path, p in args.walk(parser())
                if path[:1] == ("train",) and len(path) == 2}
    for what, recipe in (("data", data.CropRecipe), ("generator", generator.Recipe),
                         ("encoder", encoder.Recipe), ("refiner", refiner.Recipe)):
        dests = {a.dest for a in commands[what]._actions}
        flagged = {f.name for f in dataclasses.fields(recipe) if "help" in f.metadata}
        assert flagged and flagged <= dests, (what, flagged - dests)
    named = {f.metadata["flag"] or f.name.replace("_", "-")
             for f in dataclasses.fields(generator.Recipe) if "help" in f.metadata}
    assert {flag for flag, _ in generator.RECIPE_FLAGS} == named - {"batch", "seed-train",
                                                                    "size"}
    assert cli_train.COMMANDS.keys() == {"data", "generator", "encoder", "refiner", "measure",
                                         "copies", "carry"}


def test_cuda_asked_for_on_a_machine_without_it(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import torch

    from passersby.common.errors import UserError
    from passersby.generator.chain import pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("stream:\n  device: cuda\n  threads: 1\n")
    rc, out = run(capsys, "audit", "--steps", "10", "--config", str(cfg))
    assert rc == 2 and "Traceback" not in out, out
    for words in ("stream.device = 'cuda'", "no CUDA device", "auto", "cpu"):
        assert words in out, (words, out)
    with pytest.raises(UserError, match="--device = 'cuda'.*give --device auto or --device cpu"):
        pick_device("cuda", "--device")                      # the training commands' flag
    assert pick_device("auto").type == "cpu"


def test_audit_in_a_player_only_install_names_the_extra(capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from passersby.generator import audit

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    monkeypatch.setitem(sys.modules, "cv2", None)            # as if not installed
    rc, out = run(capsys, "audit", "--steps", "10")
    assert rc == 2 and "Traceback" not in out, out
    assert "opencv-python-headless<5" in out and "[audit] extra" in out, out
    assert "pip install" in out, out
    with open(Path(__file__).resolve().parents[2] / "pyproject.toml", "rb") as f:
        extra = tomllib.load(f)["project"]["optional-dependencies"]["audit"]
    assert sorted(req for _, req in audit.NEEDS) == sorted(extra)   # the message's names
