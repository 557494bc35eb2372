"""What every command's parser shares: the argument types (a float flag never takes NaN
or inf), the config and seed flags, and the config they load."""
from __future__ import annotations

import argparse
import math

from passersby.common import config


def size(text: str) -> list[int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r} is not WxH, e.g. 1280x720") from None
    return [w, h]


def number(text: str) -> float:
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


def seed(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed {text!r} is not an integer (decimal or 0x-hex)"
                                         ) from None


def add_config(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--config",
                    help="YAML file over the defaults (see passersby/common/defaults.yaml)")


def add_common(sp: argparse.ArgumentParser, state: bool = True) -> None:
    """--config and --seed; with `state`, --state and --weights (the world to play)."""
    add_config(sp)
    sp.add_argument("--seed", "--edition-seed", dest="seed", type=seed,
                    help="edition seed (overrides config and state)")
    if state:
        sp.add_argument("--state", help="state folder (edition, place in the stream)")
        sp.add_argument("--weights", dest="world", metavar="NAME",
                        help="play the world NAME: generator package NAME with its "
                             "encoder NAME-encoder (overrides weights.generator/encoder; "
                             "e.g. dcgan64-standin)")


def overrides(args: argparse.Namespace, render: dict | None = None) -> dict:
    over: dict = {}
    if getattr(args, "seed", None) is not None:
        over["stream"] = {"seed": args.seed}
    if getattr(args, "world", None):
        over["weights"] = {"generator": args.world, "encoder": f"{args.world}-encoder"}
    if render:
        over["render"] = render
    return over


def load_config(args: argparse.Namespace, render: dict | None = None) -> config.Config:
    return config.load(args.config, overrides(args, render))


class Deferred(argparse.ArgumentParser):
    """A subcommand's parser whose flags are added when it is first used (to parse, or
    for its help): the training recipes that make the `train` flags live in modules that
    import torch, and `passersby run` must not load it."""

    def __init__(self, *args, flags=None, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._flags = flags

    def complete(self) -> argparse.ArgumentParser:
        if self._flags is not None:
            flags, self._flags = self._flags, None
            flags(self)
        return self

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[no-untyped-def]
        return super(Deferred, self.complete()).parse_known_args(args, namespace)

    def format_usage(self) -> str:
        return super(Deferred, self.complete()).format_usage()

    def format_help(self) -> str:
        return super(Deferred, self.complete()).format_help()


def walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    """(command words, parser) for `parser` and every subcommand under it, each with all
    its flags (deferred ones added: this loads what they need)."""
    if isinstance(parser, Deferred):
        parser.complete()
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sp in action.choices.items():
                yield from walk(sp, (*path, name))
