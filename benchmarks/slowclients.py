"""Slow attackers: many loopback connections that send a request at a trickle and reconnect.

Half send the request head one byte per interval (slow headers), half send a complete head with
a Content-Length and then the body one byte per interval (slow body). A connection the server
closes (408, 503, or no answer) is reopened at once, or one interval after it was opened if the
server ended it sooner, so the pressure stays near the asked count for as long as the attack
runs without turning into a request flood. Bounded: `count` connections at most, loopback only,
stopped by `stop()`.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections import Counter
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

HEAD = "head"
BODY = "body"
DECLARED_BODY_BYTES = 100_000  # far more than the attack ever sends at 1 byte/s


def request_head(host: str, port: int, path: str, content_length: int) -> bytes:
    """A plain raw-image classify request head; `X-Padding` keeps a slow head going ~2 min."""
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: bench-slow-client\r\n"
        f"Content-Type: image/png\r\nContent-Length: {content_length}\r\n"
        f"X-Padding: {'a' * 64}\r\n\r\n"
    ).encode()


def status_of(answer: bytes) -> int:
    """The status code of an HTTP/1.x answer's first line; 0 when there is none."""
    parts = answer.split(b"\r\n", 1)[0].split()
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit():
        return int(parts[1])
    return 0


def raise_fd_limit(wanted: int) -> dict[str, int]:
    """Raise this process's soft RLIMIT_NOFILE towards `wanted` (at most the hard limit).

    Processes started afterwards (the service) inherit it. Returns the limits before and after.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = soft
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return {"wanted": wanted, "soft_before": soft, "soft_after": target, "hard": hard}


@dataclass
class AttackStats:
    """What the attackers saw: connections open now, opened in all, how each one ended."""

    open_now: int = 0
    opened: int = 0
    connect_failures: int = 0
    ends: Counter[str] = field(default_factory=Counter)  # "408", "503", "closed", "reset", ...
    bytes_sent: int = 0

    def summary(self) -> dict[str, object]:
        return {
            "opened": self.opened,
            "connect_failures": self.connect_failures,
            "ends": dict(sorted(self.ends.items())),
            "bytes_sent": self.bytes_sent,
        }


class SlowClients:
    """`count` trickling connections to host:port (half slow heads, half slow bodies)."""

    def __init__(
        self,
        host: str,
        port: int,
        path: str,
        count: int,
        interval_s: float = 1.0,
        ramp_s: float = 2.0,
    ) -> None:
        self.host, self.port, self.count = host, port, count
        self.interval_s = interval_s
        self.ramp_s = ramp_s
        self.head = request_head(host, port, path, DECLARED_BODY_BYTES)
        self.stats = AttackStats()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    def start(self) -> None:
        for index in range(self.count):
            kind = HEAD if index % 2 == 0 else BODY
            delay = self.ramp_s * index / self.count
            self._tasks.append(asyncio.create_task(self._attacker(kind, delay)))

    async def ramped(self) -> int:
        """Wait until every attacker has had its first interval; the count open then."""
        await asyncio.sleep(self.ramp_s + self.interval_s)
        return self.stats.open_now

    async def stop(self) -> None:
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _attacker(self, kind: str, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            opened = loop.time()
            end = await self._one_connection(kind)
            self.stats.ends[end] += 1
            # Reconnect at once, but at most once per interval: a server that refuses at once
            # must not turn the attack into a flood of requests.
            await asyncio.sleep(max(0.0, opened + self.interval_s - loop.time()))

    async def _one_connection(self, kind: str) -> str:
        """Trickle one request until the server ends the connection; how it ended."""
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except OSError as exc:
            self.stats.connect_failures += 1
            return f"connect {type(exc).__name__}"
        self.stats.opened += 1
        self.stats.open_now += 1
        try:
            if kind == BODY:
                writer.write(self.head)
                self.stats.bytes_sent += len(self.head)
                to_trickle = b"\x89" * DECLARED_BODY_BYTES
            else:
                to_trickle = self.head + b"\x89" * DECLARED_BODY_BYTES
            for offset in range(len(to_trickle)):
                writer.write(to_trickle[offset : offset + 1])
                await writer.drain()
                self.stats.bytes_sent += 1
                try:
                    answer = await asyncio.wait_for(reader.read(4096), self.interval_s)
                except TimeoutError:
                    continue
                return str(status_of(answer)) if answer else "closed"
            return "finished"
        except (ConnectionResetError, BrokenPipeError):
            return "reset"
        except OSError as exc:
            return type(exc).__name__
        finally:
            self.stats.open_now -= 1
            writer.close()
