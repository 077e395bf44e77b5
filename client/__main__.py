"""`python -m client tag ...` (see client.cli)."""

from client.cli import main

raise SystemExit(main())
