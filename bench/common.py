"""Shared helpers of the benchmarks: argument parsing, statistics, table and JSON output.

Benchmarks print figures; they are never timed tests. The machines are noisy, so
each benchmark measures the thing and its reference in the same run, interleaved,
and reports the ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def parser(doc: str | None) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print machine-readable figures")
    return ap


def size_list(text: str) -> list[tuple[int, int]]:
    """'640x360,1280x720' -> [(640, 360), (1280, 720)]."""
    out = []
    for part in text.split(","):
        w, h = (int(v) for v in part.lower().split("x"))
        out.append((w, h))
    return out


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else 0.0


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "machine": platform.machine(),
            "python": platform.python_version(), "load1": round(os.getloadavg()[0], 2)}


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux /proc), 0 elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        return 0.0


def slope_per_hour(ts: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ys over ts (seconds), per hour."""
    if len(ts) < 2:
        return 0.0
    return float(np.polyfit(np.asarray(ts, float), np.asarray(ys, float), 1)[0] * 3600.0)


def emit(name: str, rows: list[dict[str, Any]], as_json: bool,
         extra: dict[str, Any] | None = None) -> None:
    """Print rows as an aligned table, or everything as one JSON object."""
    if as_json:
        print(json.dumps({"bench": name, "machine": machine(), "rows": rows, **(extra or {})},
                         indent=2))
        return
    if rows:
        cols = list(rows[0])
        cells = [[_fmt(r.get(c)) for c in cols] for r in rows]
        widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
        print("  ".join(c.rjust(w) for c, w in zip(cols, widths)))
        for row in cells:
            print("  ".join(v.rjust(w) for v, w in zip(row, widths)))
    for key, value in (extra or {}).items():
        print(f"{key}: {_fmt(value)}")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)
