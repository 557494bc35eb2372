"""`passersby train generator`: tiny runs (batch 4, a few steps) on a synthetic dataset."""
from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from passersby.cli.main import main
from passersby.generator import weights
from passersby.generator.chain import Chain
from passersby.generator.models.dcgan import Generator
from passersby.train import data, generator
from passersby.train.generator import Recipe, TrainError, train

STANDIN = "dcgan64-standin"
RECIPE = Recipe(batch=4, ndf=8, checkpoint_every=2, sample_every=2)


class Crash(Exception):
    """A power cut in the middle of a step: nothing gets saved."""


pytestmark = pytest.mark.usefixtures("one_torch_thread", "few_ship_batches")


@pytest.fixture()
def dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Eight 64 px crops written by the real dataset tool (the detector replaced by a
    fixed box: these pictures are coloured blobs, not faces)."""
    folder = tmp_path / "pictures"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        im = np.zeros((160, 160, 3), np.uint8) + rng.integers(0, 255, 3, dtype=np.uint8)
        yy, xx = np.mgrid[:160, :160]
        im[(yy - 80) ** 2 + (xx - 80) ** 2 < 35 ** 2] = rng.integers(0, 255, 3, dtype=np.uint8)
        Image.fromarray(im).save(folder / f"p{i}.png")
    monkeypatch.setattr(data, "largest_face", lambda rgb, min_face: (50, 50, 60, 60))
    out = tmp_path / "ds"
    data.make_dataset(folder, out, data.CropRecipe(credit="test blobs", licence="CC0-1.0",
                                                   align=False))
    return out


@pytest.fixture()
def root(tmp_path: Path, weights_root: Path) -> Path:
    """A weights folder of our own holding (a link to) the stand-in to fine-tune."""
    r = tmp_path / "weights"
    r.mkdir()
    (r / STANDIN).symlink_to(weights_root / STANDIN)
    return r


def _checkpoint(root: Path, name: str) -> tuple[dict, dict[str, torch.Tensor]]:
    folder = root / name / generator.TRAIN_DIR
    record = json.loads((folder / "checkpoint.json").read_text())
    return record, load_file(str(folder / record["file"]))


def test_interrupted_run_resumes_exactly(root: Path, dataset: Path) -> None:
    whole = train(root, dataset, "whole", RECIPE, STANDIN, steps=5)
    assert all(math.isfinite(whole["losses"][k]) for k in ("d", "g")), whole["losses"]
    assert whole["steps"] == 5

    def crash_at_3(info: dict) -> None:
        assert math.isfinite(info["loss_d"]) and math.isfinite(info["loss_g"])
        if info["step"] == 3:
            raise Crash

    with pytest.raises(Crash):
        train(root, dataset, "cut", RECIPE, STANDIN, steps=5, progress=crash_at_3)
    record, _ = _checkpoint(root, "cut")
    assert record["step"] == 2 and not (root / "cut" / weights.MANIFEST_FILE).exists()

    def ctrl_c_at_4(info: dict) -> None:
        if info["step"] == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # resumes at 2, Ctrl-C saves step 4
        train(root, dataset, "cut", RECIPE, STANDIN, steps=5, progress=ctrl_c_at_4)
    assert _checkpoint(root, "cut")[0]["step"] == 4
    resumed = train(root, dataset, "cut", RECIPE, STANDIN, steps=5)

    assert resumed["tensors_sha256"] == whole["tensors_sha256"]
    (_, a), (_, b) = _checkpoint(root, "whole"), _checkpoint(root, "cut")
    assert a.keys() == b.keys() and any(k.startswith("opt_d.") for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    standin = weights.read_manifest(root, STANDIN)["tensors_sha256"]
    assert whole["tensors_sha256"] != standin  # it did train


def test_kept_steps_export_exactly_what_a_run_to_that_step_makes(root: Path,
                                                                 dataset: Path) -> None:
    scratch = Recipe(**{**vars(RECIPE), "ngf": 8})
    at4 = train(root, dataset, "short", scratch, None, steps=4)
    six = train(root, dataset, "long", scratch, None, steps=6, keep_every=4)
    folder = root / "long" / generator.TRAIN_DIR
    assert generator.kept_steps(folder) == [4]
    assert sorted(p.name for p in folder.glob("checkpoint-*.safetensors")) == [
        "checkpoint-0000004.safetensors", "checkpoint-0000006.safetensors"]
    back = train(root, dataset, "long", scratch, None, steps=4)       # the kept step 4
    assert back["tensors_sha256"] == at4["tensors_sha256"] != six["tensors_sha256"]
    assert back["steps"] == 4 and "--steps 4" in back["made_by"]
    assert _checkpoint(root, "long")[0]["step"] == 6                 # the run stays at 6
    with pytest.raises(TrainError, match="kept no checkpoint at step 2.*kept: 4"):
        train(root, dataset, "long", scratch, None, steps=2)
    with pytest.raises(TrainError, match="--keep-every 3: use a multiple of 2"):
        train(root, dataset, "long", scratch, None, steps=8, keep_every=3)
    assert train(root, dataset, "long", scratch, None, steps=6)["tensors_sha256"] == \
        six["tensors_sha256"]                                        # and on from 6


def test_a_branch_goes_on_from_a_runs_step_changing_only_weights_and_rates(
        root: Path, dataset: Path) -> None:
    src = train(root, dataset, "src", RECIPE, STANDIN, steps=4, keep_every=2)
    same = train(root, dataset, "same", RECIPE, STANDIN, steps=4, branch="src@2")
    assert same["tensors_sha256"] == src["tensors_sha256"]   # nothing changed: the run itself
    faster = Recipe(**{**vars(RECIPE), "lr_g": 5e-4})
    fast = train(root, dataset, "fast", faster, STANDIN, steps=4, branch="src@2")
    assert fast["tensors_sha256"] != src["tensors_sha256"]
    record, _ = _checkpoint(root, "fast")
    assert record["step"] == 4 and record["branched_from"] == {
        "run": "src", "step": 2, "changed": {"lr_g": [RECIPE.lr_g, 5e-4]}}
    assert fast["lineage"]["branched_from"]["step"] == 2
    assert "--branch src@2" in fast["made_by"] and "--lr-g 0.0005" in fast["made_by"]
    on = train(root, dataset, "fast", faster, STANDIN, steps=6, branch="src@2")
    assert on["steps"] == 6                                   # a run of its own now
    assert train(root, dataset, "fast", faster, STANDIN, steps=6)["tensors_sha256"] == \
        on["tensors_sha256"]
    for branch, recipe, match in (
            ("src@2", Recipe(**{**vars(RECIPE), "batch": 6}), "batch is 4 there and 6 here"),
            ("src@3", RECIPE, "kept steps: 2, 4"),
            ("src@two", RECIPE, "whole number"),
            ("nothing", RECIPE, "no checkpoint there"),
            ("src@4", faster, "branched from src@2")):
        out = "fast" if match.startswith("branched") else "bad"
        with pytest.raises(TrainError, match=match):
            train(root, dataset, out, recipe, STANDIN, steps=8, branch=branch)
    assert not (root / "bad" / generator.TRAIN_DIR / "checkpoint.json").exists()


def test_package_loads_in_the_chain_and_states_its_lineage(root: Path, dataset: Path) -> None:
    m = train(root, dataset, "world", RECIPE, STANDIN, steps=2)
    chain = Chain.load(root, "world", None, "cpu")
    z = np.random.default_rng(3).standard_normal((6, chain.nz)).astype(np.float32)
    pictures = chain.generate_batch(z)                               # [6,64,64,3] uint8
    assert pictures.shape == (6, 64, 64, 3) and pictures.std() > 10
    assert np.abs(pictures[0].astype(int) - pictures[1]).mean() > 2  # latents matter
    _, ckpt = _checkpoint(root, "world")
    ema = Generator(**m["args"])
    ema.load_state_dict({k[4:]: v for k, v in ckpt.items() if k.startswith("ema.")})
    with torch.no_grad():
        # the package is the trained average with its BatchNorm statistics measured again
        want = generator.shipped(SimpleNamespace(ema=ema), RECIPE)(torch.from_numpy(z))
        stale = ema.eval()(torch.from_numpy(z))
    assert (chain.generate(z) - want).abs().max() < 0.05  # fp16 package == shipped average
    assert (want - stale).abs().max() > 0.01              # the statistics were re-measured
    standin = weights.read_manifest(root, STANDIN)
    assert m["lineage"]["init"]["tensors_sha256"] == standin["tensors_sha256"]
    assert "NON-COMMERCIAL" in m["licence"] and "CC0-1.0; test blobs" in m["licence"]
    assert m["training_data"]["faces"] == 8 and len(m["training_data"]["crops_sha256"]) == 64
    grid = np.asarray(Image.open(root / "world" / m["samples"]))
    assert grid.shape == (512, 512, 3) and grid.std() > 10
    assert (root / "world" / "train" / "samples" / "step-0000002.png").exists()


def test_resume_refuses_other_options_and_budgets_are_checked(root: Path,
                                                              dataset: Path) -> None:
    w = train(root, dataset, "w", RECIPE, STANDIN, steps=2)
    other = train(root, dataset, "w1", Recipe(**{**vars(RECIPE), "seed": 1}), STANDIN, steps=2)
    assert other["tensors_sha256"] != w["tensors_sha256"]  # the seed matters
    with pytest.raises(TrainError, match="batch"):
        train(root, dataset, "w", Recipe(**{**vars(RECIPE), "batch": 6}), STANDIN, steps=3)
    with pytest.raises(TrainError, match="init"):
        train(root, dataset, "w", RECIPE, None, steps=3)
    with pytest.raises(TrainError, match="exactly one budget"):
        train(root, dataset, "w", RECIPE, STANDIN, steps=3, minutes=1.0)
    with pytest.raises(data.DataError, match="128 px"):
        train(root, dataset, "w", Recipe(size=128), STANDIN, steps=3)


def test_cli_trains_from_scratch_and_says_where(root: Path, dataset: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PASSERSBY_WEIGHTS", str(root))
    cmd = ["train", "generator", "--data", str(dataset), "--out", "scratch", "--steps", "2",
           "--batch", "4", "--threads", "1", "--ngf", "16", "--encoder-minutes", "0.02"]
    assert main(cmd) == 0
    out, err = capsys.readouterr()
    assert f"wrote {root / 'scratch'} (2 steps" in out and "step 2" in err and "steps/s" in err
    m = weights.read_manifest(root, "scratch")
    assert m["lineage"]["init"] is None and m["licence"].startswith("Trained from scratch")
    assert m["args"]["ngf"] == 16 and "--ngf 16" in m["made_by"]
    g, _ = weights.load_module(root, "scratch", "generator")
    assert g.main[0].weight.shape[1] == 16 * 8     # the first layer: nz -> ngf * 8
    # ...and then its feedback encoder, so that `run --weights scratch` plays it
    assert f"wrote {root / 'scratch-encoder'}" in out and "run --weights scratch" in out
    e = weights.read_manifest(root, "scratch-encoder")
    assert e["generator_tensors_sha256"] == m["tensors_sha256"]
    assert "--seed-train 0" in e["made_by"]
    from passersby.generator.chain import Chain

    Chain.load(root, "scratch", "scratch-encoder", "cpu")   # the pair loads as a world
    assert main(cmd) == 0                                   # done already: E is kept
    assert "the encoder of these weights is there already" in capsys.readouterr().out
    assert weights.read_manifest(root, "scratch-encoder")["tensors_sha256"] == e["tensors_sha256"]
    assert main(["train", "generator", "--out", "x"]) == 2
    assert "needs --data" in capsys.readouterr().err


FINE_TUNE = Recipe(batch=4, ndf=8, checkpoint_every=2, sample_every=2, freeze_g=3,
                   d_norm="none", r1=0.5, r1_every=2, ada=True, ada_interval=3, ada_speed=6,
                   d_warmup=1)


def test_fine_tune_recipe_freezes_g_and_resumes_exactly(root: Path, dataset: Path) -> None:
    whole = train(root, dataset, "ft", FINE_TUNE, STANDIN, steps=5)

    def crash_at_3(info: dict) -> None:
        assert 0.0 <= info["ada_p"] <= 1.0
        if info["step"] == 3:
            raise Crash

    with pytest.raises(Crash):
        train(root, dataset, "ft-cut", FINE_TUNE, STANDIN, steps=5, progress=crash_at_3)
    record, _ = _checkpoint(root, "ft-cut")
    assert record["step"] == 2 and set(record["ada"]) >= {"p", "signs", "count"}
    assert train(root, dataset, "ft-cut", FINE_TUNE, STANDIN,
                 steps=5)["tensors_sha256"] == whole["tensors_sha256"]
    (rec, a), (_, b) = _checkpoint(root, "ft"), _checkpoint(root, "ft-cut")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert rec["ada"] == _checkpoint(root, "ft-cut")[0]["ada"] and len(rec["history"][-1]) == 6

    init, _ = weights.load_tensors(root, STANDIN)
    g = {k[2:]: v for k, v in a.items() if k.startswith("g.")}
    frozen = [k for k in g if int(k.split(".")[1]) <= 7]         # 3 convs + their BatchNorm
    assert frozen and all(torch.equal(g[k], init[k].to(g[k].dtype)) for k in frozen)
    stats = [k for k in g if "running" in k]                       # every BatchNorm: eval
    assert stats and all(torch.equal(g[k], init[k].to(g[k].dtype)) for k in stats)
    assert not torch.equal(g["main.12.weight"], init["main.12.weight"].to(torch.float32))
    assert "--freeze-g 3" in whole["made_by"] and "--ada" in whole["made_by"]
    assert whole["recipe"]["r1"] == 0.5 and whole["recipe"]["d_norm"] == "none"


def test_batchnorm_only_and_batch_independent_samples(root: Path, dataset: Path) -> None:
    recipe = Recipe(**{**vars(FINE_TUNE), "freeze_g": 0, "g_params": "bn", "anchor": 5.0})
    train(root, dataset, "bn", recipe, STANDIN, steps=3)
    init, _ = weights.load_tensors(root, STANDIN)
    _, ckpt = _checkpoint(root, "bn")
    g = {k[2:]: v for k, v in ckpt.items() if k.startswith("g.")}
    convs = ("main.0.weight", "main.3.weight", "main.6.weight", "main.9.weight",
             "main.12.weight")
    assert all(torch.equal(g[k], init[k].to(g[k].dtype)) for k in convs)
    assert any(not torch.equal(g[k], init[k].to(g[k].dtype)) for k in g if k.endswith(".bias"))
    nets = generator.Nets(recipe, root, STANDIN, torch.device("cpu"))
    z = torch.randn(4, 100, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():                            # G in training mode, stats frozen
        assert torch.allclose(nets.g(z)[:1], nets.g(z[:1]), atol=1e-5)
    with pytest.raises(TrainError, match="--anchor"):          # an anchor needs an init
        generator.Nets(recipe, root, None, torch.device("cpu"))
    with pytest.raises(TrainError, match="freeze-g 5"):
        generator.Nets(Recipe(freeze_g=5), root, STANDIN, torch.device("cpu"))


def test_lite_generator_trains_resumes_and_plays(root: Path, dataset: Path) -> None:
    """--g-arch lite: FastGAN's light G (no transposed convolutions); the package names its
    architecture, loads in the chain (BatchNorm folded: the same pictures), a run resumes
    exactly, and the dcgan-only --freeze-g is refused with the alternative."""
    from passersby.generator import models

    for size in (64, 128, 256):
        g = models.build("lite-generator", {"nz": 100, "ngf": 8, "nc": 3, "size": size}).eval()
        with torch.no_grad():
            out = g(torch.randn(2, 100))
        assert out.shape == (2, 3, size, size) and out.abs().max() <= 1
        assert not any(isinstance(m, torch.nn.ConvTranspose2d) and m.stride != (1, 1)
                       for m in g.modules())                 # upsampling is nearest + conv
    recipe = Recipe(batch=4, ngf=8, ndf=8, checkpoint_every=2, sample_every=2, g_arch="lite")
    whole = train(root, dataset, "lite", recipe, steps=4)
    train(root, dataset, "cut", recipe, steps=2)
    assert train(root, dataset, "cut", recipe, steps=4)["tensors_sha256"] == whole["tensors_sha256"]
    assert whole["arch"] == "lite-generator" and "--g-arch lite" in whole["made_by"]
    chain = Chain.load(root, "lite", None, "cpu")
    z = np.random.default_rng(3).standard_normal((4, chain.nz)).astype(np.float32)
    g, _ = weights.load_module(root, "lite", "generator")
    with torch.no_grad():
        want = g.float().eval()(torch.from_numpy(z))
    assert (chain.generate(z) - want).abs().max() < 0.02             # folded == as trained
    assert np.abs(chain.generate_batch(z)[0].astype(int) - chain.generate_batch(z)[1]).mean() > 1
    with pytest.raises(generator.TrainError, match="--freeze-g 1.*--g-params bn"):
        train(root, dataset, "bad", Recipe(batch=4, ngf=8, g_arch="lite", freeze_g=1), steps=1)


def test_widen_keeps_the_pictures_and_a_run_from_it_trains(root: Path, dataset: Path) -> None:
    """--widen NGF: the init's light G, wider, makes the same pictures (exactly without the
    copies' jitter, nearly with it); a run from it trains the wider G and resumes exactly;
    a narrower width, a DCGAN init and --widen without --init are refused with the fix."""
    from passersby.generator import models
    from passersby.train import widen

    for size in (64, 128):
        g = models.build("lite-generator", {"nz": 100, "ngf": 8, "nc": 3, "size": size})
        g.train()                       # BatchNorm statistics that are not the identity
        with torch.no_grad():
            for _ in range(3):
                g(torch.randn(8, 100))
        g.eval()
        z = torch.randn(6, 100, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            want = g(z)
            exact, jittered = widen.widen(g, 12, noise=0).eval(), widen.widen(g, 12).eval()
            assert exact.start[0].weight.shape[1] == 2 * 8 * 12
            assert (exact(z) - want).abs().max() < 1e-5
            gap = (jittered(z) - want).abs()
            assert 0 < gap.mean() < 0.01, gap.mean()
        first = g.start[0].weight.shape[1] // 2          # the 4x4 channels: 64 -> 96
        assert torch.equal(jittered.start[0].weight[:, :first], exact.start[0].weight[:, :first])
        assert not torch.equal(jittered.start[0].weight[:, -1], exact.start[0].weight[:, -1])
    small = Recipe(batch=4, ngf=8, ndf=8, checkpoint_every=2, sample_every=2, g_arch="lite")
    train(root, dataset, "narrow", small, steps=2)
    recipe = Recipe(batch=4, ndf=8, checkpoint_every=2, sample_every=2, widen=12)
    whole = train(root, dataset, "wide", recipe, init="narrow", steps=4)
    assert whole["args"]["ngf"] == 12 and "--widen 12" in whole["made_by"]
    train(root, dataset, "cut", recipe, init="narrow", steps=2)
    assert train(root, dataset, "cut", recipe, init="narrow",
                 steps=4)["tensors_sha256"] == whole["tensors_sha256"]
    for bad, init, match in ((Recipe(batch=4, widen=6), "narrow", "from 8 to 256"),
                             (Recipe(batch=4, widen=12), STANDIN, "only a light G"),
                             (Recipe(batch=4, widen=12), None, "give --init")):
        with pytest.raises(TrainError, match=match):
            train(root, dataset, "bad", bad, init=init, steps=1)


def _world_of(root: Path, dataset: Path) -> None:
    """Package "world": the stand-in's network, stated as trained on `dataset`'s crops."""
    tensors, manifest = weights.load_tensors(root, STANDIN)
    crops, _ = data.load_crops(dataset, 64)
    import hashlib

    weights.save_package(root, "world", tensors, {
        **{k: v for k, v in manifest.items() if k in ("kind", "arch", "args", "licence")},
        "training_data": {"crops_sha256": hashlib.sha256(crops.tobytes()).hexdigest()}})


def test_copy_guard_is_built_from_the_training_crops_and_refuses_others(
        root: Path, dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from passersby.generator import copies
    from passersby.train import measure

    _world_of(root, dataset)
    before = weights.read_manifest(root, "world")["tensors_sha256"]
    monkeypatch.setenv("PASSERSBY_WEIGHTS", str(root))
    assert main(["train", "copies", "--weights", "world", "--data", str(dataset)]) == 0
    assert f"wrote {root / 'world' / copies.FILE} (8 crops" in capsys.readouterr().out
    m = weights.read_manifest(root, "world")
    assert m["tensors_sha256"] == before                 # the network is untouched
    crops, _ = data.load_crops(dataset, 64)
    want = float(np.percentile(measure.near_copy_distances(crops), 99))
    assert m["copy_guard"]["threshold"] == pytest.approx(want, abs=1e-4)
    guard = Chain.load(root, "world", None, "cpu").copies
    assert guard is not None and all(guard.copies(c) for c in crops)
    assert all(guard.copies(np.ascontiguousarray(c[:, ::-1])) for c in crops)
    assert weights.verify(root, ["world"])[0][1]
    # the measure reads the world as shown: a generator that redraws its crops half the
    # time fails memorisation, and passes it as shown, the guard dropping those
    strangers = np.random.default_rng(9).integers(0, 256, (8, 64, 64, 3), dtype=np.uint8)
    monkeypatch.setattr(measure, "generate", lambda *a, **k: np.concatenate([crops, strangers]))
    f = measure.run(root, "world", dataset, count=16, pretrained=False)
    assert f["memorisation"]["fraction_farther"] == 0.5 and not f["bar"]["not_memorised"]["ok"]
    assert f["copy_guard"] == {"threshold": m["copy_guard"]["threshold"], "dropped": 0.5,
                               "not_memorised_as_shown": 1.0}
    assert f["bar"]["not_memorised_as_shown"]["ok"]
    # other crops than the world was trained on: refused, nothing written
    other = tmp_path / "other"
    import shutil

    shutil.copytree(dataset, other)
    first = sorted((other / "64").iterdir())[0]
    Image.fromarray(255 - np.asarray(Image.open(first))).save(first)
    assert main(["train", "copies", "--weights", "world", "--data", str(other)]) == 2
    err = capsys.readouterr().err
    assert f"--data {other}" in err and "not the ones world was trained on" in err
    assert weights.read_manifest(root, "world")["copy_guard"] == m["copy_guard"]


@pytest.mark.parametrize("damage", ["flip", "missing", "threshold", "entry", "path"])
def test_a_damaged_copy_guard_stops_the_start_naming_file_and_fix(
        root: Path, dataset: Path, damage: str) -> None:
    from passersby.generator import copies
    from passersby.train import copies as build

    _world_of(root, dataset)
    build.build(root, "world", dataset)
    folder = root / "world"
    m = json.loads((folder / "manifest.json").read_text())
    if damage == "flip":
        blob = bytearray((folder / copies.FILE).read_bytes())
        blob[-5] ^= 0x40
        (folder / copies.FILE).write_bytes(bytes(blob))
    elif damage == "missing":
        (folder / copies.FILE).unlink()
    elif damage == "threshold":   # JSON as Python reads it takes NaN
        (folder / "manifest.json").write_text(json.dumps(m).replace(
            f'"threshold": {m["copy_guard"]["threshold"]}', '"threshold": NaN'))
    elif damage == "entry":
        m["copy_guard"] = [1, 2]
        (folder / "manifest.json").write_text(json.dumps(m))
    else:
        m["copy_guard"]["file"] = "../world/copies.safetensors"
        (folder / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(weights.WeightsError) as e:
        Chain.load(root, "world", None, "cpu")
    assert "copy guard of world" in e.value.problem and "train copies" in e.value.fix
    name, ok, _, fix = weights.verify(root, ["world"])[0]
    assert not ok and "train copies" in fix
