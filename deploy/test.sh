#!/usr/bin/env bash
# Set up with the test tools, then run the whole test suite headless.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/setup.sh --test
exec .venv/bin/python -m pytest -q "$@"
