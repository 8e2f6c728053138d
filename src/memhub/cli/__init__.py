"""The ``memhub`` command line: one module per command group."""
