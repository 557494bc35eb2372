"""`passersby train data`: face crops of real paintings, the report, and the errors."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("cv2", reason="the face detector needs opencv-python-headless<5")

from passersby.cli.main import main
from passersby.common.errors import UserError
from passersby.generator.faces import has_face
from passersby.train import data

# the workplace's shared Met portraits (../shared next to the repository), or $PASSERSBY_MET_IMAGES
MET = Path(os.environ.get("PASSERSBY_MET_IMAGES", Path(__file__).resolve().parents[3] / "shared"
                          / "datasets" / "met-portraits" / "images"))
# four portraits with one clear face each (checked by eye on the contact sheet)
HAAR = data.CropRecipe(align=False)
FACES = ["image-10075.jpg", "image-10076.jpg", "image-10092.jpg", "image-10093.jpg"]


@pytest.fixture()
def paintings(tmp_path: Path) -> Path:
    """A few Met paintings (linked, never copied into the repo) plus one unreadable file."""
    if not MET.is_dir():
        pytest.skip(f"{MET} is absent (the shared Met portraits are not on this machine)")
    folder = tmp_path / "paintings"
    folder.mkdir()
    for name in FACES:
        os.symlink(MET / name, folder / name)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (folder / "notes.txt").write_text("not an image, not counted")
    Image.new("RGB", (400, 400), (120, 90, 60)).save(folder / "blank.png")  # no face
    return folder


def test_crops_report_and_contact_sheet(paintings: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ds"
    assert main(["train", "data", "--images", str(paintings), "--out", str(out),
                 "--size", "64", "128", "--licence", "CC0-1.0", "--no-align"]) == 0
    line = capsys.readouterr().out
    assert line.startswith("5 images read, 4 faces (67 %)"), line
    report = json.loads((out / data.REPORT).read_text())
    assert report["images_listed"] == 6 and report["images_read"] == 5
    assert report["rejected"]["unreadable"] == 1 and report["rejected"]["no_face"] >= 1
    assert report["faces"] + sum(report["rejected"].values()) == 6
    assert report["faces"] >= 3, report  # the clear portraits yield faces
    for crop in report["crops"]:
        assert crop["source"] in FACES and crop["file"] == Path(crop["source"]).stem + ".png"
        x, _, w, h = crop["face"]
        x0, y0, side = crop["crop"]
        assert side == round(max(w, h) * 1.6) and x0 >= 0 and y0 >= 0  # 30 % margin, inside
        assert abs((x0 + side / 2) - (x + w / 2)) <= 1  # face-centred
        for size in (64, 128):
            im = np.asarray(Image.open(out / str(size) / crop["file"]))
            assert im.shape == (size, size, 3)
    crops, _ = data.load_crops(out, 64)
    assert crops.shape == (report["faces"], 64, 64, 3)
    assert np.mean([has_face(c) for c in crops]) >= 0.5  # the crops hold faces
    sheet = np.asarray(Image.open(out / data.CONTACT))
    assert sheet.shape == (64, 512, 3) and sheet[:, :64].std() > 10
    assert not any(p.suffix == ".jpg" for p in out.rglob("*"))  # no source copied


def test_rerun_replaces_crops_and_keeps_foreign_folders_safe(paintings: Path,
                                                            tmp_path: Path) -> None:
    out = tmp_path / "ds"
    data.make_dataset(paintings, out, HAAR)
    (out / "64" / "stale.png").write_bytes(b"old")
    report = data.make_dataset(paintings, out, HAAR)
    assert sorted(p.name for p in (out / "64").iterdir()) == sorted(c["file"] for c in
                                                                     report["crops"])
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("precious")
    with pytest.raises(UserError, match="not empty"):
        data.make_dataset(paintings, foreign, HAAR)


def test_crop_geometry_rejects_cut_faces() -> None:
    assert data.crop_square((100, 100, 50, 50), 400, 400, 0.3) == (85, 85, 80)
    assert data.crop_square((5, 100, 50, 50), 400, 400, 0.3) is None    # left border
    assert data.crop_square((100, 360, 40, 40), 400, 400, 0.3) is None  # bottom border
    # framed like the stand-in: tight, the face a little below the centre
    assert data.crop_square((100, 100, 50, 50), 400, 400, 0.09, 0.56) == (96, 92, 59)


def test_tiny_faces_are_rejected(paintings: Path, tmp_path: Path) -> None:
    report = data.make_dataset(paintings, tmp_path / "a", HAAR)
    biggest = max(max(c["face"][2:]) for c in report["crops"])
    report = data.make_dataset(paintings, tmp_path / "b", data.CropRecipe(min_face=biggest + 1,
                                                                         align=False))
    assert report["faces"] == 0 and report["rejected"]["too_small"] >= 1, report


@pytest.mark.parametrize("case", ["missing", "empty", "unwritable", "size"])
def test_clear_errors(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images, out, extra = tmp_path / "nope", tmp_path / "ds", []
    if case != "missing":
        images.mkdir()
    if case in ("unwritable", "size"):
        Image.new("RGB", (64, 64)).save(images / "a.png")
    if case == "unwritable":
        out = tmp_path / "file.txt"
        out.write_text("a file, not a folder")
        out = out / "ds"
    if case == "size":
        extra = ["--size", "100"]
    if case == "size":
        with pytest.raises(SystemExit):
            main(["train", "data", "--images", str(images), "--out", str(out), *extra])
        assert "invalid choice: 100" in capsys.readouterr().err
        return
    assert main(["train", "data", "--images", str(images), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    want = {"missing": "no such folder", "empty": "no images",
            "unwritable": "cannot write there"}[case]
    assert want in err and str(images if case != "unwritable" else out) in err, err
