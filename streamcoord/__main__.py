"""``python -m streamcoord``: the ``streamcoord`` console script."""

from streamcoord.cli.main import main

main()
