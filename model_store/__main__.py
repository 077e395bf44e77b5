"""`python -m model_store ...`: see `model_store.cli`."""

from model_store.cli import main

raise SystemExit(main())
