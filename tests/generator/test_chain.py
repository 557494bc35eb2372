from __future__ import annotations

import numpy as np
import torch

from passersby.common import rng
from passersby.common.config import TransformConfig
from passersby.generator.chain import to_uint8
from passersby.generator.traversal import transform


def test_shapes_ranges_and_determinism(chain) -> None:  # type: ignore[no-untyped-def]
    z = np.stack([rng.normal(1, k, chain.nz) for k in range(3)])
    x = chain.generate(z)
    assert x.shape == (3, 3, 64, 64) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    assert torch.equal(x, chain.generate(z))
    zh = chain.encode(x)
    assert zh.shape == (3, chain.nz) and zh.dtype == np.float32
    img = to_uint8(x)
    assert img.shape == (3, 64, 64, 3) and img.dtype == np.uint8 and img.std() > 10


def test_encoder_reads_pictures_back_better_than_chance(chain) -> None:  # type: ignore[no-untyped-def]
    z = np.stack([rng.normal(2, k, chain.nz) for k in range(64)])
    x = chain.generate(z)
    rec = chain.generate(chain.encode(x))
    err = (rec - x).pow(2).mean().item()
    other = (x.roll(1, 0) - x).pow(2).mean().item()
    assert err < 0.35 * other, (err, other)


def test_counter_based_noise_is_a_function_of_seed_and_step() -> None:
    a = rng.normal(7, 100, 100)
    assert np.array_equal(a, rng.normal(7, 100, 100))
    assert not np.array_equal(a, rng.normal(7, 101, 100))
    assert not np.array_equal(a, rng.normal(8, 100, 100))
    assert not np.array_equal(rng.normal(1 << 100, 5, 10), rng.normal(1 << 101, 5, 10))
    assert abs(float(np.std(rng.normal(3, 0, 100_000))) - 1) < 0.02


def test_transform_identity_and_effects() -> None:
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    assert torch.allclose(transform.apply(x, TransformConfig(zoom=1.0)), x, atol=1e-5)
    assert torch.equal(transform.apply(x, TransformConfig(zoom=1.0, mirror=True)), x.flip(-1))
    blurred = transform.apply(x, TransformConfig(zoom=1.0, blur=1.5))
    assert blurred.shape == x.shape and blurred.std() < 0.6 * x.std()
    zoomed = transform.apply(x, TransformConfig(zoom=2.0))
    assert zoomed.shape == x.shape and not torch.allclose(zoomed, x)
