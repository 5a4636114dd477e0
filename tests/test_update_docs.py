"""tools/update_docs.py: generated sections replace only the text between their markers."""

from __future__ import annotations

import pytest

from tools.update_docs import MissingMarkers, replace_sections

DOCUMENT = """# Reliability

Hand-written prose, kept.

<!-- faults:begin -->
| old | table |
<!-- faults:end -->

More prose, with a <!-- comment --> of its own.

<!-- load:begin -->
old load figures
<!-- load:end -->
Trailing words.
"""


def test_a_generated_section_replaces_only_its_body():
    text = replace_sections(DOCUMENT, {"faults": "| new | table |\n|---|---|\n"})
    assert text == DOCUMENT.replace("| old | table |\n", "| new | table |\n|---|---|\n")


def test_sections_without_a_generated_copy_stay_as_they_are():
    assert replace_sections(DOCUMENT, {}) == DOCUMENT
    assert "old load figures" in replace_sections(DOCUMENT, {"faults": "x"})


def test_an_empty_section_can_be_filled():
    empty = "a\n<!-- load:begin -->\n<!-- load:end -->\nb\n"
    assert replace_sections(empty, {"load": "figures"}) == "a\n<!-- load:begin -->\nfigures\n<!-- load:end -->\nb\n"


def test_a_section_the_document_has_no_markers_for_is_an_error():
    with pytest.raises(MissingMarkers, match="workers:begin"):
        replace_sections(DOCUMENT, {"workers": "rows"})
