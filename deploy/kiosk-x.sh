#!/usr/bin/env bash
# The kiosk display: a bare X server on tty7, no window manager, no login, no cursor,
# no blanking. Run as root by passersby-display.service; the player
# (passersby.service, user passersby) is its only client, with DISPLAY=:0 and the
# cookie written here. Why X and not a Wayland kiosk compositor: see
# deploy/systemd/passersby-display.service.
#
# Environment: PASSERSBY_X_DISPLAY=:0, PASSERSBY_X_VT=vt7, PASSERSBY_USER=passersby,
# RUNTIME_DIRECTORY (systemd's RuntimeDirectory=, where the cookie goes).
set -euo pipefail

display=${PASSERSBY_X_DISPLAY:-:0}
vt=${PASSERSBY_X_VT:-vt7}
user=${PASSERSBY_USER:-passersby}
run=${RUNTIME_DIRECTORY:-/run/passersby-display}
auth=$run/Xauthority
say() { echo "kiosk-x: $*"; }

# 1. The kernel console must not blank either: before X takes the screen (and
#    while it restarts) the console is what shows. Writable at run time; not fatal.
if [ -w /sys/module/kernel/parameters/consoleblank ]; then
  echo 0 > /sys/module/kernel/parameters/consoleblank || true
fi

# 2. NVIDIA: create /dev/nvidia-uvm and /dev/nvidia0 now, as root. CUDA would do it
#    lazily through the setuid nvidia-modprobe, which the player's NoNewPrivileges=
#    forbids; without the nodes torch would silently fall back to the CPU.
if command -v nvidia-modprobe >/dev/null 2>&1; then
  nvidia-modprobe -u -c=0 || say "nvidia-modprobe failed; CUDA may be unavailable to the player"
fi

# 3. An X cookie readable by the player's group only, so other local users cannot
#    draw on (or read) the screen. A "wild" entry (family ffff) keeps working if the
#    hostname changes while X runs (hostname-keyed entries would then stop matching).
mkdir -p "$run"
rm -f "$auth"
touch "$auth"
chmod 0640 "$auth"
cookie=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
xauth -q -f "$auth" add "$display" MIT-MAGIC-COOKIE-1 "$cookie"
xauth -q -f "$auth" nlist "$display" | sed -e 's/^..../ffff/' | xauth -q -f "$auth" nmerge -
if getent group "$user" >/dev/null; then
  chgrp "$user" "$run" "$auth"
  chmod 0750 "$run"
fi

# 4. The server. -nolisten tcp: no network listener. -s 0 -dpms: no screen saver,
#    no display power management (never a dark screen). -nocursor: a sealed unit
#    has no pointer. -noreset: X stays up while the player restarts (no modeset
#    flash, faster recovery). Not -novtswitch: it would stop X from switching to
#    its VT at start (display managers use it because they switch first), leaving
#    the console on screen. Ctrl-Alt-F2 stays possible for a technician with a
#    keyboard (Ctrl-Alt-F7 returns). exec: systemd supervises the server itself.
say "starting X on $display $vt"
exec Xorg "$display" "$vt" -auth "$auth" -nolisten tcp -s 0 -dpms -nocursor -noreset
