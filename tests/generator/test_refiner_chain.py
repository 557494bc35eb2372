"""The refiner R in the chain: G's 64 px portrait -> the same portrait at 256 px, shown.

R is switched by `weights.refiner` (default: the package met-refiner, used when it is
there); everything that steers the walk (encoder, novelty, near-black check) reads G's
64 px picture, so the stream is the same with R on or off, only painted larger. Every
test makes its own refiner package in a temporary weights folder (beside links to the
stand-in generator and encoder).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from conftest import default_world, offscreen_or_skip, render_in_fresh_process
from passersby.cli import main as cli
from passersby.common import config, messages, state
from passersby.common.bookmarks import Store
from passersby.common.config import WeightsConfig
from passersby.common.errors import UserError
from passersby.common.frames import Frame, FrameQueue
from passersby.generator import weights
from passersby.generator.chain import Chain, optional_package
from passersby.generator.stream import Stream
from passersby.player import batch
from passersby.player import session as worker

DEFAULT = WeightsConfig().refiner           # "met-refiner"
ARGS = {"nf": 16, "blocks": 2, "nc": 3, "scale": 4, "size": 64}
SIZE = [64, 80]


def make_refiner(root: Path, name: str = DEFAULT) -> dict:
    """A small refiner package whose detail branch is not zero (an untrained Refiner
    is exactly a bilinear upscale), seeded: the same package every time."""
    from passersby.generator.models.refiner import Refiner

    torch.manual_seed(8)
    r = Refiner(**ARGS)
    torch.nn.init.normal_(r.up[-1].weight, std=0.02)
    return weights.save_package(root, name, r.state_dict(),
                                {"kind": "refiner", "arch": "refiner", "args": ARGS,
                                 "licence": "test weights", "fix": "re-make it in the test"})


def link_world(root: Path, weights_root: Path) -> Path:
    """`root` with the default world and the stand-in, generators and encoders, and the
    identity reader (links: no copies)."""
    root.mkdir(parents=True, exist_ok=True)
    for name in dict.fromkeys((*default_world()[:2], "met64", "met64-encoder",
                               "dcgan64-standin", "dcgan64-standin-encoder", "dlib-face-v1")):
        (root / name).symlink_to(weights_root / name, target_is_directory=True)
    return root


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, weights_root: Path) -> Path:
    out = link_world(tmp_path_factory.mktemp("weights"), weights_root)
    make_refiner(out)
    return out


def cfg(root: Path, refiner: str | None = DEFAULT, **stream: object) -> config.Config:
    return config.load(None, {"stream": {"threads": 1, **stream},
                              "weights": {"dir": str(root), "refiner": refiner},
                              "render": {"size": SIZE}})


@pytest.fixture(scope="module")
def chains(root: Path) -> tuple[Chain, Chain]:
    """(with R, without R), both from their config as the generator process loads them."""
    return (Chain.from_config(cfg(root).weights, "cpu"),
            Chain.from_config(cfg(root, None).weights, "cpu"))


# -- the switch ------------------------------------------------------------------------

def test_config_switch_on_and_off(root: Path, chains: tuple[Chain, Chain]) -> None:
    on, off = chains
    assert config.load().weights.refiner == DEFAULT == "met-refiner"
    assert on.refiner is not None and on.refiner_name == DEFAULT and on.shown_size == 256
    assert off.refiner is None and off.refiner_name == "" and off.shown_size == 64
    assert Chain.from_config(cfg(root, "").weights, "cpu").refiner is None   # "" = off too
    z = np.zeros((2, 100), np.float32)
    assert on.generate_batch(z).shape == (2, 256, 256, 3)
    assert off.generate_batch(z).shape == (2, 64, 64, 3)
    assert on.generate(z).shape == (2, 3, 64, 64)        # G alone stays at its own size


def test_refine_is_the_package_at_4x(root: Path, chains: tuple[Chain, Chain]) -> None:
    on, off = chains
    r, _ = weights.load_module(root, DEFAULT, "refiner")
    x = off.generate(np.random.default_rng(1).standard_normal((2, 100)).astype(np.float32))
    with torch.inference_mode():
        want = r(x).clamp(-1, 1)
    got = on.refine(x)
    assert got.shape == (2, 3, 256, 256) and got.dtype == torch.float32
    assert torch.allclose(got, want, atol=1e-5)
    assert off.refine(x) is x                                # no refiner: unchanged


def test_missing_default_warns_once_and_plays_without(tmp_path: Path, weights_root: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    bare = link_world(tmp_path / "w", weights_root)
    with caplog.at_level(logging.WARNING):
        chain = Chain.from_config(cfg(bare).weights, "cpu")
    assert chain.refiner is None and chain.shown_size == 64
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and DEFAULT in warned[0].getMessage()
    assert "weights.refiner: null" in warned[0].getMessage()
    # a manifest without its weights file (a clone: manifests are committed, binaries made)
    make_refiner(bare)
    (bare / DEFAULT / "model.safetensors").unlink()
    assert weights.missing(bare, DEFAULT) and optional_package(bare, DEFAULT, "refiner") is None


def test_a_named_package_that_is_missing_or_corrupt_fails_at_start(
        tmp_path: Path, root: Path, weights_root: Path) -> None:
    with pytest.raises(UserError) as e:
        Chain.from_config(cfg(root, "my-refiner").weights, "cpu")
    msg = str(e.value)
    assert str(root / "my-refiner" / "manifest.json") in msg and "weights.refiner" in msg
    assert "null" in msg
    bad = link_world(tmp_path / "w", weights_root)
    shutil.copytree(root / DEFAULT, bad / "my-refiner")
    f = bad / "my-refiner" / "model.safetensors"
    blob = bytearray(f.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    f.write_bytes(bytes(blob))
    with pytest.raises(UserError, match="model.safetensors.*corrupt.*weights.refiner"):
        Chain.from_config(cfg(bad, "my-refiner").weights, "cpu")
    assert not weights.missing(bad, "my-refiner")  # there but damaged: not "missing"


def test_a_named_missing_refiner_stops_the_generator_process_clearly(root: Path) -> None:
    w = worker.Worker(cfg(root, "no-such-refiner"), None, FrameQueue(4)).start()
    try:
        with pytest.raises(UserError, match="no-such-refiner.*manifest.json"):
            w.wait_ready(120)
    finally:
        w.stop()
    assert not w.alive and w.restarts == 0


def test_weights_verify_reports_the_refiner(root: Path, tmp_path: Path, weights_root: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    def verify(folder: Path, refiner: str | None) -> tuple[int, str]:
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump({"weights": {"dir": str(folder), "refiner": refiner}}))
        rc = cli.main(["weights", "verify", "--config", str(path)])
        return rc, capsys.readouterr().out

    rc, out = verify(root, DEFAULT)
    assert rc == 0 and f"{DEFAULT}" in out and "ok  refiner refiner" in out
    rc, out = verify(link_world(tmp_path / "bare", weights_root), DEFAULT)
    assert rc == 0 and "absent" in out                       # the default, not made yet
    rc, out = verify(root, "no-such-refiner")
    assert rc == 1 and "no-such-refiner" in out


# -- per screen, live tuning ---------------------------------------------------------

def test_screens_override_the_refiner(root: Path, tmp_path: Path) -> None:
    from passersby.player import screens

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"weights": {"dir": str(root)}, "screens": [
        {"monitor": 0}, {"monitor": 1, "seed_offset": 1, "weights": {"refiner": None}}]}))
    p0, p1 = screens.plans(config.load(path), tmp_path)
    assert p0.cfg.weights.refiner == DEFAULT and p1.cfg.weights.refiner is None
    assert p1.cfg.weights.dir == str(root)                   # the rest of `weights:` carries
    assert Chain.from_config(p1.cfg.weights, "cpu").refiner is None
    # the refiner does not make another stream: the same offset would show the same walk
    path.write_text(yaml.safe_dump({"screens": [
        {"monitor": 0}, {"monitor": 1, "weights": {"refiner": None}}]}))
    with pytest.raises(config.ConfigError, match="seed_offset"):
        config.load(path)


def test_tuning_the_refiner_applies_at_the_next_start(tmp_path: Path) -> None:
    from passersby.player import instruments, screens, tune

    path = tmp_path / "c.yaml"
    path.write_text("tune:\n  osc_port: 0\n")
    tuning = tune.Tuning(path)
    inst = instruments.Instruments(tuning, None)
    plan = screens.plans(tuning.cfg, None)[0]
    stage = SimpleNamespace(screens=[SimpleNamespace(plan=plan, window=None, session=None)])
    path.write_text("tune:\n  osc_port: 0\nweights:\n  refiner: null\n")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert tuning.poll() and tuning.cfg.weights.refiner is None
    inst._apply(stage)
    assert "next start" in inst.notice
    assert stage.screens[0].plan.cfg.weights.refiner == DEFAULT   # this run keeps its chain
    inst.close()


# -- the stream: 64 px steers, 256 px is shown ---------------------------------------

def test_the_walk_is_the_same_with_the_refiner_on_or_off(chains: tuple[Chain, Chain]) -> None:
    on, off = chains
    tcfg = config.Config().traversal
    a, b = Stream(on, tcfg, 4.0, seed=0x5EE), Stream(off, tcfg, 4.0, seed=0x5EE)
    fa, fb = [a.next_frame() for _ in range(12)], [b.next_frame() for _ in range(12)]
    assert [f.step for f in fa] == [f.step for f in fb]
    assert all(np.array_equal(x.z, y.z) for x, y in zip(fa, fb))
    assert np.array_equal(a.z, b.z) and a.novelty.to_bytes() == b.novelty.to_bytes()
    assert a.dark == b.dark and a.novelty.repeats == b.novelty.repeats
    assert all(f.image.shape == (256, 256, 3) for f in fa)
    assert all(f.image.shape == (64, 64, 3) for f in fb)
    for f, g in zip(fa, fb):          # shown = R(G(z)); G's picture is the one without R
        x = on.generate(f.z[None])
        assert np.array_equal(f.image, on.show(x)[0])
        assert np.array_equal(g.image, off.show(x)[0])
        # the refined picture is that portrait: downscaled, it is G's picture (roughly)
        small = np.asarray(Image.fromarray(f.image).resize((64, 64), Image.BOX), np.float32)
        assert np.abs(small - g.image).mean() < 12


def test_a_batch_refines_only_the_keyframes_it_shows(chains: tuple[Chain, Chain]) -> None:
    """`render --count` shows one keyframe in K: the generator process picks them
    (messages.Picker) and refines only those; the walk does not notice."""
    on, _ = chains
    tcfg = config.Config().traversal
    a, b = Stream(on, tcfg, 4.0, seed=0x5EF), Stream(on, tcfg, 4.0, seed=0x5EF)
    picker = messages.Picker(every=3, last=-3)
    picked = []
    for _ in range(8):
        f, g = a.next_frame(picker.due), b.next_frame()
        picked.append(picker.take(f.step))
        assert f.step == g.step and np.array_equal(f.z, g.z)
        assert (f.image.shape[0], np.array_equal(f.image, g.image)) == \
            ((256, True) if picked[-1] else (64, False))
    assert picked[0] and sum(picked) >= 2
    # the parent follows the stills it delivers, so a restarted child picks on from there
    w = worker.Worker(cfg(Path("unused")), None, FrameQueue(8), lockstep=True,
                      stills=messages.Picker(5, -5))
    img, z = np.zeros((4, 4, 3), np.uint8), np.zeros(100, np.float32)
    w._deliver(Frame(7, img, z, still=True))
    w._deliver(Frame(9, img, z))
    assert w.stills == messages.Picker(5, 7) and w.last_step == 9 and len(w.queue) == 2


def test_refined_keyframes_cross_the_pipe_at_256(root: Path, tmp_path: Path) -> None:
    q = FrameQueue(4)
    w = worker.Worker(cfg(root, seed=0x77), tmp_path, q, lockstep=True).start()
    try:
        info = w.wait_ready(120)
        frames = [q.get(60) for _ in range(3)]
    finally:
        w.stop()
    assert info.size == 256 and info.refiner == DEFAULT
    assert all(f is not None and f.image.shape == (256, 256, 3) for f in frames)
    assert all(f.image.dtype == np.uint8 and f.image.std() > 5 for f in frames)
    saved = state.load(tmp_path)        # the state holds the walk, not pictures: unchanged
    assert saved is not None and saved.z.shape == (100,)


def test_stills_with_the_refiner_regenerate_pixel_for_pixel(root: Path, tmp_path: Path) -> None:
    offscreen_or_skip((8, 8)).release()
    c = cfg(root, seed=0xBA7C)
    out = tmp_path / "stills"
    r = batch.render_stills(c, out, 2, every=2)
    assert (r.made, r.total) == (2, 2)
    store = Store.in_folder(out)
    bm = store.get("still-0002")
    store.close()
    chain = Chain.from_config(c.weights, "cpu")
    assert chain.shown_size == 256
    back = Stream(chain, c.traversal, c.stream.keyframes_per_second, bm.seed,
                  saved=bm.to_state()).next_frame()
    assert back.step == bm.step and back.image.shape == (256, 256, 3)
    assert np.array_equal(back.image, chain.show(chain.generate(bm.z[None]))[0])
    renderer = batch.StillRenderer(c, chain.shown_size, tuple(SIZE))
    try:
        again = renderer.render(back.image, bm.step).copy()
    finally:
        renderer.release()
    with Image.open(out / "still-0002.png") as im:
        saved = np.asarray(im.convert("RGB"))
    assert np.array_equal(again, saved), np.abs(again.astype(int) - saved).max()


def test_the_player_process_never_imports_torch_with_the_refiner(root: Path,
                                                                 tmp_path: Path) -> None:
    out = render_in_fresh_process(
        f"{{'stream': {{'threads': 1, 'seed': 1}}, 'weights': {{'dir': {str(root)!r}}}, "
        f"'render': {{'seconds': 1.0, 'fps': 4.0, 'size': [64, 80]}}}}", tmp_path / "out",
        log=True)
    assert out.stdout.split() == ["False"] and "256 px keyframes" in out.stderr
    assert len(list((tmp_path / "out").glob("*.png"))) == 4


# -- float16 (the CUDA path's numerics, with CPU float16 kernels) --------------------

def test_float16_refiner_holds_quality(root: Path, chains: tuple[Chain, Chain]) -> None:
    on, _ = chains
    half = Chain.load(root, "dcgan64-standin", None, "cpu", half=True, refiner=DEFAULT)
    assert next(half.refiner.parameters()).dtype == torch.float16
    z = np.stack([np.random.default_rng(k).standard_normal(100) for k in range(4)]).astype(
        np.float32)
    x = on.generate(z)
    a, b = on.refine(x), half.refine(x)
    assert b.dtype == torch.float32                           # callers always get float32
    err = float((a - b).abs().mean())
    max_u8 = int(np.abs(on.show(x).astype(int) - half.show(x)).max())
    assert err < 2e-3 and max_u8 <= 8, (err, max_u8)


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="no CUDA device here: the refiner's float16 CUDA path is unmeasured")
def test_cuda_refiner_runs_float16(root: Path, chains: tuple[Chain, Chain]) -> None:
    on, _ = chains
    gpu = Chain.from_config(cfg(root).weights, "cuda")
    assert gpu.half and next(gpu.refiner.parameters()).dtype == torch.float16
    x = on.generate(np.zeros((2, 100), np.float32))
    diff = np.abs(on.show(x).astype(int) - gpu.show(x.cuda())).max()
    assert diff <= 8, diff


def test_manifest_kind_is_checked(root: Path, tmp_path: Path) -> None:
    """A generator package named as the refiner is refused, naming the key to fix."""
    with pytest.raises(UserError, match="kind is 'generator', expected 'refiner'"):
        Chain.load(root, "dcgan64-standin", None, "cpu", refiner="dcgan64-standin")
    m = json.loads((root / DEFAULT / "manifest.json").read_text())
    assert m["kind"] == "refiner" and m["arch"] == "refiner"


# -- the GL side at the refiner's size --------------------------------------------------

def test_a_256_px_keyframe_passes_the_plain_look_unchanged() -> None:
    """At work size = source size the upsampling pass is the identity (Catmull-Rom at
    texel centres), so a refined keyframe is shown as R made it; into a smaller work
    image (look.work_size 128) it is filtered down without ringing out of range."""
    import dataclasses

    from passersby.common.config import LookConfig
    from passersby.player.render.pipeline import Pipeline

    plain = dataclasses.replace(
        LookConfig(), morph_curve="linear", painterly=0.0, sharpen=0.0, exposure=0.0,
        contrast=1.0, saturation=1.0, warmth=0.0, gamma=1.0, vignette=0.0, grain=0.0,
        aspect=1.0, portrait_height=1.0, frame_width=0.0, detail=0.0)
    key = np.random.default_rng(3).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    off = offscreen_or_skip((256, 256))
    try:
        for work, tol in ((256, 1), (128, None)):
            pipe = Pipeline(off.ctx, dataclasses.replace(plain, work_size=work), (256, 256))
            pipe.set_keyframes(key, key)
            pipe.render(off.fbo, 1.0, 0.0)
            got = off.read().astype(int)
            pipe.release()
            if tol is not None:
                assert np.abs(got - key).max() <= tol
            else:                       # the picture, softened: close on average
                assert abs(got.mean() - key.mean()) < 2 and got.std() > 20
    finally:
        off.release()
