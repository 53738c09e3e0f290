"""``python -m bench``: run every benchmark and write bench/results/latest.{json,md}."""

from bench.run import main

main()
