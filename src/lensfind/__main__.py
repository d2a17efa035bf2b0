"""``python -m lensfind`` runs the ``engine`` command line."""

from lensfind.cli.main import entry

entry()
