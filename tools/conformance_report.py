"""Sum up a ``./dev conformance`` run: checks per scenario, against the baseline.

    python tools/conformance_report.py --baseline conformance/baseline.yml var/conformance/<run>

Reads every ``checks.json`` the suite wrote under the run directory (one
directory per scenario run, named ``server-<scenario>-<time>``), prints one
line per scenario and the totals, and exits 1 if a check failed in a scenario
the baseline does not list, or a listed scenario passed (a stale entry).
The baseline is the suite's expected-failures format; every entry needs a
reason (a ``# why`` comment on its line) and there may be at most five.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

MAX_BASELINE = 5


def baseline(path: Path) -> dict[str, str]:
    entries: dict[str, str] = {}
    if not path.exists():
        return entries
    for line in path.read_text().splitlines():
        match = re.match(r"\s*-\s*([\w/.-]+)\s*(?:#\s*(.*))?$", line)
        if match:
            if not match[2]:
                sys.exit(f"{path}: the entry {match[1]!r} needs a reason (# why, on its line).")
            entries[match[1]] = match[2]
    if len(entries) > MAX_BASELINE:
        sys.exit(f"{path}: at most {MAX_BASELINE} expected failures, found {len(entries)}.")
    return entries


def results(run: Path) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for checks in sorted(run.rglob("checks.json")):
        scenario = re.sub(r"^server-|-\d{4}-\d\d-\d\dT.*$", "", checks.parent.name)
        found[scenario] = json.loads(checks.read_text())  # a later run of a scenario replaces an earlier one
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("run", type=Path)
    parser.add_argument("--baseline", type=Path, required=True)
    args = parser.parse_args()
    expected = baseline(args.baseline)
    passed = failed = 0
    unexpected, stale = [], []
    for scenario, checks in results(args.run).items():
        bad = [c for c in checks if c["status"] == "FAILURE"]
        good = [c for c in checks if c["status"] == "SUCCESS"]
        passed, failed = passed + len(good), failed + len(bad)
        mark = "✓" if not bad else ("~" if scenario in expected else "✗")
        print(f"{mark} {scenario}: {len(good)} passed, {len(bad)} failed")
        for check in bad:
            print(f"    {check['id']}: {check.get('errorMessage', '')[:300]}")
        if bad and scenario not in expected:
            unexpected.append(scenario)
        if not bad and scenario in expected:
            stale.append(scenario)
    for scenario, why in expected.items():
        print(f"baseline: {scenario} ({why})")
    print(f"conformance: {passed} passed, {failed} failed")
    if unexpected:
        print("failing outside the baseline: " + ", ".join(unexpected))
    if stale:
        print("passing but in the baseline (remove them): " + ", ".join(stale))
    return 1 if unexpected or stale else 0


if __name__ == "__main__":
    sys.exit(main())
