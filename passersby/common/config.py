"""YAML configuration -> frozen dataclasses, validated strictly.

Every field carries its allowed range in `metadata`; an unknown key, a wrong type
or an out-of-range value raises ConfigError naming the file, the dotted key, the
value and what is allowed. Defaults live in passersby/common/defaults.yaml (the artist's
starting point, every key commented: what it means is said there) and must equal the
dataclass defaults (a test checks).
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from passersby.common import yamlsafe
from passersby.common.errors import UserError
from passersby.common.yamlsafe import short

DEFAULTS_FILE = Path(__file__).with_name("defaults.yaml")


class ConfigError(UserError, ValueError):
    """A bad configuration value; the message says where, what and how to fix it."""


def _f(default: Any, lo: float | None = None, hi: float | None = None,
       choices: tuple | None = None) -> Any:
    meta = {"lo": lo, "hi": hi, "choices": choices}
    if isinstance(default, list):
        return field(default_factory=lambda d=default: tuple(d), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class TransformConfig:
    """Image-space transform applied before the encoder reads the picture back."""
    zoom: float = _f(1.04, 0.5, 2.0)  # scale about the centre; >1 zooms in
    rotate_degrees: float = _f(0.0, -45.0, 45.0)
    shift_x: float = _f(0.0, -0.5, 0.5)  # fraction of the width
    shift_y: float = _f(0.0, -0.5, 0.5)  # fraction of the height
    mirror: bool = _f(False)  # flip left-right
    blur: float = _f(0.0, 0.0, 4.0)  # gaussian sigma in generator pixels


@dataclass(frozen=True)
class DriftConfig:
    """mode: drift: a slow Ornstein-Uhlenbeck walk on the prior, no feedback."""
    correlation_seconds: float = _f(20.0, 0.25, 3600.0)


@dataclass(frozen=True)
class OrbitConfig:
    """mode: orbit: bodies under softened mutual gravity on the prior's shell."""
    bodies: int = _f(3, 3, 8)  # how many bodies attract each other
    gravity: float = _f(0.25, 0.0, 5.0)
    softening: float = _f(0.3, 0.05, 2.0)
    speed: float = _f(0.3, 0.01, 3.0)
    memory_seconds: float = _f(8.0, 0.5, 600.0)
    mass_ratio: float = _f(0.6, 0.1, 1.0)
    substeps: int = _f(4, 1, 32)  # leapfrog steps per keyframe


@dataclass(frozen=True)
class JourneyConfig:
    """mode: journey: along the shell (slerp) from the current place to a target."""
    seconds: float = _f(15.0, 1.0, 3600.0)  # travel time from one place to the next
    wander: float = _f(0.25, 0.0, 1.0)
    then: str = _f("feedback", choices=("feedback", "onward"))
    target_seed: int | None = _f(None, 0, 2**128 - 1)
    target_step: int | None = _f(None, 0, 2**63 - 1)  # ...at this step; null = a random place


@dataclass(frozen=True)
class TraversalConfig:
    mode: str = _f("feedback", choices=("feedback", "drift", "orbit", "journey"))
    correlation_seconds: float = _f(5.0, 0.25, 600.0)
    feedback: float = _f(0.5, 0.0, 2.0)
    candidates: int = _f(4, 1, 16)  # noise draws per step; the least-visited place wins
    taste: float = _f(0.0, 0.0, 1.0)  # how strongly the taste model picks among candidates
    taste_model: str | None = _f(None)  # taste model file (.npz); null = no taste
    transform: TransformConfig = field(default_factory=TransformConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)
    orbit: OrbitConfig = field(default_factory=OrbitConfig)
    journey: JourneyConfig = field(default_factory=JourneyConfig)


@dataclass(frozen=True)
class StreamConfig:
    seed: int | None = _f(None, 0, 2**128 - 1)  # edition seed; null draws one
    keyframes_per_second: float = _f(4.0, 0.1, 60.0)
    device: str = _f("auto", choices=("auto", "cpu", "cuda"))
    threads: int = _f(0, 0, 256)  # torch CPU threads; 0 picks for you
    queue: int = _f(4, 2, 64)  # keyframes held between generator and renderer
    save_seconds: float = _f(120.0, 1.0, 3600.0)


@dataclass(frozen=True)
class WeightsConfig:
    generator: str = _f("metcrowd64c")  # weight package name under the weights dir
    encoder: str = _f("metcrowd64c-encoder")
    refiner: str | None = _f("met-refiner")
    identity: str | None = _f("dlib-face-v1")  # who the sitter is, for the sitter memory
    dir: str | None = _f(None)  # weights directory; null = the project's weights/


@dataclass(frozen=True)
class LookConfig:
    work_size: int = _f(256, 64, 2048)  # square size at which the painterly passes run
    morph_curve: str = _f("smooth", choices=("linear", "smooth"))
    painterly: float = _f(0.75, 0.0, 1.0)  # mix of the Kuwahara oil-paint filter
    painterly_radius: int = _f(4, 1, 8)  # Kuwahara radius in work pixels
    sharpen: float = _f(0.8, 0.0, 2.0)
    exposure: float = _f(0.0, -3.0, 3.0)  # stops
    contrast: float = _f(1.08, 0.0, 3.0)
    saturation: float = _f(0.85, 0.0, 3.0)
    warmth: float = _f(0.06, -1.0, 1.0)  # shift toward amber (+) or blue (-)
    gamma: float = _f(1.0, 0.2, 5.0)
    vignette: float = _f(0.45, 0.0, 2.0)
    grain: float = _f(0.035, 0.0, 0.5)
    aspect: float = _f(0.8, 0.3, 3.0)  # portrait width / height
    portrait_height: float = _f(0.84, 0.1, 1.0)  # fraction of the output height
    mat_color: tuple = _f([0.10, 0.09, 0.085], 0.0, 1.0)  # RGB 0..1 of the mat
    frame_color: tuple = _f([0.78, 0.70, 0.55], 0.0, 1.0)  # RGB 0..1 of the thin inner frame
    frame_width: float = _f(0.004, 0.0, 0.1)  # fraction of the output height
    # Painted detail at the output's own size (shaders/detail.frag), once per keyframe.
    # Sizes are thousandths of the portrait's height, so every screen shows one painting.
    detail: float = _f(0.8, 0.0, 1.0)  # strength of the painted detail; 0 = off
    detail_taps: int = _f(0, 0, 16)
    stroke_length: float = _f(14.0, 1.0, 100.0)  # brush stroke length, 1/1000 of height
    stroke_width: float = _f(1.4, 0.2, 20.0)  # bristle width, 1/1000 of the height
    stroke_drag: float = _f(0.7, 0.0, 1.0)  # colour a stroke carries across the form
    impasto: float = _f(0.9, 0.0, 2.0)  # relief of the strokes, lit from the upper left
    canvas: float = _f(0.12, 0.0, 2.0)  # relief of the canvas weave
    canvas_weave: float = _f(1.5, 0.3, 20.0)  # thread spacing, 1/1000 of the height
    varnish: float = _f(0.10, 0.0, 1.0)  # amber varnish tint
    craquelure: float = _f(0.0, 0.0, 1.0)  # darkness of the cracks; 0 = none
    crack_size: float = _f(30.0, 2.0, 300.0)  # crack cell size, 1/1000 of the height


@dataclass(frozen=True)
class DisplayConfig:
    monitor: int = _f(0, 0, 16)  # index of the monitor to go fullscreen on
    fullscreen: bool = _f(True)
    window_size: tuple = _f([960, 1080], 64, 16384)  # size when windowed
    vsync: bool = _f(True)


@dataclass(frozen=True)
class RenderConfig:
    fps: float = _f(30.0, 1.0, 240.0)
    size: tuple = _f([512, 512], 16, 16384)  # offscreen output WxH
    seconds: float = _f(30.0, 0.1, 86400.0)


@dataclass(frozen=True)
class TuneConfig:
    """Only with `passersby run --tune`: a collector's unit opens no port."""
    osc_host: str = _f("127.0.0.1")  # OSC listens here; 0.0.0.0 for other machines
    osc_port: int = _f(9000, 0, 65535)  # OSC UDP port; 0 = no OSC
    captures: str | None = _f(None)  # folder for captures; null = <state>/captures


@dataclass(frozen=True)
class ScreenConfig:
    """One screen of several: its monitor, its own stream, weights, look and walk.

    `weights`, `look` and `traversal` are complete here: the file gives partial mappings
    that are merged over the global sections when the config is loaded."""
    monitor: int = _f(0, 0, 16)  # index of the monitor this screen goes fullscreen on
    size: tuple | None = _f(None, 16, 16384)
    seed_offset: int = _f(0, 0, 2**32 - 1)
    rotate: int = _f(0, choices=(0, 90, 180, 270))
    weights: WeightsConfig = field(default_factory=WeightsConfig)
    look: LookConfig = field(default_factory=LookConfig)
    traversal: TraversalConfig = field(default_factory=TraversalConfig)


SCREEN_PARTIAL = ("weights", "look", "traversal")   # screen keys merged over the global section


@dataclass(frozen=True)
class Config:
    stream: StreamConfig = field(default_factory=StreamConfig)
    traversal: TraversalConfig = field(default_factory=TraversalConfig)
    weights: WeightsConfig = field(default_factory=WeightsConfig)
    look: LookConfig = field(default_factory=LookConfig)
    display: DisplayConfig = field(default_factory=DisplayConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    screens: tuple = ()   # ScreenConfig entries; empty = one screen from display + look


def _check_scalar(value: Any, tp: Any, meta: dict, where: str) -> Any:
    allowed = _allowed(tp, meta)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _check_scalar(value, args[0], meta, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} = {short(value)}: expected true or false")
        return value
    if tp is int:
        if isinstance(value, str) and value.lower().startswith("0x"):
            try:
                value = int(value, 16)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} = {short(value)}: expected an integer {allowed}")
    elif tp is float:
        value = finite(value, where, allowed)
    elif tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} = {short(value)}: expected text {allowed}")
    if meta.get("choices") and value not in meta["choices"]:
        raise ConfigError(f"{where} = {short(value)}: not one of {list(meta['choices'])}")
    lo, hi = meta.get("lo"), meta.get("hi")
    if isinstance(value, (int, float)) and ((lo is not None and value < lo) or
                                            (hi is not None and value > hi)):
        raise ConfigError(f"{where} = {short(value)}: out of range {allowed}")
    return value


def finite(value: Any, where: str, allowed: str = "") -> float:
    """`value` as a finite float, or ConfigError: NaN passes every `lo <= x <= hi` test
    (each comparison is false) and would play black or poison the saved latent."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where} = {short(value)}: expected a number {allowed}")
    try:
        out = float(value)
    except OverflowError:
        out = math.inf
    if not math.isfinite(out):
        raise ConfigError(f"{where} = {short(value)}: not a finite number; write a number "
                          f"{allowed}".rstrip())
    return out


def _allowed(tp: Any, meta: dict) -> str:
    if meta.get("choices"):
        return f"(one of {list(meta['choices'])})"
    lo, hi = meta.get("lo"), meta.get("hi")
    return f"({lo} to {hi})" if lo is not None else ""


def _check_tuple(value: Any, default: tuple, meta: dict, where: str) -> tuple:
    if not isinstance(value, (list, tuple)) or len(value) != len(default):
        raise ConfigError(f"{where} = {short(value)}: expected a list of {len(default)} numbers "
                          f"{_allowed(float, meta)}")
    tp = type(default[0])
    return tuple(_check_scalar(v, tp, meta, f"{where}[{i}]") for i, v in enumerate(value))


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'top level'} = {short(data)}: expected a mapping of keys")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    odd = next((k for k in data if not isinstance(k, str)), None)
    if odd is not None:
        raise ConfigError(f"{where or 'top level'}: key {short(odd)} is not a name; keys "
                          f"are words such as {sorted(fields)[0]}")
    unknown = sorted(set(data) - set(fields))
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(f"unknown key {prefix}{unknown[0]}: allowed keys here are "
                          f"{sorted(fields)}")
    kwargs = {}
    for name, value in data.items():
        f, tp, key = fields[name], hints[name], f"{where}.{name}" if where else name
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, value, key)
        elif tp is tuple:
            kwargs[name] = _check_tuple(value, f.default_factory(), f.metadata, key)
        elif _optional_size(tp):
            kwargs[name] = None if value is None else _check_tuple(value, (0, 0), f.metadata, key)
        else:
            kwargs[name] = _check_scalar(value, tp, f.metadata, key)
    return cls(**kwargs)


def _optional_size(tp: Any) -> bool:
    """`tuple | None`: an optional [W, H] pair of integers."""
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and \
        set(typing.get_args(tp)) == {tuple, type(None)}


def _build_config(data: Any) -> Config:
    """Config from merged plain data; `screens` entries merge over the global sections."""
    if not isinstance(data, dict):
        raise ConfigError(f"top level = {short(data)}: expected a mapping of keys")
    cfg = _build(Config, {k: v for k, v in data.items() if k != "screens"}, "")
    screens = data.get("screens")
    if screens is None:
        return cfg
    if not isinstance(screens, (list, tuple)):
        raise ConfigError(f"screens = {short(screens)}: expected a list of screens, e.g. "
                          f"[{{monitor: 0}}, {{monitor: 1, seed_offset: 1}}], or [] for one "
                          f"screen from display + look")
    built = tuple(_build_screen(entry, i, data) for i, entry in enumerate(screens))
    _check_distinct(built)
    return dataclasses.replace(cfg, screens=built)


def _build_screen(entry: Any, i: int, data: dict) -> ScreenConfig:
    where = f"screens[{i}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} = {short(entry)}: expected a mapping such as "
                          f"{{monitor: {i}, seed_offset: {i}}}")
    entry = dict(entry)
    for name in SCREEN_PARTIAL:
        over = entry.get(name, {})
        if not isinstance(over, dict):
            raise ConfigError(f"{where}.{name} = {short(over)}: expected a mapping of {name} keys "
                              f"to change for this screen (the rest come from `{name}:`)")
        entry[name] = layered(data.get(name) or {}, over)
    return _build(ScreenConfig, entry, where)


def _check_distinct(screens: tuple) -> None:
    for i, s in enumerate(screens):
        for j, other in enumerate(screens[:i]):
            if s.monitor == other.monitor:
                raise ConfigError(f"screens[{i}].monitor = {s.monitor}: screens[{j}] is on that "
                                  f"monitor already; give each screen its own monitor index")
            if s.seed_offset == other.seed_offset and \
                    _walk_weights(s.weights) == _walk_weights(other.weights):
                raise ConfigError(f"screens[{i}].seed_offset = {s.seed_offset}: screens[{j}] has "
                                  f"it and the same weights, so both would show one stream; "
                                  f"give each screen its own seed_offset")


def _walk_weights(w: WeightsConfig) -> WeightsConfig:
    """The packages that decide a stream's pictures: the refiner only paints them larger
    (the walk reads the generator's own picture), so it does not make a stream another."""
    return dataclasses.replace(w, refiner=None)


def layered(*layers: dict) -> dict:
    """Plain config data layered: each layer over the ones before it (defaults, a file,
    the command line, live nudges...). Mappings merge key by key, at every depth;
    anything else (a value, a list) replaces what was there. The inputs are not changed."""
    out: dict = {}
    for layer in layers:
        out = _over(out, layer)
    return out


def _over(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _over(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out


def read_yaml(path: Path) -> dict:
    try:
        data = yamlsafe.read(Path(path))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config file ({e.strerror}); "
                          f"check the path given with --config") from None
    except yamlsafe.YamlError as e:
        raise ConfigError(f"{path}: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top, got {short(data)}")
    return data


def load(path: str | Path | None = None, overrides: dict | None = None) -> Config:
    """Defaults, then the file at `path` (if any), then `overrides` (from the CLI)."""
    data = read_yaml(DEFAULTS_FILE)
    source = str(DEFAULTS_FILE)
    if path is not None:
        data = layered(data, read_yaml(Path(path)))
        source = str(path)
    try:
        cfg = _build_config(data)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    if overrides:
        try:
            cfg = _build_config(layered(data, overrides))
        except ConfigError as e:
            raise ConfigError(f"command line: {e}") from None
    return cfg


def to_dict(cfg: Any) -> dict:
    """Plain data (lists, not tuples) for YAML/JSON."""
    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        return [conv(x) for x in v] if isinstance(v, tuple) else v
    return conv(cfg)
