"""`CoalescingTransport`: a head and the body written in the same step leave in one write;
nothing is lost, reordered or written to a closing connection."""

from __future__ import annotations

import asyncio

import pytest

from app.coalescing_transport import CoalescingTransport

pytestmark = pytest.mark.asyncio(loop_scope="session")


class Recorder:
    """Stands for the socket transport: records what reaches it, call by call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", bytes(data)))

    def writelines(self, chunks: list[bytes]) -> None:
        self.calls.append(("writelines", b"".join(chunks)))

    def write_eof(self) -> None:
        self.calls.append(("eof", b""))

    def close(self) -> None:
        self.calls.append(("close", b""))
        self.closing = True

    def abort(self) -> None:
        self.calls.append(("abort", b""))
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def _wrapped() -> tuple[CoalescingTransport, Recorder]:
    inner = Recorder()
    return CoalescingTransport(inner, asyncio.get_running_loop()), inner  # type: ignore[arg-type]


async def test_head_and_body_of_one_step_leave_in_one_call() -> None:
    transport, inner = _wrapped()
    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert inner.calls == []  # held until the body or the end of this step
    transport.write(b"{}")
    assert inner.calls == [("writelines", b"HTTP/1.1 200 OK\r\n\r\n{}")]
    await asyncio.sleep(0)
    assert len(inner.calls) == 1


async def test_a_lone_write_leaves_at_the_end_of_the_step() -> None:
    transport, inner = _wrapped()
    transport.write(b"chunk")
    assert transport.get_write_buffer_size() == 5
    await asyncio.sleep(0)
    assert inner.calls == [("write", b"chunk")]
    transport.write(b"next")
    await asyncio.sleep(0)
    assert inner.calls[-1] == ("write", b"next")


async def test_close_and_eof_send_what_is_held_first_and_abort_drops_it() -> None:
    transport, inner = _wrapped()
    transport.write(b"answer")
    transport.write_eof()
    transport.write(b"last")
    transport.close()
    assert inner.calls == [("write", b"answer"), ("eof", b""), ("write", b"last"), ("close", b"")]
    transport, inner = _wrapped()
    transport.write(b"unsent")
    transport.abort()
    await asyncio.sleep(0)
    assert inner.calls == [("abort", b"")]


async def test_nothing_is_written_once_the_connection_is_closing() -> None:
    transport, inner = _wrapped()
    transport.write(b"head")
    inner.closing = True  # the peer went away before the step ended
    await asyncio.sleep(0)
    transport.write(b"a")
    transport.write(b"b")
    assert inner.calls == []
    assert transport.get_extra_info("peername") == "info:peername"
