"""The learning loop: dataset (curated, PII-redacted, split) -> LoRA training -> evaluation gate ->
adapter registry. Imports only ``core``; what it needs from ``knowledge`` (prompt rendering, the base
model directory, generation) is passed in by the CLI (``api/cli_training.py``)."""
