"""Example: echo a message through an httpbin-like API (``POST {base_url}/anything``).

Setup: any service that answers ``POST /anything`` with the request echoed as JSON (httpbin,
or the hub's test double). Store its URL and a token as an ``example`` credential.

Quirks: none worth knowing; it is an example. Echoing twice is harmless, so the action is safe
to repeat.
"""

from __future__ import annotations

from integrationhub_example.connector import (
    EchoMessage,
    ExampleConnector,
    ExampleCredential,
    MessageEchoed,
)

__all__ = ["EchoMessage", "ExampleConnector", "ExampleCredential", "MessageEchoed"]
