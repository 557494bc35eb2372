"""passersby: an endless generative portrait player.

Play: run (fullscreen), explore (from a bookmark), render (to a video, or --count stills).
Stills: curate (rate them), taste (learn from the ratings), bookmarks (list them).
Tools: audit (measure the stream headless), weights (fetch, verify), doctor (check the
machine). Train: train data | generator | encoder | refiner | measure | carry.
`passersby COMMAND --help` lists a command's flags."""
from __future__ import annotations

import argparse
import logging
import sys

from passersby.cli import play, stills, tools, train

log = logging.getLogger("passersby")


def parser() -> argparse.ArgumentParser:
    """The whole command line; each command's parser comes from its module (cli/play.py,
    stills.py, tools.py, train.py). Importing them loads neither torch nor GL: the
    commands import what they need when they run."""
    p = argparse.ArgumentParser(prog="passersby", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    play.add(sub)
    stills.add(sub)
    tools.add(sub)
    train.add(sub)
    tools.add_doctor(sub)
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
