#!/usr/bin/env bash
# Sets up, indexes the bundled sample manuals into the embedded store and answers a question
# with cited sections (title, heading path, page, source).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false HAYSTACK_TELEMETRY_ENABLED=False
supportbot ingest knowledge/samples --product demo --progress
supportbot search "How do I factory reset the router?" --top-k 3
supportbot search "What does error E07 mean on the coffee machine?" --top-k 3
supportbot ask "How do I descale the coffee machine?" --generator extractive
supportbot ask "How long do I hold the reset button to factory reset the router?" --stream
