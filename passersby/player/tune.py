"""Live tuning (`passersby run --tune`): the config file watched, parameters nudged from
keys or OSC, the result written back into the artist's YAML.

Neither torch nor GL here. The effective configuration is always
    defaults <- the config file <- command-line overrides <- nudges
rebuilt through the same strict validation as at start-up: an invalid edit or
nudge keeps the last good configuration and reports the error (stage.py shows it
on screen and logs it once). A file edit drops the nudges of the keys it changed.

Write-back edits the YAML text in place, line by line: only the value of a changed
key is replaced, its comment and every other line are kept; a key missing from the
file is added under its section.
"""
from __future__ import annotations

import dataclasses
import logging
import re
import threading
import typing
from pathlib import Path
from typing import Any

from passersby.common import config
from passersby.common.config import Config, ConfigError, LookConfig, TraversalConfig
from passersby.common.yamlsafe import short

log = logging.getLogger(__name__)
SECTIONS = {"look": LookConfig, "traversal": TraversalConfig}


@dataclasses.dataclass(frozen=True)
class Tunable:
    key: str              # dotted, e.g. "look.painterly", "traversal.transform.zoom"
    kind: type
    lo: float | None
    hi: float | None
    choices: tuple | None


def tunables() -> list[Tunable]:
    """Every number, switch and choice of the look and the traversal."""
    out: list[Tunable] = []

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            tp, key = hints[f.name], f"{prefix}.{f.name}"
            if dataclasses.is_dataclass(tp):
                walk(tp, key)
            elif tp in (int, float, bool, str):
                m = f.metadata
                if tp is str and not m.get("choices"):
                    continue
                out.append(Tunable(key, tp, m.get("lo"), m.get("hi"), m.get("choices")))

    for name, cls in SECTIONS.items():
        walk(cls, name)
    return out


TUNABLE_KEYS: dict[str, type] = {t.key: t.kind for t in tunables()}


def _as_kind(kind: type, value: Any) -> Any:
    """OSC has no booleans on many senders: 0 / 1 switch a switch; the rest is checked by
    the config's own validation."""
    if kind is bool and type(value) in (int, float) and value in (0, 1):
        return bool(value)
    return value


def get(cfg: Any, key: str) -> Any:
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg


def nudged(t: Tunable, value: Any, direction: int) -> Any:
    """One key press from `value`: 2% of the range (5% of the value for ranges wider than
    100x), a switch flips, a choice cycles."""
    if t.kind is bool:
        return not value
    if t.choices:
        return t.choices[(t.choices.index(value) + direction) % len(t.choices)]
    lo, hi = t.lo if t.lo is not None else -1e9, t.hi if t.hi is not None else 1e9
    if t.kind is int:
        return int(min(hi, max(lo, value + direction)))
    wide = lo > 0 and hi / lo > 100
    step = abs(value) * 0.05 if wide and value else (hi - lo) / 50
    return float(min(hi, max(lo, round(value + direction * step, 6))))


def _flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _nest(flat: dict[str, Any]) -> dict:
    out: dict = {}
    for key, v in flat.items():
        *parents, leaf = key.split(".")
        d = out
        for p in parents:
            d = d.setdefault(p, {})
        d[leaf] = v
    return out


class Tuning:
    """The live configuration of a tuned run; see the module docstring."""

    def __init__(self, path: Path | None, overrides: dict | None = None) -> None:
        self.path, self.overrides = path, overrides or {}
        self.nudges: dict[str, Any] = {}
        self.error: str | None = None
        self._defaults = config.read_yaml(config.DEFAULTS_FILE)  # once, not per key press
        self._file: dict = {}
        self._mtime: float | None = None
        self.cfg = config.load(path, self.overrides)  # start-up: a bad file fails here
        if path is not None:
            self._file, self._mtime = config.read_yaml(path), self._stat()

    def _stat(self) -> float | None:
        try:
            return self.path.stat().st_mtime_ns if self.path else None
        except OSError:
            return None

    def _build(self, file: dict, nudges: dict[str, Any]) -> Config:
        return config._build_config(config.layered(self._defaults, file, self.overrides,
                                                   _nest(nudges)))

    def poll(self) -> bool:
        """Re-read the file if it changed; True when the configuration changed."""
        mtime = self._stat()
        if self.path is None or mtime == self._mtime:
            return False
        self._mtime = mtime
        try:
            file = config.read_yaml(self.path)
            old, new = _flatten(self._file), _flatten(file)
            nudges = {k: v for k, v in self.nudges.items() if old.get(k) == new.get(k)}
            cfg = self._build(file, nudges)
        except ConfigError as e:
            return self._fail(f"{self.path}: {e}" if str(self.path) not in str(e) else str(e))
        self._file, self.nudges = file, nudges
        return self._take(cfg, f"{self.path} reloaded")

    def set(self, key: str, value: Any) -> bool:
        """Set one tunable (a key press, an OSC message); True when the configuration changed."""
        return self.set_many({key: value})

    def set_many(self, values: dict[str, Any]) -> bool:
        """Set tunables at once (one frame's OSC messages, coalesced): one rebuild, one
        repaint. Only tunables (look.*, traversal.* numbers, switches, choices) are
        accepted: anything else (tune.osc_host, stream.seed...) would be written back
        into the artist's file. Every value goes through the config's validation."""
        what = ", ".join(f"{k} = {short(v)}" for k, v in values.items())
        odd = next((k for k in values if k not in TUNABLE_KEYS), None)
        if odd is not None:
            return self._fail(f"{short(odd)} = {short(values[odd])}: not a tunable; these are "
                              f"the look.* and traversal.* numbers, switches and choices "
                              f"(the overlay lists them)")
        values = {k: _as_kind(TUNABLE_KEYS[k], v) for k, v in values.items()}
        nudges = {**self.nudges, **values}
        try:
            cfg = self._build(self._file, nudges)
        except ConfigError as e:
            if len(values) > 1:  # one bad value among a frame's: the good ones still apply
                changed = [self.set_many({k: v}) for k, v in values.items()]
                return any(changed)
            return self._fail(f"{what}: {e}")
        self.nudges = nudges
        return self._take(cfg, what)

    def nudge(self, t: Tunable, direction: int) -> bool:
        return self.set(t.key, nudged(t, get(self.cfg, t.key), direction))

    def _fail(self, msg: str) -> bool:
        if msg != self.error:
            log.error("config not applied, the last good one stays: %s", msg)
        self.error = msg
        return False

    def _take(self, cfg: Config, what: str) -> bool:
        self.error = None
        changed = cfg != self.cfg
        if changed:
            log.info("tuned: %s", what)
        self.cfg = cfg
        return changed

    def write_back(self) -> Path:
        """Write the nudged values into the config file, keeping its comments."""
        if self.path is None:
            raise ConfigError("no config file to write to: start with --config FILE --tune")
        text = self.path.read_text(encoding="utf-8") if self.path.exists() else ""
        for key, value in self.nudges.items():
            text = set_in_yaml(text, key, value)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(self.path)
        self._file, self._mtime, self.nudges = config.read_yaml(self.path), self._stat(), {}
        log.info("wrote the tuned parameters to %s", self.path)
        return self.path


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(round(value, 6))
    return str(value)


def set_in_yaml(text: str, key: str, value: Any) -> str:
    """`text` with the block-style YAML key `key` (dotted) set to `value`, in place."""
    lines = text.splitlines()
    parts, start, indent = key.split("."), 0, 0
    end = len(lines)
    for depth, part in enumerate(parts):
        pat = re.compile(rf"^( {{{indent},}}){re.escape(part)}:(\s*)(.*)$")
        for i in range(start, end):
            m = pat.match(lines[i])
            if m and len(m.group(1)) == indent:
                break
            if lines[i].strip() and not lines[i].lstrip().startswith("#") and \
                    len(lines[i]) - len(lines[i].lstrip()) < indent:
                i = end
                break
        else:
            i = end
        if i == end:  # missing: add the rest of the path at the end of this block
            pad = " " * indent
            new = [f"{pad}{'  ' * k}{p}:" for k, p in enumerate(parts[depth:-1])]
            new.append(f"{pad}{'  ' * (len(parts) - depth - 1)}{parts[-1]}: {_scalar(value)}")
            lines[end:end] = new
            return "\n".join(lines) + "\n"
        if depth == len(parts) - 1:
            rest = m.group(3)
            comment = re.search(r"(\s+#.*)$", rest)
            lines[i] = f"{m.group(1)}{part}:{m.group(2) or ' '}{_scalar(value)}" + \
                (comment.group(1) if comment else "")
            return "\n".join(lines) + "\n"
        start, indent = i + 1, indent + 2
        end = next((j for j in range(start, len(lines)) if lines[j].strip() and
                    not lines[j].lstrip().startswith("#") and
                    len(lines[j]) - len(lines[j].lstrip()) < indent), len(lines))
    return text


class OscInput:
    """OSC over UDP (python-osc): `/passersby/<section>/<key> value` sets a tunable
    (e.g. /passersby/look/painterly 0.4); `/passersby/capture` asks for a capture.

    Messages are coalesced as they arrive: the latest value per tunable, so a 60 Hz
    fader or a flood costs the render loop one rebuild per frame (`drain`), whatever
    the rate; an address that is no tunable, or a message that is not one plain value,
    is dropped here (logged once per address, a bounded number of addresses).
    Binds to localhost by default."""

    MAX_LOGGED = 64

    def __init__(self, host: str, port: int) -> None:
        from pythonosc.dispatcher import Dispatcher
        from pythonosc.osc_server import ThreadingOSCUDPServer

        self._lock = threading.Lock()
        self._latest: dict[str, Any] = {}
        self._capture = False
        self._logged: set[str] = set()
        dispatcher = Dispatcher()
        dispatcher.map("/passersby/*", self._on)
        try:
            self._server = ThreadingOSCUDPServer((host, port), dispatcher)
        except (OSError, OverflowError, UnicodeError) as e:
            why = getattr(e, "strerror", None) or str(e)
            raise ConfigError(f"cannot listen for OSC on {short(host)}:{port} ({why}); set "
                              "tune.osc_port to a free port, or 0 for none") from None
        self.address = self._server.server_address
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="passersby-osc")
        self._thread.start()
        log.info("OSC on udp://%s:%d (/passersby/<section>/<key> value)", *self.address)

    def _on(self, address: str, *args: Any) -> None:
        key = address[len("/passersby/"):].replace("/", ".")
        if key == "capture":
            with self._lock:
                self._capture = True
            return
        kind = TUNABLE_KEYS.get(key)
        if kind is None or len(args) != 1 or not isinstance(args[0], (bool, int, float, str)):
            self._drop(address, "not a tunable" if kind is None else "expects one value")
            return
        with self._lock:
            self._latest[key] = args[0]

    def _drop(self, address: str, why: str) -> None:
        with self._lock:
            if address in self._logged or len(self._logged) >= self.MAX_LOGGED:
                return
            self._logged.add(address)
        log.warning("OSC %s ignored: %s (see the overlay for the tunables; "
                    "/passersby/<section>/<key> value)", short(address), why)

    def drain(self) -> list[tuple[str, Any]]:
        """This frame's messages: at most one per tunable (its latest value), then
        ("capture", None) if a capture was asked for."""
        with self._lock:
            out, self._latest = list(self._latest.items()), {}
            if self._capture:
                out.append(("capture", None))
            self._capture = False
        return out

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
