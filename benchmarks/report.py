"""How every benchmark ends: its JSON report printed, and written to --out when given."""
from __future__ import annotations

import json
from pathlib import Path


def emit(report: dict, out: Path | None) -> None:
    """Print `report` as indented JSON, and write it to `out` (creating its folder) when given."""
    text = json.dumps(report, indent=2)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
