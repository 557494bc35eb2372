"""Start: process start -> first picture, -> first live keyframe.

    .venv/bin/python bench/start.py [--runs 3] [--size 640x360] [--json]

Spawns a fresh Python process per run (the clock starts just before the spawn)
that does what the player does at start, with its public pieces: import,
Offscreen (EGL) + Pipeline, player.open_session(live=True) (weights, state,
producer thread), the first keyframe, the second, then set_keyframes + one
render + ctx.finish() = the first picture (the player needs two keyframes to
morph). "first live keyframe" is the first keyframe the producer hands over. The
child reports wall-clock times (time.time) of each milestone; medians of --runs.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import numpy as np

import common

CHILD = r"""
import json, sys, tempfile, time
from pathlib import Path
marks = {}
sys.path.insert(0, sys.argv[2])
from passersby.common import config
from passersby.player import session as player
from passersby.player.display import Offscreen
from passersby.player.render.pipeline import Pipeline
marks["imported"] = time.time()
w, h = (int(v) for v in sys.argv[1].split("x"))
cfg = config.load(None, {"stream": {"seed": 11}})
off = Offscreen((w, h))
pipe = Pipeline(off.ctx, cfg.look, (64, 64))
marks["gl_ready"] = time.time()
with tempfile.TemporaryDirectory() as tmp:
    session = player.open_session(cfg, Path(tmp), live=True)
    marks["session_open"] = time.time()
    a = player.next_keyframe(session)
    marks["first_keyframe"] = time.time()
    b = player.next_keyframe(session)
    pipe.set_keyframes(a.image, b.image)
    pipe.render(off.fbo, 0.0, 0.0)
    off.ctx.finish()
    marks["first_picture"] = time.time()
    session.producer.stop()
print(json.dumps(marks))
"""


def one(size: str) -> dict[str, float]:
    t0 = time.time()
    out = subprocess.run([sys.executable, "-c", CHILD, size, str(common.ROOT)],
                         capture_output=True, text=True, check=True)
    marks = json.loads(out.stdout.strip().splitlines()[-1])
    return {k: v - t0 for k, v in marks.items()}


def main() -> None:
    ap = common.parser(__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size", default="640x360")
    args = ap.parse_args()
    runs = [one(args.size) for _ in range(args.runs)]
    rows: list[dict[str, Any]] = [{"milestone": k,
                                   "median_s": float(np.median([r[k] for r in runs])),
                                   "max_s": max(r[k] for r in runs)} for k in runs[0]]
    common.emit("start", rows, args.json, {"runs": args.runs, "size": args.size})


if __name__ == "__main__":
    main()
