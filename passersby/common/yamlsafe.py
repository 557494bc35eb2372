"""A bounded, strict YAML reader for configuration files (numpy-free, torch-free, GL-free).

Any content of a file is either plain data or one ConfigError line naming the file, where
and what, and the fix: never a traceback, never unbounded memory or time. Bounds:
MAX_BYTES of text (UTF-8), MAX_DEPTH of nesting, MAX_ALIASES aliases and MAX_NODES
values once every alias is expanded (an "alias bomb" of nested `&a [*a, *a]` lists
expands exponentially). Keys must be text and appear once per mapping (a duplicate is an
error naming both lines: YAML's "last one wins" silently drops the artist's first edit).
`short()` is the one way a value enters a message: a bounded repr.
"""
from __future__ import annotations

import reprlib
from pathlib import Path
from typing import Any

import yaml

from passersby.common.errors import NotUtf8, utf8

MAX_BYTES = 1 << 20        # a config is a few KB; defaults.yaml ~10 KB
MAX_DEPTH = 32             # defaults.yaml nests 3 deep
MAX_ALIASES = 256
MAX_NODES = 100_000        # expanded values in all
MAX_MESSAGE = 300          # characters of a YAML error quoted in a message
_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"

_repr = reprlib.Repr()
_repr.maxlevel, _repr.maxlist, _repr.maxtuple, _repr.maxdict = 2, 4, 4, 4
_repr.maxset = _repr.maxfrozenset = 4
_repr.maxstring, _repr.maxother, _repr.maxlong = 60, 60, 40


def short(value: Any) -> str:
    """A repr of `value` bounded in length and in the work to make it (whatever its size)."""
    try:
        return _repr.repr(value)
    except Exception:  # noqa: BLE001 - e.g. an int too long for str(): still one line
        return f"<{type(value).__name__}>"


class YamlError(ValueError):
    """What is wrong with a YAML text (config.read_yaml adds the file)."""


def parse(text: str, what: str = "the file") -> Any:
    """Plain data from YAML `text`, within the bounds above, or YamlError."""
    if len(text) > MAX_BYTES:
        raise YamlError(f"{len(text)} characters, more than a config can need "
                        f"({MAX_BYTES}); is this the right file?")
    try:
        _check_events(text)
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_nodes(node)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except YamlError:
        raise
    except yaml.YAMLError as e:
        raise YamlError(f"not valid YAML: {_clip(str(e))}") from None
    except (ValueError, TypeError, OverflowError, RecursionError, MemoryError, IndexError,
            KeyError, AttributeError) as e:
        # e.g. an integer of more than 4300 digits, a !!binary that is not base64, an
        # empty !!int (PyYAML's constructor indexes its first character)
        raise YamlError(f"a value cannot be read ({type(e).__name__}: {_clip(str(e))}); "
                        f"write plain numbers, text, lists and mappings") from None


def _clip(msg: str) -> str:
    msg = " ".join(msg.split())
    return msg if len(msg) <= MAX_MESSAGE else msg[:MAX_MESSAGE] + "..."


def _check_events(text: str) -> None:
    """Depth and alias count from the event stream (the parser is iterative: a list nested
    thousands deep is refused here, before the recursive composer would overflow)."""
    depth, aliases = 0, 0
    for ev in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise YamlError(f"line {ev.start_mark.line + 1}: nested more than {MAX_DEPTH} "
                                f"deep; a config nests a few levels")
        elif isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        elif isinstance(ev, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                raise YamlError(f"line {ev.start_mark.line + 1}: more than {MAX_ALIASES} "
                                f"aliases (*name); write the values out")


def _check_nodes(root: yaml.Node) -> None:
    """Expanded size (aliases counted each time they are used), self-reference, key types
    and duplicate keys, over the composed node graph (shared nodes visited once)."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in active:
            raise YamlError(f"line {node.start_mark.line + 1}: an alias refers to the value "
                            f"that contains it (endless); write the values out")
        active.add(id(node))
        n = 1
        if isinstance(node, yaml.SequenceNode):
            n += sum(size(c) for c in node.value)
        elif isinstance(node, yaml.MappingNode):
            _check_keys(node)
            n += sum(size(k) + size(v) for k, v in node.value)
        active.discard(id(node))
        if n > MAX_NODES:
            raise YamlError(f"line {node.start_mark.line + 1}: more than {MAX_NODES} values "
                            f"once the aliases are expanded; write the values out")
        sizes[id(node)] = n
        return n

    size(root)


def _check_keys(node: yaml.MappingNode) -> None:
    seen: dict[str, int] = {}
    for k, _ in node.value:
        line = k.start_mark.line + 1
        if k.tag == _MERGE:
            continue
        if not isinstance(k, yaml.ScalarNode) or k.tag != _STR:
            shown = k.value if isinstance(k, yaml.ScalarNode) else type(k).__name__
            raise YamlError(f"line {line}: key {short(shown)} is not a name; keys are "
                            f"words such as `exposure:`")
        if k.value in seen:
            raise YamlError(f"line {line}: key {short(k.value)} again (first on line "
                            f"{seen[k.value]}); keep one of the two")
        seen[k.value] = line


def read(path: Path) -> Any:
    """The text of `path` (bounded, UTF-8) parsed, or YamlError / OSError."""
    with open(path, "rb") as f:
        raw = f.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise YamlError(f"more than {MAX_BYTES} bytes, more than a config can need; "
                        f"is this the right file?")
    try:
        text = utf8(raw)
    except NotUtf8 as e:
        raise YamlError(f"line {e.line}: not UTF-8 text (byte {e.byte:#04x} at offset "
                        f"{e.offset}); save the file as UTF-8") from None
    return parse(text)
