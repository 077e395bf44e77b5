"""Slow attackers' request bytes, answer parsing and descriptor limit (no attack run here)."""

from __future__ import annotations

import resource

from benchmarks import slowclients


def test_request_head_declares_the_body_and_ends_the_head() -> None:
    head = slowclients.request_head("127.0.0.1", 8000, "/v1/models/fashion/classify", 100_000)
    assert head.startswith(b"POST /v1/models/fashion/classify HTTP/1.1\r\n")
    assert b"\r\nContent-Length: 100000\r\n" in head
    assert head.endswith(b"\r\n\r\n") and head.count(b"\r\n\r\n") == 1


def test_status_of_reads_the_status_line_or_says_zero() -> None:
    assert slowclients.status_of(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n") == 408
    assert slowclients.status_of(b"HTTP/1.1 503 Service Unavailable") == 503
    assert slowclients.status_of(b"garbage") == 0
    assert slowclients.status_of(b"") == 0


def test_fd_limit_is_left_alone_when_it_already_suffices() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limits = slowclients.raise_fd_limit(16)
    assert limits == {"wanted": 16, "soft_before": soft, "soft_after": soft, "hard": hard}
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (soft, hard)


def test_fd_limit_rises_at_most_to_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 256), hard))
        limits = slowclients.raise_fd_limit(10**9)
        expected = 10**9 if hard == resource.RLIM_INFINITY else hard
        assert limits["soft_after"] == expected
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == expected
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
