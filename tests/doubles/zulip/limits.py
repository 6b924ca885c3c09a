"""Zulip's rate limit as its server applies it to one user, headers and all.

Zulip's api_docs/http-headers.md: every answer to a rate-limited (authenticated) request
carries ``X-RateLimit-Limit`` (the burst a quiet client may send), ``X-RateLimit-Remaining``
(requests left) and ``X-RateLimit-Reset`` (when no limit applies any more, in Unix seconds; the
server's middleware truncates it to whole seconds, ``str(int(reset_time))``). A request over
the limit is answered 429 ``RATE_LIMIT_HIT`` with ``retry-after`` in the body and a
``Retry-After`` header, both in fractional seconds. The default limit is 200 requests a
minute, counted by a sliding window (the server's Redis backend).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass

__all__ = ["RateLimitWindow", "Verdict"]


@dataclass(frozen=True)
class Verdict:
    """What the limit says about one request: whether it may go, the headers its answer
    carries, and, when it may not, the seconds until one may."""

    allowed: bool
    headers: dict[str, str]
    retry_after: float = 0.0


class RateLimitWindow:
    """``limit`` requests in any ``window`` seconds. ``whole_second_reset=False`` sends the
    reset with fractions, as some proxies and other APIs do."""

    def __init__(self, limit: int, window: float, *, whole_second_reset: bool = True) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a limit needs at least one request in a positive window")
        self.limit = limit
        self.window = window
        self.whole_second_reset = whole_second_reset
        self._calls: deque[float] = deque()
        self._lock = threading.Lock()

    def hit(self, now: float | None = None) -> Verdict:
        """Count a request (unless it is over the limit) and say what to answer."""
        now = time.time() if now is None else now
        with self._lock:
            while self._calls and self._calls[0] <= now - self.window:
                self._calls.popleft()
            if len(self._calls) >= self.limit:
                wait = self._calls[0] + self.window - now
                return Verdict(False, self._headers(0, now + wait), wait)
            self._calls.append(now)
            # Free of any limit once the newest call leaves the window, as Zulip computes it.
            return Verdict(True, self._headers(self.limit - len(self._calls), now + self.window))

    def _headers(self, remaining: int, reset: float) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(remaining),
            # Fractions are rounded up: a reset a little early would earn the client a 429.
            "X-RateLimit-Reset": str(int(reset))
            if self.whole_second_reset
            else f"{math.ceil(reset * 1000) / 1000:.3f}",
        }
