#!/usr/bin/env bash
# Wait until a screen is connected, so that a unit booted with no monitor waits
# quietly (one log line a minute) instead of starting X, failing and crash-looping.
# Run by passersby-display.service as ExecStartPre (TimeoutStartSec=infinity there).
#
# A screen counts as connected when any DRM connector's status
# (/sys/class/drm/card*-*/status) is not "disconnected" ("connected", or "unknown",
# which some outputs always report). When no connector is visible at all, the GPU
# driver may still be loading (early boot): we give it a little while; after that
# (NVIDIA without nvidia-drm.modeset=1, or an unusual driver) we cannot tell, so we
# go on: waiting forever on a box that can show pictures would be a permanently dark
# screen.
#
# Environment (for tests and odd boxes):
#   PASSERSBY_DRM=/sys/class/drm   where the connectors are
#   PASSERSBY_WAIT_POLL_S=2        seconds between looks
#   PASSERSBY_WAIT_LOG_S=60        seconds between "still waiting" lines
#   PASSERSBY_WAIT_MAX_S=0         give up (exit 1) after this long; 0 = wait forever
#   PASSERSBY_WAIT_KMS_S=20        how long to wait for connectors to appear at all
#   PASSERSBY_WAIT_DISPLAY=0       skip the wait entirely
set -uo pipefail

drm=${PASSERSBY_DRM:-/sys/class/drm}
poll=${PASSERSBY_WAIT_POLL_S:-2}
log_every=${PASSERSBY_WAIT_LOG_S:-60}
max=${PASSERSBY_WAIT_MAX_S:-0}
kms_grace=${PASSERSBY_WAIT_KMS_S:-20}

say() { echo "wait-for-display: $*"; }

if [ "${PASSERSBY_WAIT_DISPLAY:-1}" = 0 ]; then
  say "skipped (PASSERSBY_WAIT_DISPLAY=0)"
  exit 0
fi

# Prints "name=status ..." for every connector; returns 0 when one may show a picture,
# 1 when all are disconnected, 2 when there are none to look at.
look() {
  local f name status found=0 any=1 summary=""
  for f in "$drm"/card*-*/status; do
    [ -r "$f" ] || continue
    found=1
    name=${f%/status}
    name=${name##*/}
    status=$(cat "$f" 2>/dev/null || echo unknown)
    summary+="$name=$status "
    [ "$status" != disconnected ] && any=0
  done
  echo "${summary% }"
  [ "$found" = 1 ] || return 2
  return "$any"
}

start=$SECONDS
last_log=-1
while true; do
  summary=$(look)
  case $? in
    0) say "screen found (${summary}); starting"; exit 0 ;;
    2) if [ $((SECONDS - start)) -ge "$kms_grace" ]; then
         say "no DRM connectors under $drm: cannot tell whether a screen is connected;" \
             "starting anyway"
         exit 0
       fi
       sleep "$poll"
       continue ;;
  esac
  waited=$((SECONDS - start))
  if [ "$last_log" -lt 0 ] || [ $((SECONDS - last_log)) -ge "$log_every" ]; then
    say "no screen connected (${summary}); waiting for one, $((waited / 60)) min so far." \
        "Plug in a screen: the picture starts by itself."
    last_log=$SECONDS
  fi
  if [ "$max" -gt 0 ] && [ "$waited" -ge "$max" ]; then
    say "gave up after ${waited} s (PASSERSBY_WAIT_MAX_S=$max)"
    exit 1
  fi
  sleep "$poll"
done
