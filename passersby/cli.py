"""Command line: passersby run | render | audit | weights | train."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from passersby import config

log = logging.getLogger("passersby")


def _size(text: str) -> list[int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} is not WxH, e.g. 1280x720") from None
    return [w, h]


def _seed(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed {text!r} is not an integer (decimal or 0x-hex)"
                                         ) from None


def _load_config(args: argparse.Namespace, render: dict | None = None) -> config.Config:
    over: dict = {}
    if getattr(args, "seed", None) is not None:
        over["stream"] = {"seed": args.seed}
    if render:
        over["render"] = render
    return config.load(args.config, over)


def cmd_run(args: argparse.Namespace) -> int:
    from passersby import player, state

    cfg = _load_config(args)
    folder = Path(args.state) if args.state else state.default_dir()
    result = player.run_window(cfg, folder, args.windowed)
    print(f"played {result['frames']} frames in {result['seconds']:.1f} s "
          f"({result['frames'] / max(result['seconds'], 1e-9):.1f} fps), "
          f"now at step {result['step']}; state in {folder}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from passersby import player

    render = {k: v for k, v in (("seconds", args.seconds), ("fps", args.fps),
                                ("size", args.size)) if v is not None}
    cfg = _load_config(args, render)
    out = Path(args.out) if args.out else \
        Path("renders") / time.strftime("passersby-%Y%m%d-%H%M%S.mp4")
    started = time.perf_counter()

    def progress(i: int, n: int) -> None:
        if i == n or i % max(1, n // 20) == 0:
            el = time.perf_counter() - started
            print(f"\rrendering {i}/{n} frames ({i / el:.1f} fps)", end="", file=sys.stderr,
                  flush=True)

    path = player.render_offscreen(cfg, out, Path(args.state) if args.state else None, progress)
    el = time.perf_counter() - started
    print(file=sys.stderr)
    w, h = cfg.render.size
    print(f"wrote {path.resolve()} ({cfg.render.seconds:g} s at {cfg.render.fps:g} fps, {w}x{h}; "
          f"rendered in {el:.1f} s)")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from passersby import audit, rng
    from passersby.chain import Chain
    from passersby.weights import weights_dir

    import os

    import torch

    cfg = _load_config(args)
    # batch 1 gains little from threads, and oversubscribed OpenMP threads spin
    torch.set_num_threads(cfg.stream.threads or max(1, (os.cpu_count() or 2) // 2))
    chain = Chain.load(weights_dir(cfg.weights.dir), cfg.weights.generator,
                       cfg.weights.encoder or None, cfg.stream.device)
    seed = cfg.stream.seed if cfg.stream.seed is not None else rng.new_seed()

    def progress(i: int, n: int) -> None:
        print(f"\raudit {i}/{n} steps", end="", file=sys.stderr, flush=True)

    figures = audit.run(chain, cfg, args.steps, seed, face_every=args.face_every,
                        restart_every=args.restart_every,
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
    from passersby import weights

    cfg = _load_config(args)
    root = weights.weights_dir(cfg.weights.dir)
    if args.action == "fetch":
        m = weights.fetch_standin(root)
        print(f"ok  {root / m['name']} ({m['tensors_sha256'][:16]}...)")
        print(f"    licence: {m['licence']}")
        return 0
    names = [n for n in (cfg.weights.generator, cfg.weights.encoder) if n]
    ok = True
    for name, good, msg in weights.verify(root, names):
        print(f"{name:28s} {msg}")
        ok &= good
    return 0 if ok else 1


def cmd_train(args: argparse.Namespace) -> int:
    from passersby import weights
    from passersby.train.encoder import Recipe, train

    cfg = _load_config(args)
    root = weights.weights_dir(cfg.weights.dir)
    gen = args.weights or cfg.weights.generator
    out = args.out or f"{gen}-encoder"
    m = train(root, gen, out, Recipe(minutes=args.minutes, seed=args.seed_train))
    print(f"wrote {root / out} ({m['steps']} steps; held-out {m['figures']})")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from passersby import doctor

    return doctor.main(args.config, args.state, args.json)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="passersby", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser, state: bool = True) -> None:
        sp.add_argument("--config", help="YAML file over the defaults (see passersby/defaults.yaml)")
        sp.add_argument("--seed", "--edition-seed", dest="seed", type=_seed,
                        help="edition seed (overrides config and state)")
        if state:
            sp.add_argument("--state", help="state folder (edition, place in the stream)")

    sp = sub.add_parser("run", help="the endless stream in a fullscreen window")
    common(sp)
    sp.add_argument("--windowed", action="store_true", help="a window instead of fullscreen")
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("render", help="the stream offscreen, to an MP4 or a folder of PNGs")
    common(sp)
    sp.add_argument("--seconds", type=float)
    sp.add_argument("--fps", type=float)
    sp.add_argument("--size", type=_size, help="WxH, e.g. 1280x720")
    sp.add_argument("--out", help="PATH.mp4, or a folder for numbered PNGs "
                                  "(default renders/passersby-<time>.mp4)")
    sp.set_defaults(func=cmd_render)

    sp = sub.add_parser("audit", help="measure the stream headless (no GL)")
    common(sp)
    sp.add_argument("--steps", type=int, default=2000)
    sp.add_argument("--restart-every", type=int, default=0,
                    help="drop the stream without saving and resume it from disk every K "
                         "keyframes, as a power cut would")
    sp.add_argument("--face-every", type=int, default=5, help="face-check every Nth keyframe")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_audit)

    sp = sub.add_parser("weights", help="obtain (fetch) or check (verify) weights")
    common(sp, state=False)
    sp.add_argument("action", choices=["fetch", "verify"])
    sp.set_defaults(func=cmd_weights)

    sp = sub.add_parser("train", help="train networks")
    common(sp, state=False)
    sp.add_argument("what", choices=["encoder"])
    sp.add_argument("--weights", help="generator package (default: weights.generator)")
    sp.add_argument("--out", help="package name to write (default: <generator>-encoder)")
    sp.add_argument("--minutes", type=float, default=8.0)
    sp.add_argument("--seed-train", type=int, default=0, help="training seed")
    sp.set_defaults(func=cmd_train)

    sp = sub.add_parser("doctor", help="check torch/GPU, GL, displays, weights, state, disk, "
                                       "config; exit 1 when a check fails")
    sp.add_argument("--config", help="YAML file to check (default: $PASSERSBY_CONFIG, else "
                                     "/etc/passersby/config.yaml when it exists)")
    sp.add_argument("--state", help="state folder (default: as `run` picks it)")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_doctor)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from passersby.errors import USER_ERRORS

    try:
        return int(args.func(args))
    except USER_ERRORS as e:
        print(f"passersby: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
