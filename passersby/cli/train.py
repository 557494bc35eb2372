"""`passersby train data | generator | encoder | refiner | measure | copies | carry`: one
subcommand each, with its own flags. The flags of a recipe (how a network is trained)
are made from its dataclass (train/options.py): a field made with `flag` is a flag, with
its default and type; the flags that are no recipe's (where from, where to, how long,
on what) are here."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path

from passersby.cli import args as a


def _hours(text: str) -> float:
    """--stream-hours: a finite number of hours in (0, 1000]."""
    value = a.number(text)
    if not 0 < value <= 1000:
        raise argparse.ArgumentTypeError(f"{text[:40]!r} hours: give more than 0 and at "
                                         f"most 1000 (e.g. 1)")
    return value


TYPES: dict[str, Callable[[str], object]] = {"float": a.number, "int": int, "str": str,
                                             "tuple[int, ...]": int}


def _shown(default: object) -> str:
    if isinstance(default, tuple):
        return " ".join(map(str, default))
    if isinstance(default, float):
        return f"{default:g}"
    return str(default) if default != "" else "none"


def add_recipe(sp: argparse.ArgumentParser, recipe: type) -> None:
    """A flag for every field of `recipe` made with train.options.flag: --field-name (or
    its `name`), the field's type (a float through `number`), its default in the help;
    the value stays None unless given, and `given` gathers what was."""
    for f in dataclasses.fields(recipe):
        meta = dict(f.metadata)
        if "help" not in meta:
            continue
        text, name = meta.pop("help"), meta.pop("flag") or f.name.replace("_", "-")
        if f.type == "bool":    # default False: the flag turns it on; True: --no-X, off
            sp.add_argument(f"--{name}", dest=f.name, action="store_const",
                            const=not f.default, help=text.replace("%", "%%"))
            continue
        if f.type not in TYPES:
            raise TypeError(f"{recipe.__name__}.{f.name}: a {f.type} field cannot be a flag "
                            f"(make it one of {', '.join(TYPES)})")
        shown = _shown(f.default)
        text = text.format(default=shown) if "{default}" in text else \
            f"{text} (default {shown})"
        sp.add_argument(f"--{name}", dest=f.name, type=TYPES[f.type],
                        nargs="+" if f.type.startswith("tuple") else None,
                        help=text.replace("%", "%%"), **meta)


def given(args: argparse.Namespace, recipe: type) -> dict:
    """The recipe's fields given on the command line (the rest keep their defaults)."""
    out = {}
    for f in dataclasses.fields(recipe):
        value = getattr(args, f.name, None) if "help" in f.metadata else None
        if value is not None:
            out[f.name] = tuple(value) if isinstance(value, list) else value
    return out


def _need(args: argparse.Namespace, *names: str) -> None:
    from passersby.common.errors import UserError

    for name in names:
        if getattr(args, name) is None:
            raise UserError(f"`passersby train {args.what}` needs --{name}; see "
                            f"`passersby train {args.what} --help`")


def _config(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The config (--config) and its weights folder."""
    from passersby.common import config
    from passersby.generator import weights

    cfg = config.load(args.config, {})
    return cfg, weights.weights_dir(cfg.weights.dir)


def _threads(args: argparse.Namespace, default: int = 0) -> None:
    if args.threads or default:
        import torch

        torch.set_num_threads(args.threads or default)


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


def cmd_data(args: argparse.Namespace) -> int:
    from passersby.train import data

    _need(args, "images", "out")

    def progress(i: int, n: int) -> None:
        print(f"\rfaces: {i}/{n} images", end="", file=sys.stderr, flush=True)

    recipe = data.CropRecipe(**given(args, data.CropRecipe))
    report = data.make_dataset(Path(args.images), Path(args.out), recipe, progress)
    print(file=sys.stderr)
    print(f"{data.summary(report)}; wrote {Path(args.out) / data.REPORT}")
    return 0


def cmd_generator(args: argparse.Namespace) -> int:
    from passersby.train import generator

    _need(args, "data", "out")
    _threads(args)
    _, root = _config(args)
    steps, minutes = _budget(args, 25.0)
    progress = _progress_bar(steps, minutes, lambda info: (
        f"D {info['loss_d']:.3f}  G {info['loss_g']:.3f}"
        + (f"  p {info['ada_p']:.3f}" if info.get("ada_p") is not None else "")))
    recipe = generator.Recipe(**given(args, generator.Recipe))
    m = generator.train(root, Path(args.data), args.out, recipe, args.init, steps, minutes,
                        args.device, progress, args.keep_every, args.branch)
    print(file=sys.stderr)
    print(f"wrote {root / args.out} ({m['steps']} steps, {m['minutes']} min; losses D "
          f"{m['losses']['d']} G {m['losses']['g']}; samples {root / args.out / m['samples']})")
    if args.encoder_minutes > 0:
        _encoder_for(root, args.out, m, args.encoder_minutes, recipe.seed)
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


def cmd_encoder(args: argparse.Namespace) -> int:
    from passersby.train.encoder import Recipe, train

    cfg, root = _config(args)
    gen = args.weights or cfg.weights.generator
    out = args.out or f"{gen}-encoder"
    _threads(args)
    m = train(root, gen, out, Recipe(**given(args, Recipe)))
    print(f"wrote {root / out} ({m['steps']} steps; held-out {m['figures']})")
    return 0


def cmd_refiner(args: argparse.Namespace) -> int:
    from passersby.train import refiner

    _need(args, "data")
    _threads(args)
    cfg, root = _config(args)
    out = args.out or "met-refiner"
    steps, minutes = _budget(args, 30.0)
    progress = _progress_bar(steps, minutes,
                             lambda info: f"R {info['loss_r']:.3f}  D {info['loss_d']:.3f}")
    recipe = refiner.Recipe(**given(args, refiner.Recipe))
    m = refiner.train(root, Path(args.data), out, recipe, steps, minutes, args.device,
                      args.weights or cfg.weights.generator, progress)
    print(file=sys.stderr)
    print(f"wrote {root / out} ({m['steps']} steps, {m['minutes']} min; strip "
          f"{root / out / m['samples']}); measure it with `python bench/refiner_quality.py "
          f"--refiner {out} --data {args.data}`")
    return 0


def cmd_measure(args: argparse.Namespace) -> int:
    from passersby.train import measure

    _threads(args, default=1)
    cfg, root = _config(args)
    if args.stream_hours is not None:
        return _measure_stream(args, cfg, root)
    _need(args, "data")
    figures = measure.run(root, args.weights or cfg.weights.generator,
                          Path(args.data), args.samples, args.seed_train,
                          Path(args.sheet) if args.sheet else None, args.device,
                          not args.no_pretrained)
    print(json.dumps(figures, indent=1))
    return 0


def _measure_stream(args: argparse.Namespace, cfg: object, root: Path) -> int:
    from passersby.common.errors import UserError
    from passersby.train import sitters, yardsticks

    crops = None
    if args.data:
        from passersby.train import data

        crops, _ = data.load_crops(Path(args.data), 64)
    try:
        figures = sitters.measure(root, cfg, args.weights or cfg.weights.generator,
                                  args.stream_hours, seed=args.seed_train, device=args.device,
                                  crops=crops,
                                  progress=lambda i, n: print(f"\rstream {i}/{n} keyframes",
                                                              end="", file=sys.stderr))
    except yardsticks.YardstickUnavailable as e:
        raise UserError(f"--stream-hours: {e}") from None
    print(file=sys.stderr)
    print(json.dumps(figures, indent=1))
    return 0


def cmd_copies(args: argparse.Namespace) -> int:
    from passersby.train import copies

    _need(args, "data")
    cfg, root = _config(args)
    package = args.weights or cfg.weights.generator
    entry = copies.build(root, package, Path(args.data), args.seed_train)
    print(f"wrote {root / package / entry['file']} ({entry['crops']} crops, threshold "
          f"{entry['threshold']}) and its copy_guard entry in {root / package}/manifest.json: "
          f"the stream now drops a keyframe that nearly copies a crop; commit both")
    return 0


def cmd_carry(args: argparse.Namespace) -> int:
    from passersby.train import generator

    _need(args, "out")
    path = generator.carry(_config(args)[1], args.out)
    record = json.loads(path.read_text(encoding="utf-8"))
    print(f"carried step {record['step']} of {args.out} to {path.parent}: commit that folder; "
          f"on another machine the same `train generator` command continues from it")
    return 0


class _EditionSeed(argparse.Action):
    """--seed (the edition seed, which no training uses) refused where --seed-train is the
    seed: else argparse would take it for an abbreviation of --seed-train."""

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[no-untyped-def]
        parser.error(f"{option_string} is the edition seed, which training does not use; "
                     f"the training seed is --seed-train")


GENERATOR = "generator package (default: weights.generator)"


def _common(sp: argparse.ArgumentParser, seed: bool, weights: str | None = None) -> None:
    """--config; with `seed`, --seed refused (the command has --seed-train); with
    `weights`, --weights: a generator package, `weights` its help."""
    a.add_config(sp)
    if seed:
        sp.add_argument("--seed", "--edition-seed", action=_EditionSeed, help=argparse.SUPPRESS)
    if weights:
        sp.add_argument("--weights", help=weights)


def _machine(sp: argparse.ArgumentParser, device: bool = True,
             threads: str = "torch CPU threads (0 = torch's default)") -> None:
    """--device (unless not `device`) and --threads."""
    if device:
        sp.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    sp.add_argument("--threads", type=int, default=0, help=threads)


def _budget_flags(sp: argparse.ArgumentParser, default_minutes: float) -> None:
    sp.add_argument("--steps", type=int, help="steps in all (instead of --minutes)")
    sp.add_argument("--minutes", type=a.number, help=f"training time in all (default "
                                                     f"{default_minutes:g} unless --steps)")


def flags_data(sp: argparse.ArgumentParser) -> None:
    from passersby.train import data

    _common(sp, seed=False)
    sp.add_argument("--images", help="folder of paintings or photos")
    sp.add_argument("--out", help="the dataset folder to write")
    add_recipe(sp, data.CropRecipe)


def flags_generator(sp: argparse.ArgumentParser) -> None:
    from passersby.train import encoder, generator

    _common(sp, seed=True)
    sp.add_argument("--data", help="dataset folder made by `train data`")
    sp.add_argument("--out", help="package name to write")
    sp.add_argument("--init", help="package to fine-tune (e.g. dcgan64-standin)")
    sp.add_argument("--branch", metavar="RUN[@STEP]",
                    help="start this new run from RUN's checkpoint (its latest, or its kept "
                         "STEP), D, learned latents and optimizers included, changing only "
                         "weights and rates (--lr-g, --lr-d, --ema, --ema-rampup, --imle, "
                         "--imle-face, --imle-every, --mode-seeking); give RUN's other "
                         "options and --init unchanged")
    _budget_flags(sp, 25.0)
    sp.add_argument("--keep-every", dest="keep_every", type=int, default=0, metavar="K",
                    help="keep the checkpoint of every K-th step (a multiple of 50); later, "
                         "--steps N of a kept step exports that step (default 0: only the "
                         "last)")
    minutes = encoder.Recipe().minutes
    sp.add_argument("--encoder-minutes", dest="encoder_minutes", type=a.number,
                    default=minutes,
                    help=f"then train its feedback encoder NAME-encoder for this long "
                         f"(default {minutes:g}; 0 = not now: `train encoder` makes it later)")
    _machine(sp)
    add_recipe(sp, generator.Recipe)


def flags_encoder(sp: argparse.ArgumentParser) -> None:
    from passersby.train import encoder

    _common(sp, seed=True, weights=GENERATOR)
    sp.add_argument("--out", help="package name to write (default: <generator>-encoder)")
    _machine(sp, device=False)
    add_recipe(sp, encoder.Recipe)


def flags_refiner(sp: argparse.ArgumentParser) -> None:
    from passersby.train import refiner

    _common(sp, seed=True, weights="the generator shown in its sample strips (default: "
                                   "weights.generator)")
    sp.add_argument("--data", help="dataset folder of 256 px crops (`train data --size 256`)")
    sp.add_argument("--out", help="package name to write (default met-refiner)")
    _budget_flags(sp, 30.0)
    _machine(sp)
    add_recipe(sp, refiner.Recipe)


def flags_measure(sp: argparse.ArgumentParser) -> None:
    _common(sp, seed=True, weights=GENERATOR)
    sp.add_argument("--data", help="dataset folder made by `train data`")
    sp.add_argument("--samples", type=int, default=1000,
                    help="pictures to generate (default 1000)")
    sp.add_argument("--seed-train", dest="seed_train", type=int, default=0,
                    help="the samples' seed (default 0)")
    sp.add_argument("--sheet", help="PNG of the 10 closest sample/crop pairs")
    sp.add_argument("--no-pretrained", dest="no_pretrained", action="store_true",
                    help="leave out the identity (dlib descriptor) and fidelity "
                         "(EfficientNet-Lite2 Frechet distance, precision/recall) figures")
    sp.add_argument("--stream-hours", dest="stream_hours", type=_hours, default=None,
                    help="instead: distinct sitters in H hours of the live stream (the "
                         "config's traversal; one keyframe every 5 s) against as many "
                         "independent samples (train/sitters.py); with --data, as many "
                         "crops for scale")
    _machine(sp, threads="torch CPU threads (default 0: one)")


def flags_copies(sp: argparse.ArgumentParser) -> None:
    _common(sp, seed=True, weights=GENERATOR)
    sp.add_argument("--data", help="the dataset folder the generator was trained on")
    sp.add_argument("--seed-train", dest="seed_train", type=int, default=0,
                    help="the near copies' seed, as in `train measure` (default 0)")


def flags_carry(sp: argparse.ArgumentParser) -> None:
    _common(sp, seed=False)
    sp.add_argument("--out", help="the package whose run to carry")


# name -> (help, flags, command)
COMMANDS = {
    "data": ("face crops of a folder of pictures", flags_data, cmd_data),
    "generator": ("a GAN on the crops of `train data`, then its feedback encoder",
                  flags_generator, cmd_generator),
    "encoder": ("the feedback encoder of a generator", flags_encoder, cmd_encoder),
    "refiner": ("the 64 -> 256 px painter on 256 px crops", flags_refiner, cmd_refiner),
    "measure": (("face rates, memorisation, diversity, identity and fidelity of a "
                 "generator package (JSON)"), flags_measure, cmd_measure),
    "copies": (("the copy guard of a generator package: the stream never shows a near "
                "copy of a training crop"), flags_copies, cmd_copies),
    "carry": (("copy a run's latest checkpoint to weights/OUT/carried/ to commit, so "
               "another machine continues it"), flags_carry, cmd_carry),
}


def add(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("train", help="train networks: data, generator, encoder, refiner, "
                                      "measure, copies, carry",
                        description="Train networks; `passersby train WHAT --help` lists "
                                    "WHAT's flags.")
    what = sp.add_subparsers(dest="what", required=True, metavar="WHAT",
                             parser_class=a.Deferred)
    for name, (text, flags, cmd) in COMMANDS.items():
        p = what.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".",
                            flags=flags)
        p.set_defaults(func=cmd)
