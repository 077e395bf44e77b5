"""`python -m app`: serve with uvicorn (app.server's config and protocol), settings from env."""

from __future__ import annotations

import sys

import uvicorn
from pydantic import ValidationError

from app.config import get_settings
from app.logging import configure_logging
from app.main import create_app
from app.server import build_config


def main() -> int:
    try:
        settings = get_settings()
    except ValidationError as exc:
        print(f"invalid TAGGER_* settings:\n{exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    uvicorn.Server(build_config(create_app(settings), settings)).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
