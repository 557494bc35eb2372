"""Flash wear of a playing unit: bytes written and fsyncs per hour of display, by file.

Plays the configured world headless for `--minutes` of display time (keyframes at
`stream.keyframes_per_second`, a simulated clock, no GL) with the player's own writers:
the generator's Keeper (state.json + novelty.bin) and the stage's StillKeeper (last.png,
the refined picture). `--age-days D` first fills the visit counts as D days of play
would (the state document grows with them), so the figure is that of an older unit.
Counts every os.fsync and the bytes of every file made or appended.

The novelty sketches (pictures and sitters) are append-only until full (17 h and 4.5 h
of play), then rewritten whole after each thinning, hours apart: a play of minutes never
sees that. So they are aged apart: `--sketch-days D` runs the two sketches alone, with
the player's own Memory and Saver, from full, for D days of readings at the stream's
rates (codes drawn at random: the bytes do not depend on them), and their figure
replaces the play's appends in the aged total (`MB_per_day`; `MB_per_day_fresh` is
the play's own, sketches not yet full).

    python bench/flash_writes.py --minutes 30 --age-days 30 --sketch-days 3
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import common  # noqa: F401  (puts the project on sys.path)


def main() -> None:
    ap = common.parser(__doc__)
    ap.add_argument("--minutes", type=float, default=30.0, help="display time to play")
    ap.add_argument("--age-days", type=float, default=30.0,
                    help="visit counts of a unit this old (0: a fresh edition)")
    ap.add_argument("--sketch-days", type=float, default=3.0,
                    help="days of readings to run the full novelty sketches for")
    ap.add_argument("--seed", type=lambda s: int(s, 0), default=0xF1A5)
    args = ap.parse_args()
    if not 0 < args.sketch_days < 1e4 or not 0 < args.minutes < 1e6:
        ap.error(f"--sketch-days {args.sketch_days} / --minutes {args.minutes}: give a "
                 "positive number of days / minutes")

    import torch

    from passersby.common import config, novelty, rng, state
    from passersby.generator.chain import Chain
    from passersby.generator.stream import Keeper, Stream
    from passersby.unit import boot

    torch.set_num_threads(1)
    cfg = config.load()
    kps, save_s = cfg.stream.keyframes_per_second, cfg.stream.save_seconds
    chain = Chain.from_config(cfg.weights, "cpu")
    stream = Stream(chain, cfg.traversal, kps, args.seed)
    if args.age_days > 0:  # the visits of D days: cells of latents from the prior
        n = int(args.age_days * 86400 * kps)
        for start in range(0, n, 1 << 16):
            z = rng.normal(args.seed ^ 0xA9E, start, (min(1 << 16, n - start)) * chain.nz)
            cells = stream.novelty.cells(z.reshape(-1, chain.nz))
            np.add.at(stream.novelty.visits, cells, 1)
    folder = Path(tempfile.mkdtemp(prefix="pb-flash-"))
    counts = {"fsync": 0, "bytes": {}}
    real_fsync, real_replace = os.fsync, os.replace
    sizes: dict[str, int] = {}

    def fsync(fd: int) -> None:
        counts["fsync"] += 1
        real_fsync(fd)

    def replace(src: os.PathLike | str, dst: os.PathLike | str) -> None:
        name = Path(dst).name
        if Path(src).name.endswith(".tmp"):  # a file written whole
            counts["bytes"][name] = counts["bytes"].get(name, 0) + Path(src).stat().st_size
            sizes[name] = Path(src).stat().st_size
        real_replace(src, dst)

    os.fsync, os.replace = fsync, replace  # the writers call os.fsync / os.replace
    clock = [0.0]
    boot.time.monotonic = lambda: clock[0]  # type: ignore[attr-defined]
    keeper = Keeper(state.Saver(folder), round(save_s * kps), cfg.stream.queue)
    stills = boot.StillKeeper(folder, boot.still_seconds(save_s))  # as the stage keeps it
    steps = int(args.minutes * 60 * kps)
    sketches = [novelty.PICTURES.file, novelty.SITTERS.file]
    t0 = time.perf_counter()
    appended = dict.fromkeys(sketches, 0)
    for k in range(steps):
        clock[0] = k / kps
        due = clock[0] - stills.last_t >= stills.every_s
        frame = stream.next_frame(lambda step: due)
        before = {f: _size(folder / f) for f in sketches}
        keeper.after_step(stream)
        for f in sketches:
            appended[f] += max(0, _size(folder / f) - before[f])
        if due:
            stills.offer(frame.step, frame.image)
    for f in sketches:
        counts["bytes"][f"{f} (appended)"] = appended[f]
    hours = args.minutes / 60
    per_day = {name: 24 * b / hours for name, b in counts["bytes"].items()}
    fresh = sum(per_day.values())
    fsyncs_fresh = 24 * counts["fsync"] / hours
    os.fsync, os.replace = real_fsync, real_replace
    aged = _aged_sketches(kps, save_s, args.sketch_days, args.seed)
    for f in sketches:  # the play's sketch writes, superseded by the aged sketches'
        per_day.pop(f"{f} (appended)", None)
        per_day.pop(f, None)
    per_day.update({f"{f} (full, aged)": b for f, b in aged["bytes_per_day"].items()})
    rows = [{"file": name, "bytes_per_hour": b / 24, "bytes_per_day": b,
             "last_size": sizes.get(name, aged["size"].get(name.split(" ")[0], ""))}
            for name, b in sorted(per_day.items())]
    common.emit("flash_writes", rows, args.json, {
        "display_minutes": args.minutes, "age_days": args.age_days,
        "sketch_days": args.sketch_days, "save_seconds": save_s,
        "MB_per_day": sum(per_day.values()) / 1e6, "MB_per_day_fresh": fresh / 1e6,
        "sketch_rewrites_per_day": aged["rewrites_per_day"],
        "fsyncs_per_day": fsyncs_fresh, "wall_s": time.perf_counter() - t0})


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _aged_sketches(kps: float, save_s: float, days: float, seed: int) -> dict:
    """Bytes a day written to each novelty sketch once full: both start at capacity (on
    disk), take a reading per keyframe (pictures) and per sitter reading (sitters) for
    `days` of display time, and are saved through state.Saver's own writer every
    `save_s`; appends and whole rewrites are counted from the files' sizes."""
    from passersby.common import novelty
    from passersby.generator.stream import sitter_every

    with tempfile.TemporaryDirectory(prefix="pb-sketch-") as tmp:  # ~22 MB: not left behind
        return _run_sketches(novelty, sitter_every(kps), Path(tmp), kps, save_s, days, seed)


def _run_sketches(novelty, sitter_every: int, folder: Path, kps: float, save_s: float,
                  days: float, seed: int) -> dict:
    gen = np.random.default_rng(seed)
    every = {novelty.PICTURES.file: 1, novelty.SITTERS.file: sitter_every}
    mems = {}
    for layout in (novelty.PICTURES, novelty.SITTERS):
        mem = novelty.Memory(layout=layout)
        n = layout.capacity
        mem.steps[:] = np.arange(-n, 0) * every[layout.file]
        mem.codes[:] = gen.integers(-40, 40, (n, layout.dims), dtype=np.int8)
        mem.n = n
        novelty.save_memory(folder, mem)
        mems[layout.file] = mem
    written = dict.fromkeys(mems, 0)
    rewrites = dict.fromkeys(mems, 0)
    save_every = max(1, round(save_s * kps))
    steps = int(days * 86400 * kps)
    for step in range(steps):
        for name, mem in mems.items():
            if step % every[name] == 0:
                c = gen.integers(-40, 40, mem.layout.dims, dtype=np.int8)
                mem.add(step, c)
        if (step + 1) % save_every == 0:
            for name, mem in mems.items():
                before, whole = _size(folder / name), mem.saved == 0
                novelty.save_memory(folder, mem)
                after = _size(folder / name)
                written[name] += after if whole else after - before
                rewrites[name] += whole
    return {"bytes_per_day": {k: v / days for k, v in written.items()},
            "rewrites_per_day": {k: v / days for k, v in rewrites.items()},
            "size": {k: _size(folder / k) for k in mems}}


if __name__ == "__main__":
    sys.exit(main())
