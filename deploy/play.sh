#!/usr/bin/env bash
# Set up, then play: fullscreen when there is a screen, otherwise render 30 s of
# the stream offscreen to a video file and say where it is.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/setup.sh
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  exec .venv/bin/passersby run "$@"
fi
echo "play: no display found (DISPLAY and WAYLAND_DISPLAY are unset): rendering offscreen"
exec .venv/bin/passersby render --seconds 30 --size 512x512 --out renders/passersby.mp4 "$@"
