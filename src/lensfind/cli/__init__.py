"""The ``engine`` command line (also ``lensfind`` and ``python -m lensfind``).

:mod:`lensfind.cli.main` holds the entry point and the top-level parser; each
command group has its own module, which parses flags, builds a config and calls
one library function.
"""
