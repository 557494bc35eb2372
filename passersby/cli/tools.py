"""The tools beside the player: `audit` (measure the stream headless), `weights`
(fetch, verify) and `doctor` (check the machine; cli/doctor.py)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from passersby.cli import args as a


def cmd_audit(args: argparse.Namespace) -> int:
    import torch

    from passersby.common import rng
    from passersby.generator import audit
    from passersby.generator.chain import Chain, optional_package
    from passersby.generator.process import threads
    from passersby.generator.weights import weights_dir

    cfg = a.load_config(args)
    audit.require_extra()  # before the chain loads: a player-only install says what to add
    torch.set_num_threads(threads(cfg))  # as the player's generator process does
    # no refiner: the audit measures the 64 px world that steers the walk (the same with
    # the refiner on or off; see stream.py)
    root = weights_dir(cfg.weights.dir)
    chain = Chain.load(root, cfg.weights.generator, cfg.weights.encoder or None,
                       cfg.stream.device,
                       identity=optional_package(root, cfg.weights.identity, "identity"))
    seed = cfg.stream.seed if cfg.stream.seed is not None else rng.new_seed()

    def progress(i: int, n: int) -> None:
        print(f"\raudit {i}/{n} steps", end="", file=sys.stderr, flush=True)

    figures = audit.run(chain, cfg, args.steps, seed, face_every=args.face_every,
                        restart_every=args.restart_every,
                        sheet=Path(args.sheet) if args.sheet else None,
                        state_dir=Path(args.state) if args.state else None,
                        progress=None if args.json else progress)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(file=sys.stderr)
        for k, v in figures.items():
            print(f"{k:22s} {v}")
    return 0


def cmd_weights(args: argparse.Namespace) -> int:
    from passersby.generator import weights

    cfg = a.load_config(args)
    root = weights.weights_dir(cfg.weights.dir)
    if args.action == "fetch":
        m = weights.fetch_standin(root)
        print(f"ok  {root / m['name']} ({m['tensors_sha256'][:16]}...)")
        print(f"    licence: {m['licence']}")
        return 0
    w = cfg.weights
    names = args.names or [n for n in (w.generator, w.encoder, w.refiner, w.identity) if n]
    ok = True
    for key in weights.OPTIONAL:
        name = getattr(w, key)
        if not args.names and weights.optional_absent(root, name, key) and name in names:
            names.remove(name)
            print(f"{name:28s} absent: the player plays without {weights.OPTIONAL[key][0]} "
                  f"({weights.make_default(key)})")
    for name, good, msg, _ in weights.verify(root, names):
        print(f"{name:28s} {msg}")
        ok &= good
    return 0 if ok else 1


def cmd_doctor(args: argparse.Namespace) -> int:
    from passersby.cli import doctor

    return doctor.main(args.config, args.state, args.json)


def add(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("audit", help="measure the stream headless (no GL)")
    a.add_common(sp)
    sp.add_argument("--steps", type=int, default=2000)
    sp.add_argument("--restart-every", type=int, default=0,
                    help="drop the stream without saving and resume it from disk every K "
                         "keyframes, as a power cut would")
    sp.add_argument("--face-every", type=int, default=5, help="face-check every Nth keyframe")
    sp.add_argument("--sheet", help="write the closest pairs side by side to this PNG (and "
                    "the closest sitters to PNG's name with .sitters before the suffix)")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_audit)

    sp = sub.add_parser("weights", help="obtain (fetch) or check (verify) weights")
    a.add_common(sp, state=False)
    sp.add_argument("action", choices=["fetch", "verify"],
                    help="fetch: download and convert the stand-in world dcgan64-standin; "
                         "verify: check packages against their manifests")
    sp.add_argument("names", nargs="*", help="verify: these packages (default: the "
                    "configured generator, encoder, refiner and identity reader)")
    sp.set_defaults(func=cmd_weights)


def add_doctor(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("doctor", help="check torch/GPU, GL, displays, weights, state, disk, "
                                       "config; exit 1 when a check fails")
    sp.add_argument("--config", help="YAML file to check (default: $PASSERSBY_CONFIG, else "
                                     "/etc/passersby/config.yaml when it exists)")
    sp.add_argument("--state", help="state folder (default: as `run` picks it)")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_doctor)
