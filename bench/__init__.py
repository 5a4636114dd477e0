"""The benchmarks (run by hand: ``.venv/bin/python bench/run.py``, ``bench/tools.py``); see docs/benchmarks.md."""
