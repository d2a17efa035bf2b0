"""``python -m lensfind`` runs the ``engine`` command line."""

from lensfind.cli.main import main

raise SystemExit(main())
