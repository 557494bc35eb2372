#!/usr/bin/env bash
# Start the player for passersby.service (as user passersby): wait for X, pick a
# config that loads, then exec the player (exec: it becomes the unit's main process,
# so its sd_notify READY=1 / WATCHDOG=1 are accepted with NotifyAccess=main).
#
# A config the collector broke must not darken the screen: the last config that
# loaded is kept in the state folder and used instead, else the built-in defaults;
# the journal says which and why.
#
# Environment (set by the unit): PASSERSBY_CONFIG, DISPLAY, XAUTHORITY,
# STATE_DIRECTORY; PASSERSBY_VENV (default: the venv of the release this script is
# in), PASSERSBY_X_WAIT_S (how long to wait for X, default 90).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# the release itself, not the "current" link: an update switching "current" while we
# run must not mix two versions in one process (install.sh keeps the previous one)
venv=${PASSERSBY_VENV:-$(cd "$here/../.." && pwd -P)/venv}
cfg=${PASSERSBY_CONFIG:-/etc/passersby/config.yaml}
state=${STATE_DIRECTORY:-/var/lib/passersby}
state=${state%%:*}
last_good=$state/config.last-good.yaml
say() { echo "launch: $*"; }

# 1. X comes from passersby-display.service, which may still be waiting for a screen
#    or starting: wait (90 s) for its socket and cookie, then exit non-zero so systemd
#    retries (Restart=always) rather than the player failing on no display.
display=${DISPLAY:-:0}
number=${display#:}
sock=/tmp/.X11-unix/X${number%%.*}
wait_s=${PASSERSBY_X_WAIT_S:-90}
for _ in $(seq 1 $((wait_s * 2))); do
  [ -S "$sock" ] && { [ -z "${XAUTHORITY:-}" ] || [ -r "$XAUTHORITY" ]; } && break
  sleep 0.5
done
if [ ! -S "$sock" ]; then
  say "no X server at $display ($sock missing) after $wait_s s; see journalctl -u passersby-display"
  exit 1
fi

# 2. The config: the collector's if it loads, else the last good one, else defaults.
valid() {   # one line naming the key and the fix on stderr (the journal), no traceback
  "$venv/bin/python" -c '
import sys
from passersby.common import config
try:
    config.load(sys.argv[1])
except config.ConfigError as e:
    sys.exit(f"launch: {e}")' "$1"
}
args=()
if [ -e "$cfg" ] && valid "$cfg"; then
  args=(--config "$cfg")
  if ! cmp -s "$cfg" "$last_good" 2>/dev/null; then
    if ! { cp -f "$cfg" "$last_good.tmp" && mv -f "$last_good.tmp" "$last_good"; } 2>/dev/null
    then
      say "could not keep a copy of $cfg in $state (read-only?); going on"
    fi
  fi
elif [ -e "$last_good" ] && valid "$last_good"; then
  say "$cfg does not load (error above): playing with the last good copy $last_good;" \
      "fix the file, then: systemctl restart passersby"
  args=(--config "$last_good")
else
  say "$cfg does not load or is missing, and there is no last good copy: playing" \
      "with the built-in defaults; fix the file, then: systemctl restart passersby"
fi

# 3. The player. SIGTERM from systemd quits it like Esc, saving the stream's place.
exec "$venv/bin/passersby" run --state "$state" "${args[@]}"
