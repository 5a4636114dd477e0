"""The reliability suite's generated tables: written to ``test-artifacts/``, never to the checkout.

Two test modules each produce one section of ``docs/reliability.md``::

    faults   tests/reliability/test_faults.py       the fault table
    load     tests/reliability/test_mixed_load.py   1,000 mixed executions

A run writes ``test-artifacts/reliability/<section>.md`` when the whole
module ran, or ``<section>-partial.md`` for a subset (``-k``), and a row's
verdict is ``BROKEN`` exactly when its test failed. Tests never touch a
tracked file: the document takes the generated sections only when someone
runs ``./dev docs`` (``tools/update_docs.py``), which replaces the text
between ``<!-- section:begin -->`` and ``<!-- section:end -->`` and leaves the
hand-written rest alone.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERATED_DIR = ROOT / "test-artifacts" / "reliability"


def section_path(name: str, *, complete: bool = True) -> Path:
    return GENERATED_DIR / (f"{name}.md" if complete else f"{name}-partial.md")


def write_section(name: str, body: str, *, complete: bool) -> Path:
    """Save section ``name``'s generated body; only a complete one is a candidate for the doc."""
    path = section_path(name, complete=complete)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body.rstrip("\n") + "\n")
    return path


def table(headers: list[str], rows: list[list[str]]) -> str:
    def cell(value: str) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)
