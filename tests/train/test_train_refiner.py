"""`passersby train refiner`: degradations, the hold-out split, tiny runs, resume, package."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from passersby.cli.main import main
from passersby.generator import weights
from passersby.train import data, refiner
from passersby.train.generator import TrainError

TINY = refiner.Recipe(batch=4, patch=16, nf=8, blocks=1, adv_from=3, min_side=100,
                      holdout=0.2, checkpoint_every=2, sample_every=2)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def painting(rng: np.random.Generator, size: int = 400) -> np.ndarray:
    """A picture with detail at every scale: blobs, stripes and noise."""
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    im = np.zeros((size, size, 3), np.float32) + rng.uniform(40, 200, 3)
    for _ in range(6):
        cy, cx, r = rng.uniform(0, size, 2).tolist() + [rng.uniform(20, 90)]
        im[(yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2] = rng.uniform(0, 255, 3)
    im += 30 * np.sin(xx / rng.uniform(1.5, 4))[..., None]
    im += rng.normal(0, 8, im.shape)
    return np.clip(im, 0, 255).astype(np.uint8)


@pytest.fixture()
def dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Ten 256 px crops written by the real dataset tool (fixed face box: 180 px squares,
    one picture with a small box to be left out by min_side)."""
    folder = tmp_path / "pictures"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(10):
        Image.fromarray(painting(rng)).save(folder / f"p{i}.png")
    boxes = iter([(100, 100, 112, 112)] * 9 + [(150, 150, 50, 50)])
    monkeypatch.setattr(data, "largest_face", lambda rgb, min_face: next(boxes))
    out = tmp_path / "ds"
    data.make_dataset(folder, out, data.CropRecipe(sizes=(256,), min_face=40,
                                                   credit="test paintings", licence="CC0-1.0",
                                                   align=False))
    return out


def test_degrade_is_random_small_and_repeatable() -> None:
    big = painting(np.random.default_rng(1), 256)
    a = refiner.degrade(big, np.random.default_rng(7))
    b = refiner.degrade(big, np.random.default_rng(7))
    c = refiner.degrade(big, np.random.default_rng(8))
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert np.abs(a.astype(int) - c).mean() > 1.0
    plain = np.asarray(Image.fromarray(big).resize((64, 64), Image.BOX))
    assert np.abs(a.astype(int) - plain).mean() < 40      # still the same picture


def test_split_holds_out_by_name_and_skips_small_crops() -> None:
    report = {"crops": [{"file": f"f{i}.png", "crop": [0, 0, 300 if i % 4 else 100]}
                        for i in range(200)]}
    recipe = refiner.Recipe(min_side=224, holdout=0.1)
    train, held, small = refiner.split(report, recipe)
    assert small == 50 and len(train) + len(held) == 150
    assert not set(train) & set(held) and 5 <= len(held) <= 30
    assert refiner.split(report, recipe) == (train, held, small)


def test_refiner_starts_as_bilinear_and_learns() -> None:
    rng = np.random.default_rng(0)
    crops = np.stack([painting(rng, 256) for _ in range(8)])
    pool = list(range(8))
    recipe = refiner.Recipe(batch=4, patch=16, nf=8, blocks=1, adv=0.0, lr=2e-3)
    nets = refiner.Nets(recipe, torch.device("cpu"))
    cpu = torch.device("cpu")
    held = [refiner.batch_pairs(crops, pool, recipe, step) for step in range(1000, 1004)]
    assert held[0][0].shape == (4, 16, 16, 3) and held[0][1].shape == (4, 64, 64, 3)

    def loss() -> float:
        with torch.no_grad():
            return float(np.mean([torch.nn.functional.l1_loss(
                nets.r(refiner.to_tensor(x, cpu)), refiner.to_tensor(y, cpu)).item()
                for x, y in held]))

    x = refiner.to_tensor(held[0][0], cpu)
    with torch.no_grad():
        assert torch.equal(nets.r(x), torch.nn.functional.interpolate(
            x, scale_factor=4, mode="bilinear"))
    before = loss()
    for step in range(100):
        refiner.train_step(nets, crops, pool, recipe, step, cpu)
    after = loss()
    assert after < before * 0.95, (before, after)


def test_train_exports_a_package_that_loads(dataset: Path, tmp_path: Path) -> None:
    root = tmp_path / "weights"
    m = refiner.train(root, dataset, "mine-refiner", TINY, steps=4, device="cpu")
    assert m["kind"] == "refiner" and m["steps"] == 4
    assert m["training_data"]["smaller_than_min_side"] == 1
    assert "Trained from scratch" in m["licence"] and "CC0-1.0" in m["licence"]
    r, _ = weights.load_module(root, "mine-refiner", "refiner")
    out = r(torch.zeros(1, 3, 64, 64))
    assert out.shape == (1, 3, 256, 256)
    assert (root / "mine-refiner" / refiner.STRIP).exists()
    assert (root / "mine-refiner" / "train" / "samples" / "step-0000002.png").exists()


def test_resume_is_exact(dataset: Path, tmp_path: Path) -> None:
    whole = refiner.train(tmp_path / "a", dataset, "r", TINY, steps=4, device="cpu")
    refiner.train(tmp_path / "b", dataset, "r", TINY, steps=2, device="cpu")
    again = refiner.train(tmp_path / "b", dataset, "r", TINY, steps=4, device="cpu")
    assert again["steps"] == 4
    assert again["tensors_sha256"] == whole["tensors_sha256"]
    other = refiner.Recipe(**{**TINY.__dict__, "batch": 2})
    with pytest.raises(TrainError, match="started with recipe"):
        refiner.train(tmp_path / "b", dataset, "r", other, steps=6, device="cpu")


def test_too_few_large_crops_is_a_clear_error(dataset: Path, tmp_path: Path) -> None:
    recipe = refiner.Recipe(**{**TINY.__dict__, "min_side": 1000})
    with pytest.raises(TrainError, match="at least 1000 px"):
        refiner.train(tmp_path / "w", dataset, "r", recipe, steps=1, device="cpu")


def test_cli_needs_data(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "refiner"]) != 0
    assert "--data" in capsys.readouterr().err
