"""`passersby train measure`: each yardstick fails the generator it is there to catch."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from passersby.cli.main import main
from passersby.train import data, measure


def pictures(count: int, seed: int) -> np.ndarray:
    """[count,64,64,3] uint8: smooth random colour fields (8x8 noise, bicubic up),
    unrelated to one another the way different portraits are."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (count, 8, 8, 3), dtype=np.uint8)
    return np.stack([np.asarray(Image.fromarray(im).resize((64, 64), Image.BICUBIC))
                     for im in small])


CROPS = pictures(120, 0)


def test_fresh_pictures_pass_memorisation_and_diversity() -> None:
    figures = measure.measure(pictures(60, 1), CROPS, faces=False)
    assert figures["memorisation"]["fraction_farther"] == 1.0
    assert figures["diversity"]["ratio"] > 0.9
    assert figures["meets_bar"], figures["bar"]


def test_identity_counts_only_on_pictures_as_sharp_as_the_crops() -> None:
    """A blur reads as more sitters: identity figures that pass on blurred pictures (texture
    under 0.8x the crops') do not meet the bar; the same figures on sharp pictures do."""
    for sharpness, ok in ((1.0, True), (0.5, False)):
        figures = {"bar": {}, "texture": {"ratio": sharpness},
                   "identity": {"ratio_mean_distance": 0.95, "ratio_same_person": 1.6},
                   "fidelity": {"ratio_frechet": 1.3,
                                "generated_vs_half": {"recall": 0.5, "precision": 0.7}}}
        measure._pretrained_bar(figures)
        assert figures["meets_bar"] is ok, figures["bar"]
        assert figures["bar"]["texture_ratio_for_identity"]["ok"] is ok
        assert figures["bar"]["same_person_share_ratio"]["ok"]


def test_noisy_pictures_fail_the_texture_bar() -> None:
    rng = np.random.default_rng(2)
    fresh = pictures(60, 1).astype(np.int16)
    noisy = np.clip(fresh + rng.normal(0, 12, fresh.shape), 0, 255).astype(np.uint8)
    figures = measure.measure(noisy, CROPS, faces=False)
    assert figures["texture"]["ratio"] > 1.2
    assert not figures["bar"]["texture_ratio"]["ok"] and not figures["meets_bar"]


@pytest.mark.parametrize("mirror", [False, True])
def test_a_generator_of_training_crops_fails_memorisation(mirror: bool) -> None:
    copies = CROPS[10:70, :, ::-1] if mirror else CROPS[10:70]
    m = measure.memorisation(np.ascontiguousarray(copies), CROPS)
    assert m["fraction_farther"] == 0.0 and m["nearest_min"] < 1e-3
    assert all(j == i + 10 and mirrored == mirror for i, j, mirrored, _ in m["_pairs"])
    figures = measure.measure(np.ascontiguousarray(copies), CROPS, faces=False)
    assert not figures["bar"]["not_memorised"]["ok"] and not figures["meets_bar"]


def test_near_copies_are_caught_and_set_the_threshold() -> None:
    near = measure.near_copies(CROPS[:60], seed=5)   # moved and re-coloured, not equal
    assert not np.array_equal(near, CROPS[:60])
    m = measure.memorisation(near, CROPS)
    assert m["fraction_farther"] <= 0.05, m          # ~1 % by construction of the threshold
    assert 0 < m["near_copy_median"] < m["threshold"] < m["real_to_other_real_median"]


def test_a_constant_generator_fails_diversity() -> None:
    one = np.repeat(pictures(1, 7), 50, axis=0)
    d = measure.diversity(one, CROPS)
    assert d["ratio"] < 0.01
    figures = measure.measure(one, CROPS, faces=False)
    assert not figures["bar"]["diversity_ratio"]["ok"]
    few = np.concatenate([pictures(3, 8)] * 20)      # three faces over and over
    assert measure.diversity(few, CROPS)["ratio"] < 0.8


def test_features_ignore_brightness_and_contrast_only() -> None:
    f = measure.features(CROPS[:2])
    dim = (CROPS[:2].astype(np.float32) * 0.6 + 20).astype(np.uint8)
    assert np.abs(measure.features(dim) - f).max() < 0.05
    assert measure.distances(f[:1], f[1:])[0, 0] > 0.8


def test_texture_tells_noise_and_blur() -> None:
    rng = np.random.default_rng(2)
    noisy = np.clip(CROPS[:20] + rng.normal(0, 20, CROPS[:20].shape), 0, 255).astype(np.uint8)
    assert measure.texture(noisy, CROPS)["ratio"] > 3
    blurred = np.stack([np.asarray(Image.fromarray(im).resize((4, 4)).resize((64, 64),
                                   Image.BILINEAR)) for im in CROPS[:20]])
    assert measure.texture(blurred, CROPS)["ratio"] < 0.8
    assert abs(measure.texture(pictures(20, 4), CROPS)["ratio"] - 1) < 0.15


def test_face_rates_see_no_face_in_noise() -> None:
    rates = measure.face_rates(CROPS[:10])
    assert rates == {"haar": 0.0, "eyes1": 0.0, "eyes2": 0.0}


def test_cli_prints_json_and_draws_the_closest_pairs(tmp_path: Path, weights_root: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "pictures"
    folder.mkdir()
    for i, im in enumerate(pictures(12, 3)):
        Image.fromarray(im).resize((160, 160)).save(folder / f"p{i}.png")
    monkeypatch.setattr(data, "largest_face", lambda rgb, min_face: (50, 50, 60, 60))
    data.make_dataset(folder, tmp_path / "ds", data.CropRecipe(align=False))
    monkeypatch.setenv("PASSERSBY_WEIGHTS", str(weights_root))
    sheet = tmp_path / "pairs.png"
    assert main(["train", "measure", "--weights", "dcgan64-standin", "--data",
                 str(tmp_path / "ds"), "--samples", "24", "--sheet", str(sheet),
                 "--no-pretrained"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["samples"] == 24 and figures["crops"] == 12
    assert set(figures["faces"]["generated"]) == {"haar", "eyes1", "eyes2"}
    assert figures["faces"]["generated"]["haar"] > 0.3      # the stand-in makes faces
    assert figures["memorisation"]["fraction_farther"] == 1.0
    assert len(figures["memorisation"]["closest"]) == 10
    assert np.asarray(Image.open(sheet)).shape == (5 * 128, 4 * 128, 3)
    assert main(["train", "measure", "--weights", "dcgan64-standin"]) == 2
    assert "needs --data" in capsys.readouterr().err
