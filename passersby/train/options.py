"""A recipe field that is a command-line flag too: its default and type stay in the
dataclass, its help text beside them (field metadata), and `passersby train` makes the
flag from it (cli/train.py). Fields without it are the recipe's inner settings."""
from __future__ import annotations

import dataclasses
from typing import Any


def flag(default: Any, help: str, *, name: str | None = None, **argparse: Any) -> Any:
    """`dataclasses.field(default=default)` with the flag's help; `name` when the flag is
    not the field's name with dashes (e.g. "seed-train"); `argparse`: choices, metavar.
    `help` may hold `{default}` where the default belongs in the sentence, else the
    flag's help ends with it."""
    return dataclasses.field(default=default,
                             metadata={"help": help, "flag": name, **argparse})
