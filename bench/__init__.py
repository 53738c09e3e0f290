"""End-to-end benchmarks of streamcoord on a real broker: ``make bench`` (``python -m bench``).

Not tests: nothing here asserts a timing. Results go to ``bench/results/latest.{json,md}``.
"""
