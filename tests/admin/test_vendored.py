"""The vendored chart library is the release its README names, byte for byte."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

VENDOR = Path(__file__).resolve().parents[2] / "mcp_tools" / "static" / "mcp_tools" / "vendor" / "uplot"


def test_vendored_uplot_files_match_the_checksums_in_its_readme():
    listed = dict(re.findall(r"^\| `([\w.]+)`[^|]*\| `([0-9a-f]{64})` \|$", (VENDOR / "README.md").read_text(), re.M))
    assert set(listed) == {"uPlot.iife.min.js", "uPlot.min.css"}
    for name, digest in listed.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    version = re.search(r"^# uPlot (\S+)", (VENDOR / "README.md").read_text(), re.M)[1]
    assert (
        (VENDOR / "uPlot.iife.min.js").read_text().startswith(f"/*! https://github.com/leeoniya/uPlot (v{version}) */")
    )
    assert "MIT License" in (VENDOR / "LICENSE").read_text()
