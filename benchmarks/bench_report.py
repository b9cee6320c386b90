"""How long ``aicircle report`` takes on the shipped model (budget: 3 minutes on 2 cores).

Builds the full report (default sizes: the predictive ensemble's 4000 draws, Sobol N = 1024) into a
temporary folder and prints the machine, the time of each stage (from the report's manifest) and the
total. Time it on a quiet machine: the stages run in one process. Exit status 0 when the total is
under BUDGET_S.

Run:  .venv/bin/python benchmarks/bench_report.py      (about two minutes)
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from aicircle.study.report import build_report

BUDGET_S = 180.0  # the report's budget: 3 minutes on 2 cores


def main() -> int:
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        out = build_report(Path(tmp) / "report", seed=0, progress=False)
        total = time.perf_counter() - t0
        manifest = json.loads((out / "manifest.json").read_text())
    for stage, seconds in manifest["timings_s"].items():
        print(f"  {stage:<55} {seconds:7.1f} s")
    print(f"total: {total:.1f} s (budget {BUDGET_S:.0f} s)")
    return 0 if total <= BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
