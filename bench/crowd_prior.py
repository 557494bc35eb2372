"""Where is the crowd lost: in G, or in the prior the shipped G samples?

    .venv/bin/python bench/crowd_prior.py weights/crowd64t/carried/checkpoint-0002550.safetensors

A training checkpoint of a `--imle-learn` run holds G's average and each crop's learned
latent. The shipped G samples z ~ N(0, I) through L, the Cholesky factor of those
latents' spread (train/generator.py fold_prior). This reads the identity spread (the
sitter memory's reader on its fixed chip: mean pairwise descriptor distance, share of
pairs under dlib's "same person" 0.6) of G at N(0, I), at z x t (truncation), at the
crops' own latents, at those latents blurred toward the prior (a mixture sampler), and at
blends of two crops' latents; beside each, the share of its pictures farther than the
memorisation threshold from every crop and mirror (train/measure.py): a sampler nearer the
crops' latents widens the crowd only as far as it does not redraw the crops; and the
pictures' texture over the crops' (mean |Laplacian|): below 1 a blur, which the reader
takes for more sitters. If G at the crops' latents is no more varied than at N(0, I), G
itself is the limit. Prints a table (or --json)."""
from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, parser  # noqa: E402


def main() -> int:
    ap = parser(__doc__)
    ap.add_argument("checkpoint", type=Path, help="a checkpoint-*.safetensors of an "
                    "--imle-learn run (weights/<run>/train/ or carried/)")
    ap.add_argument("--samples", type=int, default=400)
    ap.add_argument("--crops", type=Path, default=Path("datasets/aligned/64"),
                    help="the crops' folder, read for the scale (skipped when absent)")
    args = ap.parse_args()

    import json

    import torch
    from safetensors.torch import load_file

    from passersby.generator import models
    from passersby.generator.chain import to_uint8
    from passersby.generator.identity import Reader
    from passersby.generator.weights import weights_dir
    from passersby.train.generator import ARCHS, Recipe, shipped, spread
    from passersby.train.measure import memorisation, texture

    torch.set_num_threads(1)
    t = load_file(str(args.checkpoint))
    if "imle.z" not in t:
        raise SystemExit(f"{args.checkpoint}: holds no learned latents (imle.z); give a "
                         f"checkpoint of a --imle-learn run")
    z = t["imle.z"]
    record = args.checkpoint.with_suffix(".json")  # kept steps: checkpoint-N.json beside
    if not record.exists():
        record = args.checkpoint.parent / "checkpoint.json"
    recipe = json.loads(record.read_text(encoding="utf-8"))["recipe"]
    g = models.build(ARCHS[recipe["g_arch"]], {"nz": z.shape[1], "ngf": recipe["ngf"],
                                               "nc": 3, "size": recipe["size"]})
    g.load_state_dict({k[4:]: v for k, v in t.items() if k.startswith("ema.")})
    ship = shipped(types.SimpleNamespace(ema=g, imle_z=z), Recipe(imle_learn=0.03, imle=50.0))
    u_crops = torch.linalg.solve_triangular(spread(z).float(), z.T, upper=False).T
    reader = Reader.load(weights_dir(None))

    files = sorted(args.crops.glob("*.png"))
    crops = None
    if files:
        from PIL import Image
        crops = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])

    def spread_of(pictures: np.ndarray, copies: bool = True) -> tuple[float, ...]:
        d = reader.read(pictures)
        pairs = np.linalg.norm(d[:, None] - d[None], axis=2)[np.triu_indices(len(d), 1)]
        kept = (memorisation(pictures, crops)["fraction_farther"]
                if copies and crops is not None else float("nan"))
        fine = texture(pictures, crops)["ratio"] if crops is not None else float("nan")
        return float(pairs.mean()), float((pairs < 0.6).mean()), kept, fine

    def of(u: torch.Tensor) -> tuple[float, ...]:
        with torch.no_grad():
            return spread_of(np.concatenate([to_uint8(ship(u[i:i + 100]))
                                             for i in range(0, len(u), 100)]))

    def noisy(u: torch.Tensor, s: float) -> torch.Tensor:
        return (u + s * torch.randn(u.shape, generator=gen)) / (1 + s * s) ** 0.5

    gen = torch.Generator().manual_seed(5)
    n = min(args.samples, len(z))
    pick = u_crops[torch.randperm(len(z), generator=gen)[:n]]
    other = u_crops[torch.randperm(len(z), generator=gen)[:n]]
    rows = {"G at z ~ N(0, I) (what ships)": of(torch.randn(n, z.shape[1], generator=gen)),
            "G at the crops' own latents": of(pick)}
    e = torch.randn(n, z.shape[1], generator=gen)
    for t in (0.6, 0.8):                   # truncation (z x t): a blur the reader calls distinct
        rows[f"G at {t} x z, z ~ N(0, I)"] = of(t * e)
    for s in (0.3, 0.5, 0.7, 1.0):
        rows[f"G at the latents + {s} N(0, I)"] = of(noisy(pick, s))
    t = torch.rand(n, 1, generator=gen) * 0.5 + 0.25          # blends of two sitters
    blend = t * pick + (1 - t) * other
    blend = blend / blend.norm(dim=1, keepdim=True) * pick.norm(dim=1, keepdim=True)
    rows["G at blends of two + 0.5 N(0, I)"] = of(noisy(blend, 0.5))
    if crops is not None:
        rows["the crops themselves"] = spread_of(crops[:n], copies=False)
    if args.json:
        print(json.dumps({"checkpoint": str(args.checkpoint), "samples": n,
                          "rows": {k: {"mean": round(m, 4), "same_share": round(s, 4),
                                       "not_memorised": None if c != c else round(c, 4),
                                       "texture": None if f != f else round(f, 4)}
                                   for k, (m, s, c, f) in rows.items()}, "machine": machine()},
                         indent=2))
        return 0
    print(f"{args.checkpoint.name}: {n} pictures a row; identity descriptor (fixed chip)")
    print(f"{'':36s} {'mean distance':>13s} {'pairs < 0.6':>11s} {'not memorised':>13s} "
          f"{'texture':>7s}")
    for k, (m, s, c, f) in rows.items():
        print(f"{k:36s} {m:13.3f} {s:11.3f} {'' if c != c else f'{c:13.3f}':>13s} {f:7.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
