"""Flash wear of a playing unit: bytes written and fsyncs per hour of display, by file.

Plays the configured world headless for `--minutes` of display time (keyframes at
`stream.keyframes_per_second`, a simulated clock, no GL) with the player's own writers:
the generator's Keeper (state.json + novelty.bin) and the stage's StillKeeper (last.png,
the refined picture). `--age-days D` first fills the visit counts as D days of play
would (the state document grows with them), so the figure is that of an older unit.
Counts every os.fsync and the bytes of every file made or appended.

    python bench/flash_writes.py --minutes 30 --age-days 30
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import common  # noqa: F401  (puts the project on sys.path)


def main() -> None:
    ap = common.parser(__doc__)
    ap.add_argument("--minutes", type=float, default=30.0, help="display time to play")
    ap.add_argument("--age-days", type=float, default=30.0,
                    help="visit counts of a unit this old (0: a fresh edition)")
    ap.add_argument("--seed", type=lambda s: int(s, 0), default=0xF1A5)
    args = ap.parse_args()

    import numpy as np
    import torch

    from passersby.common import config, rng, state
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
    t0 = time.perf_counter()
    appended = 0
    for k in range(steps):
        clock[0] = k / kps
        due = clock[0] - stills.last_t >= stills.every_s
        frame = stream.next_frame(lambda step: due)
        before = (folder / "novelty.bin").stat().st_size if (folder / "novelty.bin").exists() \
            else 0
        keeper.after_step(stream)
        after = (folder / "novelty.bin").stat().st_size if (folder / "novelty.bin").exists() \
            else 0
        if after > before:
            appended += after - before
        if due:
            stills.offer(frame.step, frame.image)
    os.fsync, os.replace = real_fsync, real_replace
    counts["bytes"]["novelty.bin (appended)"] = appended
    hours = args.minutes / 60
    rows = [{"file": name, "bytes_per_hour": b / hours, "bytes_per_day": 24 * b / hours,
             "last_size": sizes.get(name, "")} for name, b in sorted(counts["bytes"].items())]
    total = sum(counts["bytes"].values())
    common.emit("flash_writes", rows, args.json, {
        "display_minutes": args.minutes, "age_days": args.age_days,
        "save_seconds": save_s, "MB_per_day": 24 * total / hours / 1e6,
        "fsyncs_per_hour": counts["fsync"] / hours, "fsyncs_per_day": 24 * counts["fsync"] / hours,
        "wall_s": time.perf_counter() - t0})


if __name__ == "__main__":
    sys.exit(main())
