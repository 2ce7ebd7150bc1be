"""cfai benchmarks: each figure a ratio against a baseline measured in the same run.

Run with ``python -m bench`` (``make bench``); results go to ``bench/results/``.
"""
