"""Alignment from dlib's 5 points, calibrated against the 68-point model it replaced.

    .venv/bin/python bench/align5.py [--images DIR] [--cache FILE.npz] [--sheet FILE.png]
                                     [--seed 0] [--json]

train/align.py builds FFHQ's square from dlib's 5-point predictor (CC0) instead of the
68-point one (trained on iBUG 300-W: non-commercial). The square needs the eye centres
(68 points: the mean of 6 points an eye; 5 points: two corners) and the mouth (the 5
points have none). This bench runs both predictors on the same face box (align.face_box:
HOG, else the Haar box) for every painting, fits align.py's constants (EYE_SCALE,
MOUTH_SIDEWAYS, MOUTH_NOSE, MOUTH_DOWN) by least squares on a seeded half of the paintings and
prints, on the other half:
- the two squares' difference: the largest corner displacement of each face in pixels
  of a 64 px crop, the rotation difference in degrees, the side's ratio - 1 (median,
  pct95, max of the magnitudes), with align.py's constants; with the eye correction
  left out (eye centres = corner means); with one nose factor for both coordinates
  (mouth = eyes + a x (nose - eyes) + b x perp: worse, so align.py has one factor
  sideways and one downward); with the 68-point mouth (what estimating the mouth costs:
  most of it); and, for scale, the 68-point square against itself on the mirrored
  painting (the same box mirrored: that predictor's own jitter);
- the outcomes (aligned, or rejected by data.py's reasons, judged from the points as
  data.py judges them) that change.
The 68-point model is loaded here only to measure; nothing in passersby/ loads it.
--cache keeps the landmarks of a run (the detector is the slow part); --sheet writes a
contact sheet of held-out crops, 5 points beside 68 points (24 drawn at random, then
the 8 that move most).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, machine, parser, pct  # noqa: E402
from passersby.train import align, data  # noqa: E402

MET = ROOT.parent / "shared" / "datasets" / "met-portraits" / "images"
MIN_FACE, MAX_OUTSIDE = data.CropRecipe().min_face, data.CropRecipe().max_outside


def points(shape, n: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.array([(shape.part(i).x, shape.part(i).y) for i in range(n)], np.float64)


def measure(files: list[Path]) -> dict[str, np.ndarray]:
    """Both predictors' points on each painting's face box (NaN where there is none)."""
    import dlib

    folder = align.model_folder()
    p5 = align._dlib()["predictor"]
    p68 = dlib.shape_predictor(str(folder / "shape_predictor_68_face_landmarks.dat"))
    n = len(files)
    out = {"lm5": np.full((n, 5, 2), np.nan), "lm68": np.full((n, 68, 2), np.nan),
           "lm68m": np.full((n, 68, 2), np.nan), "size": np.zeros((n, 2)),
           "detector": np.array([""] * n, dtype="<U4"),
           "names": np.array([f.name for f in files])}
    for i, f in enumerate(files):
        rgb = data.read_rgb(f)
        assert rgb is not None, f
        h, w = rgb.shape[:2]
        out["size"][i] = w, h
        found = align.face_box(rgb, lambda: data.largest_face(rgb, MIN_FACE))  # noqa: B023
        if found is not None:
            rect, out["detector"][i] = found
            rgb = np.ascontiguousarray(rgb)
            out["lm5"][i] = points(p5(rgb, rect), 5)
            out["lm68"][i] = points(p68(rgb, rect), 68)
            mirrored = dlib.rectangle(w - 1 - rect.right(), rect.top(), w - 1 - rect.left(),
                                      rect.bottom())
            m = points(p68(np.ascontiguousarray(rgb[:, ::-1]), mirrored), 68)
            m[:, 0] = w - 1 - m[:, 0]
            out["lm68m"][i] = m[MIRROR68]
        if i % 100 == 0:
            print(f"  {i}/{n}", file=sys.stderr, flush=True)
    return out


# the 68 points' left-right counterparts (jaw, brows, nose, eyes, lips)
MIRROR68 = np.array(list(range(16, -1, -1)) + list(range(26, 16, -1)) + list(range(27, 31))
                    + [35, 34, 33, 32, 31] + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
                    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]
                    + [64, 63, 62, 61, 60, 67, 66, 65])


def face68(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The former recipe's eye centres and mouth centre."""
    return lm[36:42].mean(0), lm[42:48].mean(0), (lm[48] + lm[54]) / 2


def frame(lm5: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[N,5,2] -> origin, e, perp ([N,2] each), as align._frame."""
    left, right = lm5[:, list(align.EYE_L)].mean(1), lm5[:, list(align.EYE_R)].mean(1)
    e = right - left
    return (left + right) / 2, e, np.stack([-e[:, 1], e[:, 0]], 1)


def in_frame(p: np.ndarray, o: np.ndarray, e: np.ndarray, perp: np.ndarray) -> np.ndarray:
    """Points [N,2] -> their coordinates along e and perp, in units of |e|."""
    d, ll = p - o, (e ** 2).sum(1)
    return np.stack([(d * e).sum(1) / ll, (d * perp).sum(1) / ll], 1)


def fit(lm5: np.ndarray, lm68: np.ndarray) -> dict[str, float]:
    """Least squares in the 5-point eyes' frame (so that each face counts alike):
    align.py's constants, then, for the record, what it leaves out (the eye centres'
    offsets and turn; one nose factor for both coordinates: a x nose + b x perp)."""
    o, e, perp = frame(lm5)
    el, er, mo = (np.stack(v) for v in zip(*(face68(x) for x in lm68)))
    eye_avg = in_frame((el + er) / 2, o, e, perp)
    e2e = in_frame(er, o, e, perp) - in_frame(el, o, e, perp)
    nose, m = in_frame(lm5[:, align.NOSE], o, e, perp), in_frame(mo, o, e, perp)
    sideways = float(nose[:, 0] @ m[:, 0] / (nose[:, 0] @ nose[:, 0]))
    (down_nose, down), *_ = np.linalg.lstsq(np.stack([nose[:, 1], np.ones(len(m))], 1),
                                            m[:, 1], rcond=None)
    one = np.concatenate([np.stack([nose[:, 0], np.zeros(len(m))], 1),
                          np.stack([nose[:, 1], np.ones(len(m))], 1)])
    (a, b), *_ = np.linalg.lstsq(one, np.concatenate([m[:, 0], m[:, 1]]), rcond=None)
    return {"EYE_SCALE": float(e2e[:, 0].mean()), "MOUTH_SIDEWAYS": sideways,
            "MOUTH_NOSE": float(down_nose), "MOUTH_DOWN": float(down),
            "eye_down (left out)": float(eye_avg[:, 1].mean()),
            "eye_across (left out)": float(eye_avg[:, 0].mean()),
            "eye_turn (left out)": float(e2e[:, 1].mean()),
            "mouth_across (left out)": float((m[:, 0] - sideways * nose[:, 0]).mean()),
            "one nose factor a": float(a), "one nose factor b": float(b)}


def face5(lm5: np.ndarray, c: dict[str, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """align.eyes and align.mouth with the constants c."""
    o, e, perp = (v[0] for v in frame(lm5[None]))
    u, v = in_frame(lm5[None, align.NOSE], o[None], e[None], perp[None])[0]
    return (o - c["EYE_SCALE"] * e / 2, o + c["EYE_SCALE"] * e / 2,
            o + c["MOUTH_SIDEWAYS"] * u * e + (c["MOUTH_NOSE"] * v + c["MOUTH_DOWN"]) * perp)


def project(lm5: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What train/align.py makes of the 5 points (its rounded constants)."""
    return (*align.eyes(lm5), align.mouth(lm5))


def outcome(face: tuple[np.ndarray, np.ndarray, np.ndarray] | None, size: np.ndarray) -> str:
    """data._aligned_crop's verdict on these eye and mouth centres."""
    if face is None:
        return "no_face"
    eye_l, eye_r, mouth = face
    if np.hypot(*(eye_r - eye_l)) < MIN_FACE / 2:
        return "too_small"
    if not align.plausible_face(*face):
        return "implausible_landmarks"
    if align.outside(align.square(*face), int(size[0]), int(size[1])) > MAX_OUTSIDE:
        return "mostly_outside"
    return "aligned"


def difference(q: np.ndarray, ref: np.ndarray) -> tuple[float, float, float]:
    """(largest corner shift in pixels of a 64 px crop of `ref`, rotation in degrees,
    side ratio - 1) of square q against square ref."""
    side = np.hypot(*(ref[3] - ref[0]))
    shift = float(np.hypot(*(q - ref).T).max() * 64 / side)
    ang = lambda s: np.degrees(np.arctan2(*(s[3] - s[0])[::-1]))  # noqa: E731
    turn = float((ang(q) - ang(ref) + 180) % 360 - 180)
    return shift, turn, float(np.hypot(*(q[3] - q[0])) / side - 1)


def stats(values: list[float]) -> dict[str, float]:
    v = np.abs(np.asarray(values))
    return {"median": round(pct(v, 50), 3), "pct95": round(pct(v, 95), 3),
            "max": round(float(v.max()), 3)}


def sheet(files: list[Path], picks: list[int], got: dict, path: Path,
          labels: list[str]) -> None:
    """Pairs of 128 px crops, 5 points (align.py) on the left, 68 points on the right;
    ticks on the borders mark the crop's middle."""
    from PIL import Image, ImageDraw

    tiles = []
    for i, label in zip(picks, labels):
        rgb = data.read_rgb(files[i])
        pair = [data.resize(align.crop_of(rgb, align.square(*face)), 128)
                for face in (project(got["lm5"][i]), face68(got["lm68"][i]))]
        pair = [p.copy() for p in pair]
        for p in pair:
            p[:6, 63:65] = p[-6:, 63:65] = p[63:65, :6] = p[63:65, -6:] = (255, 255, 255)
        tile = Image.fromarray(np.concatenate([*pair[:1], np.full((128, 2, 3), 255, np.uint8),
                                               pair[1]], 1))
        ImageDraw.Draw(tile).text((3, 2), label, fill=(255, 255, 0))
        tiles.append(np.pad(np.asarray(tile), ((3, 3), (3, 3), (0, 0))))
    cols = 4
    rows = [np.concatenate(tiles[r:r + cols], 1) for r in range(0, len(tiles), cols)]
    rows[-1] = np.pad(rows[-1], ((0, 0), (0, rows[0].shape[1] - rows[-1].shape[1]), (0, 0)))
    data.write_png(path, np.concatenate(rows, 0))


def main() -> int:
    ap = parser(__doc__)
    ap.add_argument("--images", type=Path, default=MET)
    ap.add_argument("--cache", type=Path, default=None, help="an .npz of the landmarks "
                    "(read when present, else written)")
    ap.add_argument("--sheet", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    files = data.list_images(args.images)
    if args.cache and args.cache.exists():
        got = dict(np.load(args.cache))
        assert list(got["names"]) == [f.name for f in files], "the cache is of other images"
    else:
        got = measure(files)
        if args.cache:
            np.savez(args.cache, **got)
    n = len(files)
    perm = np.random.default_rng(args.seed).permutation(n)
    fit_half, held = np.sort(perm[: n // 2]), np.sort(perm[n // 2:])
    found = ~np.isnan(got["lm5"][:, 0, 0])
    old = [outcome(face68(got["lm68"][i]) if found[i] else None, got["size"][i])
           for i in range(n)]
    use = np.array([i for i in fit_half if old[i] == "aligned"])
    c = fit(got["lm5"][use], got["lm68"][use])
    plain = {**c, "EYE_SCALE": 1.0}
    shared = {**c, "MOUTH_SIDEWAYS": c["one nose factor a"], "MOUTH_NOSE": c["one nose factor a"],
              "MOUTH_DOWN": c["one nose factor b"]}
    new = [outcome(project(got["lm5"][i]) if found[i] else None, got["size"][i])
           for i in range(n)]
    both = [i for i in held if old[i] == new[i] == "aligned"]
    ref = {i: align.square(*face68(got["lm68"][i])) for i in both}
    ways = {"5 points (align.py's constants)": lambda i: project(got["lm5"][i]),
            "5 points, no eye correction": lambda i: face5(got["lm5"][i], plain),
            "5 points, one nose factor": lambda i: face5(got["lm5"][i], shared),
            "5-point eyes, 68-point mouth": lambda i: (*face5(got["lm5"][i], c)[:2],
                                                       face68(got["lm68"][i])[2]),
            "68 points on the mirrored painting": lambda i: face68(got["lm68m"][i])}
    rows = {}
    for name, face in ways.items():
        d = [difference(align.square(*face(i)), ref[i]) for i in both]
        rows[name] = {k: stats([x[j] for x in d]) for j, k in
                      enumerate(("corner_shift_px64", "rotation_deg", "side_ratio"))}
    changes: dict[str, int] = {}
    changed = []
    for i in held:
        if old[i] != new[i]:
            key = f"{old[i]} -> {new[i]}"
            changes[key] = changes.get(key, 0) + 1
            el, er, _ = face68(got["lm68"][i])
            changed.append(f"{files[i].name} {key} (eyes {np.hypot(*(er - el)):.1f} px apart, "
                           f"5 points: {align.eye_distance(got['lm5'][i]):.1f})")
    count = lambda xs: {r: xs.count(r) for r in sorted(set(xs))}  # noqa: E731
    figures = {"images": n, "fitted_on": len(use), "held_out": len(held),
               "compared": len(both),
               "constants": {k: round(v, 4) for k, v in c.items()}, "difference": rows,
               "held_out_outcomes_68": count([old[i] for i in held]),
               "outcome_changes": changes, "changed": changed,
               "all_outcomes_68": count(old), "all_outcomes_5": count(new)}
    if args.sheet:
        shifts = {i: difference(align.quad_of(got["lm5"][i]), ref[i])[0]
                  for i in both}
        rng = np.random.default_rng(args.seed + 1)
        picks = [int(i) for i in rng.choice(both, 24, replace=False)]
        worst = [i for i in sorted(shifts, key=shifts.get, reverse=True) if i not in picks][:8]
        picks += worst
        sheet(files, picks, got, args.sheet,
              [f"{files[i].stem[6:]} {shifts[i]:.1f}px" for i in picks])
    if args.json:
        print(json.dumps({"bench": "align5", "machine": machine(), **figures}, indent=2))
        return 0
    print(f"{n} paintings; constants fitted on {len(use)} faces of one half, "
          f"compared on {len(both)} of the other half's {len(held)}")
    for k, v in c.items():
        now = getattr(align, k, None)
        print(f"  {k:<24} {v: .4f}" + (f"   (align.py: {now})" if now is not None else ""))
    print(f"{'5-point square vs 68-point (held out)':<40} {'corner shift @64px':>22} "
          f"{'rotation deg':>22} {'side ratio - 1':>22}")
    print(f"{'':<40} {'median / pct95 / max':>22} {'median / pct95 / max':>22} "
          f"{'median / pct95 / max':>22}")
    for name, r in rows.items():
        cells = [" / ".join(f"{r[k][q]:.2f}" for q in ("median", "pct95", "max"))
                 for k in ("corner_shift_px64", "rotation_deg", "side_ratio")]
        print(f"{name:<40} {cells[0]:>22} {cells[1]:>22} {cells[2]:>22}")
    print("held-out outcomes with 68 points:", figures["held_out_outcomes_68"])
    print("held-out outcome changes:", changes or "none")
    for line in changed:
        print("  " + line)
    print("all outcomes, 68 points:", figures["all_outcomes_68"])
    print("all outcomes, 5 points: ", figures["all_outcomes_5"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
