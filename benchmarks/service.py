"""The service as users start it: `python -m app` in a subprocess, settings from the environment."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import httpx

from benchmarks import stats

logger = logging.getLogger(__name__)

READY_TIMEOUT_S = 180.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def confined_to(cpus: frozenset[int] | None) -> Callable[[], None] | None:
    """A `preexec_fn` that confines a child process to `cpus` (None: no confinement)."""
    if cpus is None:
        return None
    chosen = set(cpus)
    return lambda: os.sched_setaffinity(0, chosen)


class ServiceError(RuntimeError):
    """The service did not start or died; the message carries the tail of its log."""


class Service:
    """One `python -m app` process on a loopback port; use as a context manager."""

    def __init__(
        self,
        store: Path,
        model: str,
        log_path: Path,
        settings: dict[str, str] | None = None,
        *,
        one_model: bool = True,
        app_dir: Path | None = None,
        cpus: frozenset[int] | None = None,
    ) -> None:
        """`one_model` serves `model` alone (TAGGER_MODEL_NAME); otherwise `settings` say which
        models (TAGGER_MODELS) and `model` is the one `classify_url` names. `app_dir` runs the
        app of another checkout (e.g. an older one, to compare) instead of this one. `cpus`
        confines the service (its workers inherit it) to those cores."""
        self.port = free_port()
        self.model = model
        self.log_path = log_path
        self.env = {
            **os.environ,
            "TAGGER_HOST": "127.0.0.1",
            "TAGGER_PORT": str(self.port),
            "TAGGER_MODEL_STORE": str(store),
            "TAGGER_MODEL_NAME": model,
            "TAGGER_MODEL_ALIAS": "",
            "TAGGER_LOG_LEVEL": "WARNING",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "TAGGER_WORKERS": "1",  # a scenario that measures several workers says so
            **(settings or {}),
        }
        self.env.pop("TAGGER_API_KEY", None)
        if not one_model:
            self.env.pop("TAGGER_MODEL_NAME")
            self.env.pop("TAGGER_MODEL_ALIAS")
        if app_dir is not None:
            self.env["PYTHONPATH"] = str(app_dir)
        self.app_dir = app_dir
        self.settings = settings or {}
        self.cpus = cpus
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def classify_url(self) -> str:
        return f"{self.base_url}/v1/models/{self.model}/classify"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise ServiceError("the service is not running")
        return self.process.pid

    def start(self) -> Service:
        logger.info("starting python -m app on port %d with %s", self.port, self.settings or "{}")
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app"],
            cwd=self.app_dir,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=confined_to(self.cpus),
        )
        log.close()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServiceError(f"python -m app exited {self.process.returncode}: {self.log()}")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise ServiceError(f"not ready within {READY_TIMEOUT_S:.0f} s: {self.log()}")

    def stop(self) -> None:
        """SIGTERM (graceful shutdown), then SIGKILL if it does not exit in time."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            logger.warning("service did not stop after SIGTERM; killing it")
            self.process.kill()
            self.process.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL, for a service whose drain is not what is being measured."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def log(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def metrics(self) -> stats.Snapshot:
        response = httpx.get(f"{self.base_url}/metrics", timeout=10)
        response.raise_for_status()
        return stats.parse_metrics(response.text)

    def rss_bytes(self) -> int:
        """Resident set size from /proc/<pid>/status (Linux)."""
        return self._proc_status_bytes("VmRSS")

    def peak_rss_bytes(self) -> int:
        """The highest resident set size since the process started (VmHWM)."""
        return self._proc_status_bytes("VmHWM")

    def cpu_seconds(self) -> float:
        """User + system CPU time the service has used, its live worker processes included."""
        return sum(process_cpu_seconds(pid) for pid in (self.pid, *child_pids(self.pid)))

    def wait_for_workers(self, count: int, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Until `tagger_workers_ready` says `count` workers are serving."""
        deadline = time.monotonic() + timeout_s
        while stats.metric_total(self.metrics(), "tagger_workers_ready") < count:
            if time.monotonic() > deadline:
                raise ServiceError(f"{count} workers not ready within {timeout_s:.0f} s")
            time.sleep(0.25)

    def _proc_status_bytes(self, field: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
        raise ServiceError(f"{field} missing from /proc status")

    def healthy(self) -> dict[str, int]:
        """Status codes of /healthz, /readyz and one classify-free probe of /v1/models."""
        return {
            path: httpx.get(f"{self.base_url}{path}", timeout=5).status_code
            for path in ("/healthz", "/readyz", f"/v1/models/{self.model}")
        }


def child_pids(pid: int) -> list[int]:
    """The live child processes of `pid` (Linux)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (/proc/<pid>/stat, Linux); 0 once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)"; utime, stime are 14, 15
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
