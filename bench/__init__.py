"""The relay benchmark (run by hand: ``.venv/bin/python bench/run.py``); see docs/benchmarks.md."""
