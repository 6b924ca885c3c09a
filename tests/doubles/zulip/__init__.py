"""A Zulip API double for contract tests, checked against the vendor's own OpenAPI description.

A real HTTP server (Starlette on uvicorn, 127.0.0.1, a free port, a background thread), so the
connector runs its real HTTP code. Every request is validated with openapi-core against
``shared/specs/zulip.yaml`` (path, method, parameters, body, security) and every answer of the
double is validated too, so neither side can drift from the spec unnoticed::

    with ZulipDouble() as zulip:                 # or the ``zulip`` fixture in tests/contract
        ...send to zulip.url as zulip.email / zulip.api_key...
        zulip.requests[-1].body                  # the request as the spec decodes it
        zulip.requests[-1].files                 # the file parts of a multipart request
        zulip.uploads[-1].data                   # the bytes of a file the double stored
        zulip.reactions                          # every reaction on a message
        zulip.rate_limit_next(1, retry_after=1.25)
        zulip.limit_requests(2, window=3.0)      # X-RateLimit-* on every answer, then 429s
        zulip.fail_next(2, status=502)
        zulip.answer_next(200, b"<html>...")     # anything, unchecked, once
        zulip.feature_level = 192                # play an older server
        zulip.push_message(content="hi")         # to every registered event queue
        zulip.expire_queue()                     # next GET /events: BAD_EVENT_QUEUE_ID
    assert zulip.violations == []

A request that breaks the spec is answered 400 (401 for missing auth) with the validation error
as Zulip's ``msg``, and recorded in ``violations``; the fixture fails the test unless the test
took it with ``take_violations()``.

Implemented: ``POST /api/v1/messages``, ``POST /api/v1/register``, ``GET /api/v1/events``,
``POST``/``DELETE /api/v1/messages/{message_id}/reactions``, ``POST /api/v1/user_uploads``.
Any other operation of the spec answers 501 and counts as a violation (of the double).

The modules: ``spec`` (loading and patching the spec, checking answers), ``double`` (the
server: checks, records, faults, limits), ``messages``, ``reactions`` and ``uploads`` (the
operations), ``queues`` (event queues), ``limits`` (Zulip's rate limit and its headers),
``shapes`` (Zulip's answer envelopes), ``records`` (what the double records).
"""

from __future__ import annotations

from tests.doubles.violations import Violation
from tests.doubles.zulip.double import ZulipDouble
from tests.doubles.zulip.limits import RateLimitWindow
from tests.doubles.zulip.records import Reaction, RecordedFile, RecordedRequest, Upload
from tests.doubles.zulip.shapes import zulip_error, zulip_message, zulip_success
from tests.doubles.zulip.spec import SPEC_PATH, zulip_openapi

__all__ = [
    "SPEC_PATH",
    "RateLimitWindow",
    "Reaction",
    "RecordedFile",
    "RecordedRequest",
    "Upload",
    "Violation",
    "ZulipDouble",
    "zulip_error",
    "zulip_message",
    "zulip_openapi",
    "zulip_success",
]
