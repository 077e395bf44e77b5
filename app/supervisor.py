"""Several server processes on one port: the supervisor that starts, watches and stops them.

The supervisor binds one socket per worker to the port, all with SO_REUSEPORT, and starts
`TAGGER_WORKERS` copies of `python -m app`, each inheriting its own (`WORKER_FD_ENV` names the
descriptor); each worker is a whole service with its own event loop, batcher and loaded models. The
kernel spreads new connections over the listening sockets by their addresses, so keep-alive clients
divide evenly between workers: with one shared socket, the worker that was free when a burst
arrived took all of it (0 of 64 went to the busy one in tests/app/test_workers_e2e.py). A socket
listens only once its worker serves: the first worker at once (so /healthz answers and /readyz says
503 while it loads, as with one process); every other worker, and every replacement, once its
models are ready, so no connection lands on a worker that would refuse it as not ready. A dead
worker's socket is closed at once (connections it still queued are reset, as they would be with the
worker) and its replacement gets a fresh one. Metrics are written by every worker to
`PROMETHEUS_MULTIPROC_DIR` (a fresh temporary folder unless it is set) and any worker's /metrics
reports the sum over all of them.

A worker that exits while the supervisor is not stopping is logged and replaced (after a pause
that grows while replacements keep dying young). SIGTERM or SIGINT to the supervisor closes its
copies of the sockets and sends SIGTERM to every worker, which stop accepting, finish
what they accepted and exit; past TAGGER_SHUTDOWN_TIMEOUT_S and a grace, the rest are killed.
Workers die with the supervisor (PR_SET_PDEATHSIG) and live in its process group only as far as
the terminal is concerned: a Ctrl-C reaches the supervisor alone, which then drains them.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from app.config import Settings
from app.metrics import MULTIPROCESS_DIR_ENV as METRICS_DIR_ENV

logger = logging.getLogger(__name__)

WORKER_FD_ENV = "TAGGER_WORKER_FD"
WORKER_INDEX_ENV = "TAGGER_WORKER_INDEX"
WORKER_WAIT_ENV = "TAGGER_WORKER_LISTEN_WHEN_READY"

_POLL_S = 0.2
_KILL_GRACE_S = 5.0  # past the workers' own shutdown timeout, before SIGKILL
_YOUNG_S = 10.0  # a worker that dies younger than this delays its replacement
_MAX_BACKOFF_S = 30.0
_PR_SET_PDEATHSIG = 1


@dataclass
class _Worker:
    index: int
    process: subprocess.Popen[bytes]
    started: float


class Supervisor:
    """Runs `count` workers on `settings.host:port` until SIGTERM or SIGINT."""

    def __init__(self, settings: Settings, count: int) -> None:
        self.settings = settings
        self.count = count
        self._workers: dict[int, _Worker] = {}
        self._deaths: dict[int, int] = {}  # index -> young deaths in a row
        self._restart_at: dict[int, float] = {}
        self._stopping = False
        self._started_once = False
        self._sockets: dict[int, socket.socket] = {}  # worker index -> its listening socket
        self._port = settings.port
        self._metrics_dir: Path | None = None
        self._own_metrics_dir = False

    def run(self) -> int:
        try:
            self._port = free_port_check(self.settings.host, self.settings.port)
            for index in range(self.count):
                self._sockets[index] = self._bind()
        except OSError as exc:
            logger.error("cannot listen on %s:%d: %s", self.settings.host, self.settings.port, exc)
            return 3
        self._prepare_metrics_dir()
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _STOP_SIGNALS}
        try:
            logger.info(
                "starting %d workers on %s:%d",
                self.count,
                self.settings.host,
                self.settings.port,
                extra={"workers": self.count},
            )
            for index in range(self.count):
                self._start(index)
            while not self._stopping:
                self._watch()
                time.sleep(_POLL_S)
            self._stop_all()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._close_sockets()
            if self._own_metrics_dir and self._metrics_dir is not None:
                shutil.rmtree(self._metrics_dir, ignore_errors=True)
        return 0

    # -- workers -------------------------------------------------------------------------------

    def _start(self, index: int) -> None:
        assert self._metrics_dir is not None
        fd = self._sockets[index].fileno()
        env = {
            **os.environ,
            WORKER_FD_ENV: str(fd),
            WORKER_INDEX_ENV: str(index),
            WORKER_WAIT_ENV: "1" if self._started_once else "0",
            METRICS_DIR_ENV: str(self._metrics_dir),
        }
        self._started_once = True
        process = subprocess.Popen(
            [sys.executable, "-m", "app"],
            env=env,
            pass_fds=(fd,),
            process_group=0,  # a terminal's Ctrl-C reaches the supervisor, which drains
            preexec_fn=_die_with_parent,
        )
        self._workers[index] = _Worker(index, process, time.monotonic())
        logger.info("worker %d started (pid %d)", index, process.pid, extra={"worker": index})

    def _watch(self) -> None:
        now = time.monotonic()
        for index, worker in list(self._workers.items()):
            code = worker.process.poll()
            if code is None:
                continue
            del self._workers[index]
            _forget_metrics_of(worker.process.pid, self._metrics_dir)
            young = now - worker.started < _YOUNG_S
            self._deaths[index] = self._deaths.get(index, 0) + 1 if young else 0
            delay = min(_MAX_BACKOFF_S, 0.5 * 2 ** (self._deaths[index] - 1)) if young else 0.0
            logger.error(
                "worker %d (pid %d) exited with %s; starting another in %.1f s",
                index,
                worker.process.pid,
                _describe_exit(code),
                delay,
                extra={"worker": index, "exit_code": code},
            )
            self._restart_at[index] = now + delay
            # Connections the dead worker's socket still queues would wait for the replacement
            # (or be reset with it): a fresh socket leaves the port to the live workers now.
            self._sockets.pop(index).close()
            self._sockets[index] = self._bind()
        for index, at in list(self._restart_at.items()):
            if at <= now:
                del self._restart_at[index]
                self._start(index)

    def _stop_all(self) -> None:
        self._close_sockets()  # new connections are refused once every worker closed its copy
        logger.info("stopping %d workers", len(self._workers))
        for worker in self._workers.values():
            _signal(worker.process, signal.SIGTERM)
        deadline = time.monotonic() + (self.settings.shutdown_timeout_s or 30.0) + _KILL_GRACE_S
        for worker in self._workers.values():
            try:
                worker.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.error("worker %d did not stop in time; killing it", worker.index)
                _signal(worker.process, signal.SIGKILL)
                worker.process.wait()
        logger.info("stopped")

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    # -- resources -----------------------------------------------------------------------------

    def _prepare_metrics_dir(self) -> None:
        given = os.environ.get(METRICS_DIR_ENV)
        if given:
            path = Path(given)
            path.mkdir(parents=True, exist_ok=True)
            for stale in path.glob("*.db"):  # a previous run's values must not be added in
                stale.unlink()
            self._metrics_dir = path
        else:
            self._metrics_dir = Path(tempfile.mkdtemp(prefix="tagger-metrics-"))
            self._own_metrics_dir = True

    def _bind(self) -> socket.socket:
        """A socket of the port's group, bound but not listening yet (its worker listens)."""
        return bind(self.settings.host, self._port)

    def _close_sockets(self) -> None:
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def free_port_check(host: str, port: int) -> int:
    """The port (port 0: one the kernel picks), after checking nothing holds it: a socket
    bound with SO_REUSEPORT by another process of this user would otherwise share it silently.
    Raises OSError if it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        return int(probe.getsockname()[1])


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port with SO_REUSEPORT (IPv6 when host is an IPv6 address),
    not listening yet: uvicorn listens on it when its worker starts serving."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def worker_socket() -> tuple[socket.socket, int, bool] | None:
    """In a worker: the inherited listening socket, this worker's index and whether it must
    listen only once ready; else None."""
    fd = os.environ.get(WORKER_FD_ENV)
    if not fd:
        return None
    index = int(os.environ.get(WORKER_INDEX_ENV, "0"))
    return socket.socket(fileno=int(fd)), index, os.environ.get(WORKER_WAIT_ENV) == "1"


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the supervisor dies (Linux), so no worker is
    left holding the port."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def _signal(process: subprocess.Popen[bytes], sig: int) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)


def _forget_metrics_of(pid: int, directory: Path | None) -> None:
    """Drop a dead worker's live gauges (its counters and histograms keep counting)."""
    if directory is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(directory))


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"
