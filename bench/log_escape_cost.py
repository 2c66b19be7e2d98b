"""What escaping a text log line costs: escape_controls (every character of Unicode's categories
Cc, Cf, Zl, Zp and Cs) on an access line, a message with accents and one with emoji, beside the
ceiling: escaping the C0 and C1 controls alone (Cc), the least a text log must do to keep one
entry on one line. Times are CPU time of this process per call, the best of the runs.

And what a JSON access line costs (JsonFormatter.access_line, which writes everything past
ASCII as a \\uXXXX escape): the usual ASCII line, from its kept template, beside one whose path
carries a right-to-left override, which is formatted from a record each time.

    python bench/log_escape_cost.py            # writes bench/results/log_escape_cost.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine  # noqa: E402
from ehr_gateway.server.logs import JsonFormatter, escape_controls  # noqa: E402

LINES = {
    "access line": (
        "2026-12-01 00:31:29,123 INFO ehr_gateway.access [4f1c2a9b8d7e6f50] "
        "POST /graphql 200 3.2ms TenantSettings"
    ),
    "accented message": "tenant clinique-éàü-Ωmega: settings saved by ana@hôpital.example " * 2,
    "emoji message": "tenant 🏥 clinic: note 👩\u200d⚕️ saved by ana@hospital.example",
}
_CC = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _cc_only(text: str) -> str:
    return _CC.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


ACCESS_PATHS = {"ascii access line": "/graphql", "access line with U+202E": "/graphql\u202e"}


def _json_access_line(path: str) -> Callable[[str], object]:
    formatter = JsonFormatter()

    def line(_: str) -> object:
        return formatter.access_line(
            1_764_550_289.123, "4f1c2a9b8d7e6f50-1a", "POST", path, 200, 3.21,
            "query:integrationSettings", "hit",
        )  # fmt: skip

    return line


def _ns_per_call(escape: Callable[[str], str], text: str, calls: int, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        for _ in range(calls):
            escape(text)
        best = min(best, time.process_time() - start)
    return best / calls * 1e9


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results = {
        name: {
            "escape_controls_ns": round(_ns_per_call(escape_controls, text, args.calls, args.runs)),
            "ceiling_cc_only_ns": round(_ns_per_call(_cc_only, text, args.calls, args.runs)),
        }
        for name, text in LINES.items()
    }
    json_lines = {
        name: round(_ns_per_call(_json_access_line(path), "", args.calls, args.runs))
        for name, path in ACCESS_PATHS.items()
    }
    report = {
        "machine": machine(),
        "load_average": os.getloadavg(),
        "per_call": results,
        "json_access_line_ns": json_lines,
    }
    out = ROOT / "bench" / "results" / "log_escape_cost.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    for name, row in results.items():
        print(
            f"{name}: escape_controls {row['escape_controls_ns']} ns, "
            f"Cc only {row['ceiling_cc_only_ns']} ns CPU per call"
        )
    for name, ns in json_lines.items():
        print(f"JSON {name}: {ns} ns CPU per line")
    print(f"load average {report['load_average']}")


if __name__ == "__main__":
    main()
