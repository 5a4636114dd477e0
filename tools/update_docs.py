"""Copy generated sections into the documents: the only writer of generated text in ``docs/``.

    .venv/bin/python tools/update_docs.py            # or: ./dev docs
    .venv/bin/python tools/update_docs.py --check    # exit 1 if a document is behind

Tests never write tracked files; they leave what they measured in
``test-artifacts/`` (``tests/reliability/report.py``). This script replaces,
in each document below, the text between ``<!-- name:begin -->`` and
``<!-- name:end -->`` with the newest complete generated copy of section
``name``, and changes nothing else: the prose around the markers is written
by hand. A section with no generated copy (the suite that makes it did not
run here) is left as it is, and said so.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.reliability.report import section_path  # noqa: E402

# Each document, and where each of its sections' generated text is found.
DOCUMENTS: dict[Path, Callable[[str], Path]] = {
    ROOT / "docs" / "reliability.md": section_path,
}

SECTION = re.compile(r"(<!-- (?P<name>[\w-]+):begin -->\n)(?P<body>.*?)(<!-- (?P=name):end -->)", re.S)


class MissingMarkers(ValueError):
    """A generated body names a section the document has no markers for."""


def replace_sections(text: str, bodies: dict[str, str]) -> str:
    """``text`` with each named section's body replaced; everything outside the markers kept byte for byte."""
    present = {match["name"] for match in SECTION.finditer(text)}
    missing = sorted(set(bodies) - present)
    if missing:
        raise MissingMarkers(
            f"no <!-- {missing[0]}:begin --> ... <!-- {missing[0]}:end --> markers in the document; "
            "add them where the generated text belongs"
        )

    def swap(match: re.Match) -> str:
        name = match["name"]
        if name not in bodies:
            return match[0]
        return match[1] + bodies[name].rstrip("\n") + "\n" + match[4]

    return SECTION.sub(swap, text)


def update(document: Path, locate: Callable[[str], Path]) -> tuple[str, list[str], list[str]]:
    """The document's new text, the sections taken from generated copies, and those without one."""
    text = document.read_text()
    names = [match["name"] for match in SECTION.finditer(text)]
    bodies = {name: locate(name).read_text() for name in names if locate(name).exists()}
    return replace_sections(text, bodies), sorted(bodies), sorted(set(names) - set(bodies))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a document is behind")
    args = parser.parse_args()
    behind = False
    for document, locate in DOCUMENTS.items():
        new_text, taken, absent = update(document, locate)
        name = document.relative_to(ROOT)
        changed = new_text != document.read_text()
        for section in absent:
            print(f"{name}: section '{section}' kept (no generated copy at {locate(section).relative_to(ROOT)})")
        if args.check:
            behind |= changed
            print(f"{name}: {'behind the generated sections' if changed else 'up to date'}")
        elif changed:
            document.write_text(new_text)
            print(f"{name}: updated sections {', '.join(taken)}")
        else:
            print(f"{name}: already up to date" + (f" ({', '.join(taken)})" if taken else ""))
    return 1 if behind else 0


if __name__ == "__main__":
    sys.exit(main())
