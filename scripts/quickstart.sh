#!/usr/bin/env bash
# Sets up, indexes the bundled sample manuals into the embedded store, answers two questions with
# cited sections (title, heading path, page, source), then serves the HTTP API on 127.0.0.1:8000
# with a fresh API key for the default tenant (and a public key for the chat widget demo page).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false HAYSTACK_TELEMETRY_ENABLED=False
# the two product folders: knowledge/samples/README.md describes the samples and is not a manual
supportbot ingest knowledge/samples/nimbus-r7 knowledge/samples/lumen-brew3 --product demo --progress
supportbot search "How do I factory reset the router?" --top-k 3
supportbot ask "How do I descale the coffee machine?" --generator extractive
supportbot ask "How long do I hold the reset button to factory reset the router?" --stream
supportbot db upgrade
if ! supportbot tenants list | cut -f1 | grep -qx default; then
  supportbot tenants create default --name "Sample manuals"
fi
KEY=$(supportbot keys create --tenant default --name quickstart)
echo "API key for tenant 'default' (shown once): $KEY"
echo "try: curl -s -H \"Authorization: Bearer $KEY\" -H 'Content-Type: application/json' \\"
echo "       -d '{\"message\": \"How do I factory reset the router?\", \"channel\": \"web\"}' http://127.0.0.1:8000/v1/chat"
WIDGET_KEY=$(supportbot keys create --tenant default --public --name quickstart-widget)
mkdir -p data
cat > data/widget-demo.html <<HTML
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>supportbot widget demo</title></head>
<body><h1>Sample product page</h1><p>The chat button is in the corner.</p>
<script src="http://127.0.0.1:8000/widget.js" data-api-key="$WIDGET_KEY"></script></body></html>
HTML
echo "chat widget demo: open $(pwd)/data/widget-demo.html in a browser (public key ${WIDGET_KEY:0:12}...)"
echo "agent-assist panel: http://127.0.0.1:8000/assist#key=$KEY"
exec supportbot serve --host 127.0.0.1 --port 8000
