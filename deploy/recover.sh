#!/usr/bin/env bash
# The slow retry after the fast ones: run every few minutes by passersby-recover.timer.
# Restart=always restarts the display and the player within seconds, but after
# StartLimitBurst starts in StartLimitIntervalSec systemd gives up and leaves the
# unit "failed": a dark screen until someone comes. Here a failed unit gets its
# counters cleared and is started again, forever (a screen that comes back by itself
# once the cause goes away: a driver that settles, a disk that was full).
# A unit stopped on purpose (systemctl stop) is "inactive", not "failed": left alone.
set -uo pipefail

for unit in passersby-display.service passersby.service; do
  if systemctl is-failed --quiet "$unit"; then
    result=$(systemctl show --property=Result --value "$unit" 2>/dev/null || echo unknown)
    echo "recover: $unit is failed ($result); clearing its start limit and starting it again"
    systemctl reset-failed "$unit" || true
    # --no-block: the display may be waiting for a screen; do not hold this job open.
    systemctl start --no-block "$unit" || echo "recover: could not start $unit"
  fi
done
exit 0
