"""Benchmarks: docmill's operations side by side with the reference tools, in one run.

`python -m bench` (or `make bench`) measures every section and prints one table; see
`bench/__main__.py` for the options and `docs/performance.md` for the latest figures.
"""
