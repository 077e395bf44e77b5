"""`python -m app`: serve with uvicorn (app.server's config and protocol), settings from env."""

from __future__ import annotations

import sys

import uvicorn
from pydantic import ValidationError

from app.config import get_settings
from app.logging import configure_logging
from app.main import create_app
from app.memory import return_large_frees_to_os
from app.server import build_config

_STARTUP_FAILURE = 3  # as uvicorn.run exits when the server cannot start (e.g. port taken)


def main() -> int:
    try:
        settings = get_settings()
    except ValidationError as exc:
        print(f"invalid TAGGER_* settings:\n{exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    return_large_frees_to_os()
    server = uvicorn.Server(build_config(create_app(settings), settings))
    server.run()
    return 0 if server.started else _STARTUP_FAILURE


if __name__ == "__main__":
    sys.exit(main())
