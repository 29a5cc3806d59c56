"""How every benchmark prints its figures: one JSON object with ``--json``, else one line per figure."""

from __future__ import annotations

import json
from typing import Any


def print_report(report: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report))
        return
    width = max(len(key) for key in report) + 2
    for key, value in report.items():
        print(f"{key:{width}} {json.dumps(value) if isinstance(value, dict) else value}")
