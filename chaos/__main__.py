"""``python -m chaos``: one chaos run; writes chaos/results/latest.{json,md}."""

from chaos.run import main

main()
