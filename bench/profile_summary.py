"""Summarize py-spy's raw (folded) profiles: where a process's CPU samples went.

    python -m bench.profile_summary test-artifacts/bench/profile-service-1000x10-worker0.txt [--top 25]

Each line of a folded profile is ``frame;frame;...;frame COUNT``. Prints the
share of samples by *self* frame (the function on top of the stack) and by
*inclusive* frame (anywhere in the stack, counted once per sample), so a
profile reads as "x % of this process's CPU was in json.loads".
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

LINE = re.compile(r"^(.*) (\d+)$")


def frame_name(frame: str) -> str:
    # py-spy frames look like "function (path/to/file.py:123)"; keep function and file, not the line.
    frame = re.sub(r":\d+\)$", ")", frame.strip())
    frame = re.sub(r"\(.*?site-packages/", "(", frame)
    return re.sub(r"\(/[^)]*/(wt-[^/]+|main)/", "(", frame)


def summarize(path: Path, top: int) -> str:
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        match = LINE.match(line)
        if not match:
            continue
        frames, count = [frame_name(f) for f in match.group(1).split(";") if f], int(match.group(2))
        total += count
        if frames:
            self_counts[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    out = [f"{path.name}: {total} samples", "", "| self % | function |", "|---|---|"]
    out += [f"| {100 * c / total:.1f} | `{name}` |" for name, c in self_counts.most_common(top)]
    out += ["", "| inclusive % | function |", "|---|---|"]
    out += [f"| {100 * c / total:.1f} | `{name}` |" for name, c in inclusive.most_common(top)]
    return "\n".join(out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print("\n\n".join(summarize(path, args.top) for path in args.paths))
