#!/usr/bin/env bash
# Set up with the test tools, lint, then run the whole test suite headless.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/setup.sh --test
# lint first (seconds): pyproject's [tool.ruff] says which rules and why
.venv/bin/ruff check passersby tests bench deploy
exec .venv/bin/python -m pytest -q "$@"
