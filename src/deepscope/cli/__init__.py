"""Command-line interface: one module per command (see :mod:`deepscope.cli.main`)."""
