"""`python -m app`: serve with uvicorn (app.server's config and protocol), settings from env.

With TAGGER_WORKERS above 1 this process is the supervisor (app.supervisor) and each worker
it starts is this same command, given the listening socket."""

from __future__ import annotations

import sys

import uvicorn
from pydantic import ValidationError

from app.config import get_settings
from app.logging import configure_logging
from app.main import create_app
from app.memory import return_large_frees_to_os
from app.server import build_config
from app.supervisor import Supervisor, worker_socket

_STARTUP_FAILURE = 3  # as uvicorn.run exits when the server cannot start (e.g. port taken)


def main() -> int:
    try:
        settings = get_settings()
    except ValidationError as exc:
        print(f"invalid TAGGER_* settings:\n{exc}", file=sys.stderr)
        return 2
    inherited = worker_socket()
    configure_logging(settings.log_level, worker=inherited[1] if inherited else None)
    if inherited is None and settings.worker_count > 1:
        return Supervisor(settings, settings.worker_count).run()
    return_large_frees_to_os()
    wait = inherited is not None and inherited[2]
    app = create_app(settings, listen_when_ready=(lambda: server.should_exit) if wait else None)
    server = uvicorn.Server(build_config(app, settings))
    server.run(sockets=[inherited[0]] if inherited else None)
    return 0 if server.started else _STARTUP_FAILURE


if __name__ == "__main__":
    sys.exit(main())
