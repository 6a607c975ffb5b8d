"""A bounded HTTP load generator for tests and benchmarks (httpx, asyncio).

It stops after ``requests`` requests or ``seconds`` seconds, whichever comes first, and counts
every result: 2xx, other status, connection error, timeout. It only sends to loopback or to
addresses the caller allows (the lab's or the inventory's hosts).

By default every request opens its own connection, like many independent clients, and says
``Connection: close`` so that the server closes first: the closing side keeps the connection in
TIME_WAIT for 60 s, and a client closing 500 connections a second to one address would run out of
its 28,232 local ports (Linux's default ip_local_port_range) within a minute, its connects slowing
down long before (seen on the lab: the rate fell from 800/s to 250/s after 30 s). With
``keepalive=True`` connections are reused; then a graceful reload can close an idle kept-alive
connection just as a request is sent on it (a ReadError): RFC 9110 section 9.2.2 lets clients retry
such idempotent requests, and browsers do, but this generator counts it as failed.
"""
from __future__ import annotations

import asyncio
import ipaddress
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from urllib.parse import urlsplit


SLOW = 1.0      # seconds: a request that took longer is listed in LoadResult.slow


class TargetRefused(Exception):
    pass


@dataclass
class LoadResult:
    sent: int = 0
    ok: int = 0                 # 2xx
    other_status: int = 0
    connect_errors: int = 0
    timeouts: int = 0
    other_errors: int = 0
    seconds: float = 0.0
    slowest: float = 0.0        # the longest single request, answered or not, in seconds
    bodies: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    ok_times: list[float] = field(default_factory=list)   # wall clock (time.time()) of each 2xx answer
    slow: list[tuple[float, float]] = field(default_factory=list)  # (wall clock sent, seconds) over SLOW

    def around(self, start: float, end: float) -> tuple[int, int]:
        """2xx answers received before ``start`` and after ``end`` (wall clock)."""
        return sum(t < start for t in self.ok_times), sum(t > end for t in self.ok_times)

    def rate(self, start: float, end: float) -> float:
        """2xx answers per second received from ``start`` to ``end`` (wall clock)."""
        return sum(start <= t < end for t in self.ok_times) / (end - start)

    def longest_gap(self, start: float, end: float) -> float:
        """The longest stretch from ``start`` to ``end`` (wall clock) without a 2xx answer, in seconds."""
        times = [start, *sorted(t for t in self.ok_times if start <= t < end), end]
        return max(b - a for a, b in zip(times, times[1:]))

    def sent_slow(self, start: float, end: float) -> list[tuple[float, float]]:
        """The requests over SLOW seconds that were sent from ``start`` to ``end`` (wall clock)."""
        return [(t, took) for t, took in self.slow if start <= t < end]

    @property
    def failed(self) -> int:
        return self.other_status + self.connect_errors + self.timeouts + self.other_errors

    def summary(self) -> str:
        rate = self.sent / self.seconds if self.seconds else 0.0
        other = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses.items()) if not 200 <= code < 300)
        return (f"{self.sent} requests in {self.seconds:.1f} s ({rate:.0f}/s): {self.ok} 2xx, "
                f"{self.other_status} other status{f' ({other})' if other else ''}, "
                f"{self.connect_errors} connection errors, "
                f"{self.timeouts} timeouts, {self.other_errors} other errors; slowest {self.slowest:.2f} s")


def check_target(url: str, allowed: set[str]) -> None:
    host = urlsplit(url).hostname or ""
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        if host == "localhost":
            return
    if host not in allowed:
        raise TargetRefused(f"load target {host!r} is neither loopback nor one of the allowed hosts")


def run(url: str, requests: int, concurrency: int, seconds: float, allowed: set[str],
        timeout: float = 10.0, keepalive: bool = False, stop: threading.Event | None = None,
        headers: dict | None = None) -> LoadResult:
    """``headers``: sent with every request (a Host header picks a site of the proxy)."""
    check_target(url, allowed)
    return asyncio.run(_run(url, requests, concurrency, seconds, timeout, keepalive, stop or threading.Event(),
                            headers or {}))


async def _run(url, requests, concurrency, seconds, timeout, keepalive, stop, headers=None) -> LoadResult:
    import httpx
    result = LoadResult()
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    limits = httpx.Limits(max_connections=concurrency,
                          max_keepalive_connections=concurrency if keepalive else 0)
    # Independent clients keep no cookies (a sticky pool's ROUTEID would pin every request).
    no_cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    headers = headers if keepalive else {"Connection": "close", **(headers or {})}
    async with httpx.AsyncClient(limits=limits, timeout=timeout, cookies=no_cookies) as client:
        async def worker():
            while result.sent < requests and time.monotonic() < deadline and not stop.is_set():
                result.sent += 1
                sent_at, sent_wall = time.monotonic(), time.time()
                try:
                    resp = await client.get(url, headers=headers)
                except httpx.TimeoutException:
                    result.timeouts += 1
                    continue
                except httpx.ConnectError as exc:
                    result.connect_errors += 1
                    result.errors.append(str(exc)[:200])
                    continue
                except httpx.HTTPError as exc:
                    result.other_errors += 1
                    result.errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                    continue
                finally:
                    took = time.monotonic() - sent_at
                    result.slowest = max(result.slowest, took)
                    if took > SLOW:
                        result.slow.append((sent_wall, took))
                result.statuses[resp.status_code] += 1
                if 200 <= resp.status_code < 300:
                    result.ok += 1
                    result.ok_times.append(time.time())
                    result.bodies[resp.text[:100]] += 1
                else:
                    result.other_status += 1
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.seconds = time.monotonic() - started
    return result


class Background:
    """Load running in a thread while the caller changes things; ``stop()`` returns the result."""

    def __init__(self, url: str, requests: int, concurrency: int, seconds: float, allowed: set[str],
                 keepalive: bool = False, headers: dict | None = None):
        check_target(url, allowed)
        self._stop = threading.Event()
        self._args = (url, requests, concurrency, seconds, allowed, 10.0, keepalive, self._stop, headers)
        self.result: LoadResult | None = None
        self._thread = threading.Thread(target=self._go, daemon=True)

    def _go(self):
        self.result = run(*self._args)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._thread.join()

    def stop(self) -> LoadResult:
        """End early (requests in flight still finish and are counted)."""
        self._stop.set()
        return self.wait()

    def wait(self) -> LoadResult:
        self._thread.join()
        return self.result
