"""`passersby doctor`: is this box able to show the stream? Each check says ok/warn/fail,
one line of what it found, and what to do about it.

Checks: config, torch (and its device), GL (a standalone EGL context), displays,
weights (hashes against the manifests), state (folder readable/writable, state
file loads), disk space of the state folder. `fail` means the player cannot work
as configured; `warn` means it works, degraded (e.g. on the CPU, or in memory).
Nothing is imported at module import: torch and GL are loaded inside their checks.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from passersby.common import config

log = logging.getLogger(__name__)

SERVICE_CONFIG = Path("/etc/passersby/config.yaml")   # what deploy/install.sh writes
SERVICE_STATE = Path("/var/lib/passersby")            # the unit's StateDirectory=
DRM_ROOT = Path("/sys/class/drm")
SOFTWARE_GL = ("llvmpipe", "softpipe", "swrast", "software")
DISK_FAIL_MB, DISK_WARN_MB = 16, 256


@dataclass
class Check:
    name: str
    status: str          # "ok" | "warn" | "fail"
    message: str         # one line: what was found
    fix: str = ""        # what to do (empty when ok)


@dataclass
class Context:
    """What the checks share: the config (defaults when the file is bad) and findings."""
    cfg: config.Config
    config_path: Path | None
    state_dir: Path
    cuda_name: str | None = None    # set by the torch check when a CUDA device works


def config_path(given: str | None) -> Path | None:
    """--config, else $PASSERSBY_CONFIG, else the service's file when it exists."""
    if given:
        return Path(given)
    if os.environ.get("PASSERSBY_CONFIG"):
        return Path(os.environ["PASSERSBY_CONFIG"])
    return SERVICE_CONFIG if SERVICE_CONFIG.exists() else None


def check_config(path: Path | None) -> tuple[Check, config.Config]:
    if path is None:
        return Check("config", "ok", "no --config: the built-in defaults "
                     "(passersby/common/defaults.yaml)"), config.load()
    try:
        cfg = config.load(path)
    except config.ConfigError as e:
        return Check("config", "fail", str(e),
                     f"edit {path}: the message names the key and what is allowed "
                     "(passersby/common/defaults.yaml lists every key); until then the service "
                     "starts with its last good copy or the defaults"), config.load()
    return Check("config", "ok", f"{path} is valid"), cfg


def check_torch(ctx: Context) -> Check:
    try:
        import torch
    except Exception as e:  # ImportError, or a broken CUDA library underneath
        return Check("torch", "fail", f"cannot import torch ({e})",
                     "re-run deploy/install.sh (unit) or deploy/setup.sh (checkout); on a "
                     "Jetson install JetPack's torch")
    want = ctx.cfg.stream.device
    version = f"torch {torch.__version__}"
    if want == "cpu":
        return Check("torch", "ok", f"{version} on the CPU (stream.device: cpu)")
    if torch.cuda.is_available():
        try:
            name = torch.cuda.get_device_name(0)
            (torch.ones(4, device="cuda") * 2).sum().item()     # the device really computes
        except Exception as e:
            return Check("torch", "fail", f"{version} sees CUDA but cannot use it ({e})",
                         "check the NVIDIA driver with nvidia-smi; reboot after a driver "
                         "update; or set stream.device: cpu")
        ctx.cuda_name = name
        return Check("torch", "ok", f"{version}, CUDA {torch.version.cuda} on {name}")
    why = "a CPU-only build" if torch.version.cuda is None else "no usable NVIDIA driver/device"
    if want == "cuda":
        return Check("torch", "fail", f"stream.device is cuda but {version} sees no CUDA "
                     f"device ({why})", "fix the NVIDIA driver (nvidia-smi) or set "
                     "stream.device: auto")
    return Check("torch", "warn", f"{version} sees no CUDA device ({why}): the stream "
                 "runs on the CPU", "expected on a development machine; on the unit check "
                 "nvidia-smi, and that torch is a CUDA build (PASSERSBY_TORCH, or JetPack's)")


def check_gl(ctx: Context) -> Check:
    import moderngl

    backend, egl_error = "EGL", ""
    try:
        gl = moderngl.create_standalone_context(require=330, backend="egl")
    except Exception as e:  # glcontext raises several types
        egl_error, backend = str(e), "default backend"
        try:
            gl = moderngl.create_standalone_context(require=330)
        except Exception as e2:
            return Check("gl", "fail", f"no OpenGL 3.3 context: EGL failed ({egl_error}); "
                         f"the default backend failed ({e2})",
                         "install the GPU's GL/EGL libraries (NVIDIA driver, or "
                         "apt-get install -y libegl1 libgl1-mesa-dri)")
    try:
        renderer = gl.info.get("GL_RENDERER", "?")
        version = gl.version_code
    finally:
        gl.release()
    msg = f"{backend}: OpenGL {version // 100}.{version % 100 // 10} on {renderer}"
    software = any(s in renderer.lower() for s in SOFTWARE_GL)
    if egl_error:
        return Check("gl", "warn", f"{msg} (EGL failed: {egl_error})",
                     "install the EGL library of the GPU driver (libegl1; on NVIDIA "
                     "libnvidia-egl) so offscreen renders work without a display")
    if software and ctx.cuda_name:
        return Check("gl", "warn", f"{msg}: GL runs in software although CUDA sees "
                     f"{ctx.cuda_name}", "install the NVIDIA GL/EGL libraries "
                     "(libnvidia-gl-<version> / libnvidia-egl) matching the driver")
    return Check("gl", "ok", msg + (" (software renderer)" if software else ""))


def _connectors(drm: Path) -> dict[str, str]:
    found = {}
    for status in sorted(drm.glob("card*-*/status")):
        try:
            found[status.parent.name] = status.read_text().strip()
        except OSError:
            continue
    return found


def check_displays(ctx: Context, env: dict[str, str] | None = None,
                   drm: Path = DRM_ROOT) -> Check:
    env = dict(os.environ) if env is None else env
    conns = _connectors(drm)
    connected = [n for n, s in conns.items() if s == "connected"]
    screens = (f"connected: {', '.join(connected)}" if connected else
               f"no screen connected ({len(conns)} connectors)" if conns else
               "no DRM connectors visible (container, no KMS driver, or NVIDIA without "
               "nvidia-drm.modeset=1)")
    shown = [f"{k}={env[k]}" for k in ("DISPLAY", "WAYLAND_DISPLAY") if env.get(k)]
    if not shown:
        return Check("displays", "warn", f"no DISPLAY or WAYLAND_DISPLAY; {screens}",
                     "`passersby run` needs a display: on the unit passersby-display.service "
                     "starts X (DISPLAY=:0); here use `passersby render` for offscreen output")
    disp = env.get("DISPLAY", "")
    if disp.startswith(":"):
        sock = Path("/tmp/.X11-unix") / f"X{disp[1:].split('.')[0]}"
        if not sock.exists():
            return Check("displays", "warn", f"DISPLAY={disp} but {sock} does not exist; "
                         f"{screens}", "start the X server (systemctl start "
                         "passersby-display) or fix DISPLAY")
    if conns and not connected:
        return Check("displays", "warn", f"{', '.join(shown)}; {screens}",
                     "plug in a screen (the service waits for one) and check its cable/input")
    return Check("displays", "ok", f"{', '.join(shown)}; {screens}")


def check_weights(ctx: Context) -> Check:
    from passersby.generator import weights
    from passersby.player import screens

    wanted: dict[Path, list[str]] = {}       # every screen's weights (screens may differ)
    absent: list[str] = []                   # default refiner/identity not made yet
    for s in screens.entries(ctx.cfg):
        root = weights.weights_dir(s.weights.dir)
        names = wanted.setdefault(root, [])
        optional = {}
        for key in ("refiner", "identity"):
            name = getattr(s.weights, key)
            if weights.optional_absent(root, name, key):
                absent += [f"{key} {name}"] if f"{key} {name}" not in absent else []
                name = None
            optional[key] = name
        names += [n for n in (s.weights.generator, s.weights.encoder, optional["refiner"],
                              optional["identity"]) if n and n not in names]
    bad = [(name, msg, fix) for root, names in wanted.items()
           for name, good, msg, fix in weights.verify(root, names) if not good]
    if not bad:
        note = f"; {', '.join(absent)} absent: plays without" if absent else ""
        return Check("weights", "ok", "; ".join(f"{', '.join(names)} match their manifests "
                                                f"in {root}" for root, names in wanted.items())
                     + note)
    name, msg, fix = bad[0]
    fix = weights.FIX_FETCH if name == weights.STANDIN["name"] else fix or "re-make the package"
    more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
    return Check("weights", "fail", f"{name}: {msg}{more}", fix)


def check_state(ctx: Context) -> Check:
    from passersby.common import state

    folder = ctx.state_dir
    if not folder.exists():
        parent = next((p for p in folder.parents if p.exists()), Path("/"))
        if os.access(parent, os.W_OK | os.X_OK):
            return Check("state", "ok", f"{folder} does not exist yet: the first start makes it")
        return Check("state", "warn", f"{folder} does not exist and {parent} is not writable",
                     "the service's StateDirectory=passersby makes /var/lib/passersby; "
                     "elsewhere pass --state to a writable folder")
    probe = folder / f".doctor-probe-{os.getpid()}"
    try:
        with open(probe, "w", encoding="utf-8") as f:
            f.write("probe")
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as e:
        return Check("state", "warn", f"{folder} is not writable ({e.strerror}): the player "
                     "runs on in memory and forgets its place at a restart",
                     f"give the player's user the folder (chown -R passersby: {folder}), "
                     "free disk space, or remount it read-write")
    loaded = state.load(folder)
    files = [n for n in (state.CURRENT, state.PREVIOUS) if (folder / n).exists()]
    if loaded is None and files:
        return Check("state", "warn", f"{', '.join(files)} in {folder} cannot be read: the "
                     "next start begins a new edition", f"restore a backup into {folder}, "
                     "or delete the files to start afresh on purpose")
    if loaded is None:
        return Check("state", "ok", f"{folder} is writable; no state yet (first start)")
    return Check("state", "ok", f"{folder}: edition {loaded.seed:032x}"[:len(str(folder)) + 18]
                 + f"..., step {loaded.step}")


def check_disk(ctx: Context) -> Check:
    where = next((p for p in (ctx.state_dir, *ctx.state_dir.parents) if p.exists()), Path("/"))
    usage = shutil.disk_usage(where)
    free_mb = usage.free / 2**20
    msg = f"{free_mb / 1024:.1f} GB free of {usage.total / 2**30:.1f} GB at {where}"
    fix = ("free space: `journalctl --vacuum-size=200M`, old renders, `apt-get clean`; "
           "the state file itself is a few kB")
    if free_mb < DISK_FAIL_MB:
        return Check("disk", "fail", msg + ": state writes will fail", fix)
    if free_mb < DISK_WARN_MB:
        return Check("disk", "warn", msg, fix)
    return Check("disk", "ok", msg)


CHECKS: list[tuple[str, Callable[[Context], Check]]] = [
    ("torch", check_torch), ("gl", check_gl), ("displays", check_displays),
    ("weights", check_weights), ("state", check_state), ("disk", check_disk)]


def run(config_file: str | None = None, state_dir: str | None = None) -> list[Check]:
    """All checks, in order; an unexpected error in one becomes its `fail`, never a crash."""
    from passersby.common import state

    path = config_path(config_file)
    first, cfg = check_config(path)
    if state_dir:
        folder = Path(state_dir)
    elif path == SERVICE_CONFIG and not os.environ.get("STATE_DIRECTORY"):
        folder = SERVICE_STATE          # checking the service's set-up: its state too
    else:
        folder = state.default_dir()
    ctx = Context(cfg, path, folder)
    results = [first]
    for name, fn in CHECKS:
        try:
            results.append(fn(ctx))
        except Exception as e:
            log.debug("check %s crashed:\n%s", name, traceback.format_exc())
            results.append(Check(name, "fail", f"the check itself failed: "
                                 f"{type(e).__name__}: {e}",
                                 "run `passersby -v doctor` for the traceback and report it"))
    return results


def report(results: list[Check], as_json: bool) -> str:
    if as_json:
        doc: dict[str, Any] = {"ok": all(c.status != "fail" for c in results),
                               "checks": [asdict(c) for c in results]}
        return json.dumps(doc, indent=2)
    lines = []
    for c in results:
        lines.append(f"{c.status:5s} {c.name:9s} {c.message}")
        if c.fix:
            lines.append(f"{'':15s} -> {c.fix}")
    return "\n".join(lines)


def main(config_file: str | None, state_dir: str | None, as_json: bool) -> int:
    """Print the report; 0 when nothing failed, 1 otherwise."""
    results = run(config_file, state_dir)
    print(report(results, as_json))
    return 0 if all(c.status != "fail" for c in results) else 1
