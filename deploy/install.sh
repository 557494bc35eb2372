#!/usr/bin/env bash
# Install passersby as a sealed kiosk unit: on boot, with no login, portraits on the
# wall display, forever. For Debian/Ubuntu on x86_64 with an NVIDIA GPU, and for an
# NVIDIA Jetson (aarch64, JetPack 6: Python >= 3.10, JetPack's own torch).
#
#   sudo deploy/install.sh            every step, in order (safe to run again)
#   sudo deploy/install.sh STEP...    only these: packages user release weights config
#                                     switch units power enable check
#
# Updating = pulling a new checkout and running this again: the new version is built
# next to the running one and only switched to once it imports and its weights
# verify; a failure anywhere before that leaves the running unit as it was.
# Environment:
#   PASSERSBY_TORCH=REQ        torch for the x86_64 venv (default torch==2.13.0)
#   PASSERSBY_SYSTEM_TORCH=1   use the system's torch (always on a Jetson)
#   PASSERSBY_KEEP_DESKTOP=1   leave a desktop/display manager as the boot target
#   PASSERSBY_PREFIX=/opt/passersby  PASSERSBY_ETC=/etc/passersby
#   PASSERSBY_BIN=/usr/local/bin     (where the `passersby` command for admins goes)
#   PASSERSBY_UNITS_DIR=/etc/systemd/system
set -Eeuo pipefail   # -E: the ERR trap below also fires inside functions
umask 022

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix=${PASSERSBY_PREFIX:-/opt/passersby}
etc=${PASSERSBY_ETC:-/etc/passersby}
user=passersby
state_dir=/var/lib/passersby
units_dir=${PASSERSBY_UNITS_DIR:-/etc/systemd/system}
py=${PYTHON:-python3}
jetson=0
if [ -e /etc/nv_tegra_release ] || grep -qi jetson /proc/device-tree/model 2>/dev/null; then
  jetson=1
fi
system_torch=${PASSERSBY_SYSTEM_TORCH:-$jetson}
[ "$jetson" = 1 ] && system_torch=1          # never a PyPI torch on a Jetson
torch_req=${PASSERSBY_TORCH:-torch==2.13.0}
changed=0                                   # 1: restart the player at the end

say() { echo "install: $*"; }
die() { echo "install: error: $*" >&2; exit 1; }
trap 'echo "install: failed (line $LINENO); a unit that was running still runs the previous version; fix the cause and run again" >&2' ERR
have_systemd() { [ -d /run/systemd/system ]; }   # false in a chroot or image build

[ "$(id -u)" = 0 ] || die "run as root (sudo $0): it creates a user, /opt and /etc files, units"

# packages: what the kiosk needs from the distribution, installed only when missing.
#   Xorg + libinput: the display server (see passersby-display.service for why X);
#   xauth: the X cookie; x11-xserver-utils: xrandr/xset for debugging screens;
#   libegl1/libgl1/libgl1-mesa-dri: GL for offscreen renders and a software fallback;
#   python3-venv: our own environment, apart from the system's Python packages.
step_packages() {
  local need=() pkg
  for pkg in xserver-xorg-core xserver-xorg-input-libinput xauth x11-xserver-utils \
             libegl1 libgl1 libgl1-mesa-dri python3 python3-venv python3-pip; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  if [ "${#need[@]}" -gt 0 ]; then
    say "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  # the GPU driver is the box's business (it differs per card and distribution); say so
  if [ "$jetson" = 0 ] && ! nvidia-smi >/dev/null 2>&1; then
    say "warning: no working NVIDIA driver (nvidia-smi failed): the stream will run on" \
        "the CPU and GL in software. Install the driver (Debian: nvidia-driver from" \
        "non-free; Ubuntu: ubuntu-drivers install), reboot, run this again."
  fi
}

# user: a dedicated system user without a login or a home of its own; the GPU device
# nodes belong to groups video (/dev/nvidia* on Jetson, /dev/dri/card*) and render.
step_user() {
  if ! id -u "$user" >/dev/null 2>&1; then
    useradd --system --user-group --home-dir "$state_dir" --no-create-home \
      --shell /usr/sbin/nologin --comment "passersby portrait player" "$user"
    say "created user $user"
  fi
  local group
  for group in video render; do
    if getent group "$group" >/dev/null; then usermod -aG "$group" "$user"; fi
  done
}

# The files of this checkout that make a release: git's view when it is a git
# checkout (tracked + new, not ignored: no venv, no renders, no fetched weights).
list_sources() {
  if git -c safe.directory="$src" -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -c safe.directory="$src" -C "$src" ls-files -z --cached --others --exclude-standard
  else
    (cd "$src" && find . \( -name .git -o -name .venv -o -name __pycache__ -o -path ./renders \
      -o -path ./state -o -path ./weights/.cache \) -prune -o -type f -print0) |
      sed -z 's#^\./##'
  fi
}

# The release id: a hash of the sources and of how torch is provided, so running this
# twice on the same checkout reuses the release instead of rebuilding it.
release_id() {   # TAR: writes the sources there, prints the id
  list_sources | tar -C "$src" --null -T - --ignore-failed-read --sort=name --mtime=@0 \
    --owner=0 --group=0 --numeric-owner -cf "$1" 2>/dev/null
  { sha256sum < "$1"; echo "$system_torch $torch_req $(uname -m)"; } | sha256sum | cut -c1-12
}

# The package's requirements except torch (read from pyproject.toml), for a venv
# that must keep the system's torch.
requirements_without_torch() {
  "$py" - "$1/pyproject.toml" <<'EOF'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
block = re.search(r"^dependencies\s*=\s*\[(.*?)^\]", text, re.S | re.M).group(1)
print("\n".join(r for r in re.findall(r'"([^"]+)"', block) if not re.match(r"torch\b", r)))
EOF
}

# release: sources + venv in $prefix/releases/ID, built beside the running one.
#   x86_64: a venv of its own with a pinned torch (an unpinned torch is whatever PyPI
#   has today); Jetson: --system-site-packages to see JetPack's CUDA torch, the
#   package installed with --no-deps so pip can never replace that torch, and numpy<2
#   because NVIDIA's torch builds are compiled against numpy 1.
rel=""
step_release() {
  "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
    die "$("$py" -V 2>&1) is too old: passersby needs Python >= 3.10 (Jetson: JetPack 6)"
  local id release_tar reqs
  release_tar=$(mktemp /tmp/passersby-src.XXXXXX)
  id=$(release_id "$release_tar")
  rel=$prefix/releases/$id
  if [ -e "$rel/.complete" ]; then
    say "release $id is already built"
  else
    say "building release $id in $rel"
    rm -rf "$rel"
    mkdir -p "$rel/src"
    tar -C "$rel/src" -xf "$release_tar"
    chmod 0755 "$rel"/src/deploy/*.sh
    local venv_args=() pip=("$rel/venv/bin/python" -m pip --disable-pip-version-check -q)
    [ "$system_torch" = 1 ] && venv_args=(--system-site-packages)
    "$py" -m venv "${venv_args[@]}" "$rel/venv"
    if [ "$system_torch" = 1 ]; then
      "$rel/venv/bin/python" -c 'import torch' 2>/dev/null || die "no system torch:" \
        "install NVIDIA's PyTorch for this JetPack into the system Python first" \
        "(docs.nvidia.com/deeplearning/frameworks/install-pytorch-jetson-platform); never PyPI's"
      echo "numpy<2" > "$rel/constraints.txt"
      mapfile -t reqs < <(requirements_without_torch "$rel/src")
      "${pip[@]}" install -c "$rel/constraints.txt" "${reqs[@]}"
      "${pip[@]}" install --no-deps -e "$rel/src"
    else
      "${pip[@]}" install "$torch_req"
      "${pip[@]}" install -e "$rel/src"    # editable: shaders/ and weights/ stay in src
    fi
    "$rel/venv/bin/python" -c 'import torch, moderngl, glfw, passersby.cli.main' ||
      die "the new release does not import; the running one is untouched"
    touch "$rel/.complete"
  fi
  rm -f "$release_tar"
}

current_release() {
  [ -n "$rel" ] && return 0
  [ -e "$prefix/current" ] || die "no release yet: run the release step first"
  rel=$(readlink -f "$prefix/current")
}

# weights: shared by all releases in $prefix/weights (the unit sets PASSERSBY_WEIGHTS,
# the config weights.dir). The packages committed to the project are refreshed from
# the release; the default generator is fetched once, checked by sha256.
step_weights() {
  current_release
  mkdir -p "$prefix/weights"
  cp -a "$rel/src/weights/." "$prefix/weights/"
  # the sitter memory's identity reader is converted, not committed (setup.sh does the same)
  if ! PASSERSBY_WEIGHTS=$prefix/weights "$rel/venv/bin/passersby" weights verify dlib-face-v1 \
      >/dev/null 2>&1; then
    say "making the identity reader in $prefix/weights"
    PASSERSBY_WEIGHTS=$prefix/weights "$rel/venv/bin/python" -m passersby.train.facenet_convert \
      >/dev/null || die "the identity reader could not be made (message above)"
  fi
  if PASSERSBY_WEIGHTS=$prefix/weights "$rel/venv/bin/passersby" weights verify >/dev/null 2>&1
  then
    say "weights verify in $prefix/weights"
  else
    say "fetching the default weights into $prefix/weights"
    PASSERSBY_WEIGHTS=$prefix/weights "$rel/venv/bin/passersby" weights fetch
    PASSERSBY_WEIGHTS=$prefix/weights "$rel/venv/bin/passersby" weights verify ||
      die "weights do not verify after fetching (message above)"
  fi
}

# config: /etc/passersby/config.yaml is the collector's: written once from the
# defaults (with weights.dir pointing at $prefix/weights), never overwritten. The
# current defaults go to config.yaml.dist for reference. A config this version
# cannot load is reported; the player then runs with its last good copy (launch.sh).
step_config() {
  current_release
  mkdir -p "$etc"
  local dist=$etc/config.yaml.dist
  "$py" - "$rel/src/passersby/common/defaults.yaml" "$prefix/weights" > "$dist.tmp" <<'EOF'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
head, sep, tail = text.partition("\nweights:\n")
tail = re.sub(r"^  dir: null\b.*$", f"  dir: {sys.argv[2]}   # shared by all releases (install.sh)",
             tail, count=1, flags=re.M)
print("# passersby on this unit. Written once by deploy/install.sh; edit freely, it is never\n"
      "# overwritten (the current defaults are in config.yaml.dist). After an edit:\n"
      "#   sudo systemctl restart passersby     check it: sudo passersby doctor\n")
sys.stdout.write(head + sep + tail)
EOF
  mv -f "$dist.tmp" "$dist"
  if [ ! -e "$etc/config.yaml" ]; then
    install -m 0640 "$dist" "$etc/config.yaml"
    say "wrote $etc/config.yaml"
  elif ! "$rel/venv/bin/python" -c 'import sys; from passersby.common import config
config.load(sys.argv[1])' "$etc/config.yaml"; then
    say "warning: $etc/config.yaml does not load with this version (error above); the" \
        "player uses its last good copy or the defaults until it is fixed"
  fi
  if getent group "$user" >/dev/null; then chgrp "$user" "$etc/config.yaml"; fi
}

# switch: point $prefix/current at the new release atomically (rename), keep the
# previous one for rollback (README), remove older ones. Units use .../current/...
step_switch() {
  current_release
  local id old
  id=$(basename "$rel")
  old=$(readlink "$prefix/current" 2>/dev/null || true)
  if [ "$old" != "releases/$id" ]; then
    ln -sfn "releases/$id" "$prefix/current.new"
    mv -Tf "$prefix/current.new" "$prefix/current"
    if [ -n "$old" ]; then ln -sfn "$old" "$prefix/previous"; fi
    changed=1
    say "now running release $id (previous: ${old:-none})"
  fi
  local keep_prev d
  keep_prev=$(readlink "$prefix/previous" 2>/dev/null || true)
  for d in "$prefix"/releases/*; do
    [ -d "$d" ] || continue
    case "releases/$(basename "$d")" in "releases/$id"|"$keep_prev") ;; *) rm -rf "$d" ;; esac
  done
  ln -sfn "$prefix/current/venv/bin/passersby" "${PASSERSBY_BIN:-/usr/local/bin}/passersby"
}

# units: the player, the X display, the slow-retry timer; paths adapted to $prefix.
# RestartSteps= (escalating restart delay) only where systemd >= 254 knows it.
install_if_changed() {   # SRC DEST: copy when different; note the change
  if ! cmp -s "$1" "$2"; then install -D -m 0644 "$1" "$2"; changed=1; fi
}
step_units() {
  current_release
  local f tmp version
  tmp=$(mktemp -d)
  for f in "$rel"/src/deploy/systemd/*.service "$rel"/src/deploy/systemd/*.timer; do
    sed -e "s#/opt/passersby#$prefix#g" -e "s#/etc/passersby#$etc#g" "$f" > "$tmp/${f##*/}"
    install_if_changed "$tmp/${f##*/}" "$units_dir/${f##*/}"
  done
  rm -rf "$tmp"
  version=$(systemctl --version 2>/dev/null | awk 'NR == 1 {print $2}')
  for f in passersby passersby-display; do
    if [ "${version:-0}" -ge 254 ] 2>/dev/null; then
      install_if_changed "$rel/src/deploy/systemd/restart-steps.conf" \
        "$units_dir/$f.service.d/restart-steps.conf"
    else
      rm -f "$units_dir/$f.service.d/restart-steps.conf"
    fi
  done
  have_systemd && systemctl daemon-reload
  return 0
}

# power: never blank, never sleep. X runs with -s 0 -dpms (kiosk-x.sh) and this
# xorg.conf.d snippet; the box must not suspend (sleep targets masked); a desktop
# login screen must not take the screen and the GPU (boot to multi-user.target).
step_power() {
  current_release
  install -D -m 0644 "$rel/src/deploy/xorg/10-passersby.conf" /etc/X11/xorg.conf.d/10-passersby.conf
  systemctl mask --quiet sleep.target suspend.target hibernate.target hybrid-sleep.target
  if [ -e "$units_dir/display-manager.service" ] && [ "${PASSERSBY_KEEP_DESKTOP:-0}" != 1 ] &&
     [ "$(systemctl get-default)" = graphical.target ]; then
    systemctl set-default multi-user.target
    say "boot target is now multi-user.target (no desktop login screen); undo with:" \
        "systemctl set-default graphical.target"
  fi
}

# enable: start on every boot; (re)start now without waiting (the display may be
# waiting for a screen). A new release or changed units restart the player.
step_enable() {
  systemctl enable --quiet passersby-display.service passersby.service passersby-recover.timer
  if ! have_systemd; then
    say "systemd is not running here (image build?): units enabled, they start on boot"
    return 0
  fi
  systemctl reset-failed passersby.service passersby-display.service 2>/dev/null || true
  if [ "$changed" = 1 ]; then
    systemctl restart --no-block passersby-display.service passersby.service
  else
    systemctl start --no-block passersby-display.service passersby.service
  fi
  systemctl start --no-block passersby-recover.timer
}

# check: what the player's user sees (informational: a missing screen is fine now).
step_check() {
  current_release
  say "passersby doctor (as user $user):"
  runuser -u "$user" -- env PASSERSBY_WEIGHTS="$prefix/weights" DISPLAY=:0 \
    XAUTHORITY=/run/passersby-display/Xauthority "$rel/venv/bin/passersby" doctor \
    --config "$etc/config.yaml" --state "$state_dir" || true
  say "done. Logs: journalctl -u passersby -u passersby-display -f"
}

steps=("$@")
[ "${#steps[@]}" -gt 0 ] || steps=(packages user release weights config switch units power enable check)
for s in "${steps[@]}"; do
  case $s in
    packages|user|release|weights|config|switch|units|power|enable|check) "step_$s" ;;
    *) die "unknown step $s (packages user release weights config switch units power enable check)" ;;
  esac
done
