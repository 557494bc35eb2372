"""Stills and what is made of them: `render --count` (a folder of stills), `curate`
(rate them), `taste` (learn from the ratings), `bookmarks` (list them)."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from passersby.common import config


def render_stills(args: argparse.Namespace, cfg: config.Config) -> int:
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


def add(sub: argparse._SubParsersAction) -> None:
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
