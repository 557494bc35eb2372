"""Where is the crowd lost: in G, or in the prior the shipped G samples?

    .venv/bin/python bench/crowd_prior.py weights/crowd64t/carried/checkpoint-0002550.safetensors

A training checkpoint of a `--imle-learn` run holds G's average and each crop's learned
latent. The shipped G samples z ~ N(0, I) through L, the Cholesky factor of those
latents' spread (train/generator.py fold_prior). This reads the identity spread (the
sitter memory's reader on its fixed chip: mean pairwise descriptor distance, share of
pairs under dlib's "same person" 0.6) of G at N(0, I), at the crops' own latents, and
at those latents blurred toward the prior: if G at the crops' latents is as varied as
the crops, a sampler nearer the latents (a mixture) would widen the crowd; if not, G
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

    def spread_of(pictures: np.ndarray) -> tuple[float, float]:
        d = reader.read(pictures)
        pairs = np.linalg.norm(d[:, None] - d[None], axis=2)[np.triu_indices(len(d), 1)]
        return float(pairs.mean()), float((pairs < 0.6).mean())

    def of(u: torch.Tensor) -> tuple[float, float]:
        with torch.no_grad():
            return spread_of(np.concatenate([to_uint8(ship(u[i:i + 100]))
                                             for i in range(0, len(u), 100)]))

    gen = torch.Generator().manual_seed(5)
    n = min(args.samples, len(z))
    pick = u_crops[torch.randperm(len(z), generator=gen)[:n]]
    rows = {"G at z ~ N(0, I) (what ships)": of(torch.randn(n, z.shape[1], generator=gen)),
            "G at the crops' own latents": of(pick)}
    for s in (0.3, 0.7):
        noise = torch.randn(n, z.shape[1], generator=gen)
        rows[f"G at the latents + {s} N(0, I)"] = of((pick + s * noise) / (1 + s * s) ** 0.5)
    files = sorted(args.crops.glob("*.png"))[:n]
    if files:
        from PIL import Image
        rows["the crops themselves"] = spread_of(np.stack([np.asarray(
            Image.open(f).convert("RGB")) for f in files]))
    if args.json:
        print(json.dumps({"checkpoint": str(args.checkpoint), "samples": n,
                          "rows": {k: {"mean": round(m, 4), "same_share": round(s, 4)}
                                   for k, (m, s) in rows.items()}, "machine": machine()},
                         indent=2))
        return 0
    print(f"{args.checkpoint.name}: {n} pictures a row; identity descriptor (fixed chip)")
    print(f"{'':36s} {'mean distance':>13s} {'pairs < 0.6':>11s}")
    for k, (m, s) in rows.items():
        print(f"{k:36s} {m:13.3f} {s:11.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
