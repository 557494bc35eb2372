"""The stream on screen and offscreen: `run`, `explore`, and `render` to a video (a
folder of stills, `render --count`, is cli/stills.py)."""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from passersby.cli import args as a
from passersby.common import config


def cmd_run(args: argparse.Namespace) -> int:
    from passersby.common import state
    from passersby.player import stage

    cfg = a.load_config(args)
    folder = Path(args.state) if args.state else state.default_dir()
    tuning = None
    if args.tune:
        from passersby.player import tune

        tuning = tune.Tuning(Path(args.config) if args.config else None, a.overrides(args))
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
    over = a.overrides(args)
    start = None
    if args.bookmark:
        start = bookmarks.Store.in_folder(root).get(args.bookmark)
        over = config.layered(over, {"stream": {"seed": start.seed}})
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
    cfg = a.load_config(args, render)
    if args.count is not None or args.every is not None:
        from passersby.cli import stills

        return stills.render_stills(args, cfg)
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


def add(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("run", help="the endless stream in a fullscreen window")
    a.add_common(sp)
    sp.add_argument("--windowed", action="store_true", help="a window instead of fullscreen")
    sp.add_argument("--tune", action="store_true",
                    help="the artist's session: live config and shader edits, overlay (H), "
                         "keys, captures (C), recording (R), OSC on localhost")
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("explore", help="start still at a bookmark and steer by keys (1-9, "
                                        "[ ], P, B, C)")
    a.add_common(sp)
    sp.add_argument("--bookmark", help="a bookmark's name (`passersby bookmarks` lists them)")
    sp.add_argument("--windowed", action="store_true", help="a window instead of fullscreen")
    sp.set_defaults(func=cmd_explore)

    sp = sub.add_parser("render", help="the stream offscreen, to an MP4 or a folder of PNGs")
    a.add_common(sp)
    sp.add_argument("--seconds", type=a.number)
    sp.add_argument("--fps", type=a.number)
    sp.add_argument("--size", type=a.size, help="WxH, e.g. 1280x720")
    sp.add_argument("--out", help="PATH.mp4, or a folder for numbered PNGs "
                                  "(default renders/passersby-<time>.mp4); with --count "
                                  "the folder of stills")
    sp.add_argument("--count", type=int, help="render N distinct stills (PNG + bookmark) "
                                              "into --out instead of a video; re-run to resume")
    sp.add_argument("--every", type=int, help="with --count: a still every K keyframes "
                                              "(default: the likeness window)")
    sp.set_defaults(func=cmd_render)
