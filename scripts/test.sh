#!/usr/bin/env bash
# Sets up (idempotent) and runs the whole test suite, slow and integration tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false HAYSTACK_TELEMETRY_ENABLED=False
ruff check .
mypy
python -m pytest -q
