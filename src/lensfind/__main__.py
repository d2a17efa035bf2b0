"""``python -m lensfind`` runs the ``engine`` command line."""

from lensfind.engine.cli import main

raise SystemExit(main())
