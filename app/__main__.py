"""`python -m app`: serve with uvicorn (uvloop + httptools when installed), settings from env."""

from __future__ import annotations

import sys

import uvicorn
from pydantic import ValidationError

from app.config import get_settings
from app.logging import configure_logging
from app.main import create_app
from app.memory import return_large_frees_to_os


def main() -> int:
    try:
        settings = get_settings()
    except ValidationError as exc:
        print(f"invalid TAGGER_* settings:\n{exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    return_large_frees_to_os()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="auto",
        http="auto",
        log_config=None,
        access_log=False,  # app.logging writes one JSON line per request instead
        timeout_graceful_shutdown=settings.shutdown_timeout_s or None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
