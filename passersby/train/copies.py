"""`passersby train copies`: give a generator package its copy guard (generator/copies.py).

The guard is the measure's memorisation test carried into the player: the world's training
crops as int8 features and the threshold the measure draws from them (the 99th percentile
of the crops' distances to their own near copies). It is built from the very crops the
package was trained on (checked against its manifest's crops_sha256), written beside the
weights as copies.safetensors, and named, with its sha256 and threshold, in the manifest's
`copy_guard` entry; the network's tensors and their hash are untouched.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
from safetensors.numpy import save

from passersby.generator import copies, weights
from passersby.train import data, measure


def build(root: Path, package: str, dataset: Path, seed: int = 0) -> dict:
    """Write `package`'s copy guard from the crops of `dataset`; returns the manifest entry."""
    manifest = weights.read_manifest(root, package)
    if manifest.get("kind") != "generator":
        raise data.DataError(f"--weights {package}: a {manifest.get('kind')} package; the "
                             f"copy guard belongs to a generator")
    size = int(manifest.get("args", {}).get("size", 64))
    crops, _ = data.load_crops(dataset, size)
    want = manifest.get("training_data", {}).get("crops_sha256")
    got = hashlib.sha256(crops.tobytes()).hexdigest()
    if want != got:
        raise data.DataError(
            f"--data {dataset}: its {size} px crops (sha256 {got[:16]}...) are not the ones "
            f"{package} was trained on ({str(want)[:16]}...); give the dataset named in its "
            f"manifest's training_data, made by the same `passersby train data` recipe")
    fc = copies.features(crops)
    threshold = round(float(np.percentile(measure.near_copy_distances(crops, seed, fc), 99)), 4)
    blob = save(copies.quantise(fc), metadata={"package": package})
    folder = root / package
    tmp = folder / (copies.FILE + ".tmp")
    tmp.write_bytes(blob)
    os.chmod(tmp, 0o644)
    os.replace(tmp, folder / copies.FILE)
    entry = {"file": copies.FILE, "sha256": hashlib.sha256(blob).hexdigest(),
             "threshold": threshold, "crops": len(crops), "feature": measure.FEATURE,
             "threshold_from": f"99th percentile of crop-to-near-copy distances "
                               f"({measure.NEAR_COPY}; seed {seed})",
             "command": f"passersby train copies --weights {package} --data {_shown(dataset)}"
                        + (f" --seed-train {seed}" if seed else "")}
    manifest = {**manifest, "copy_guard": entry}
    tmp = folder / (weights.MANIFEST_FILE + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, folder / weights.MANIFEST_FILE)
    copies.load(folder, entry)  # what the player will read
    return entry


def _shown(dataset: Path) -> str:
    """The dataset as a command names it: relative to here when below it, else its name."""
    rel = os.path.relpath(dataset.resolve())
    return rel if not rel.startswith("..") else dataset.name
