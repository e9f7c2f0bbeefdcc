"""The lifecycle benchmark runs end to end on a few cases and prints its ratio (no timing asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "lifecycle.py"


def test_lifecycle_benchmark_prints_a_ratio() -> None:
    result = subprocess.run([sys.executable, str(BENCH), "--cases", "3", "--repeat", "1"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^ratio: \d+(\.\d+)?$", result.stdout, re.MULTILINE), result.stdout
    assert "stored bytes per completed case" in result.stdout
