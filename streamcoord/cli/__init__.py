"""The ``streamcoord`` command line: one Typer app in ``main``, one module per command group."""
