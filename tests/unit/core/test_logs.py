from __future__ import annotations

from pydantic import SecretStr

from integrationhub.core.logs import REDACTED, redact_secrets


def test_secret_keys_and_secret_values_are_redacted_at_any_depth():
    event = {
        "event": "credential.written",
        "password": "hunter2",
        "api_key": "k",
        "data": {"host": "smtp.example.com", "nested": [{"token": "t", "x": SecretStr("s")}]},
        "Authorization": "Bearer abc",
    }
    out = redact_secrets(None, "info", event)
    assert out["password"] == REDACTED
    assert out["api_key"] == REDACTED
    assert out["Authorization"] == REDACTED
    assert out["data"]["host"] == "smtp.example.com"
    assert out["data"]["nested"][0] == {"token": REDACTED, "x": REDACTED}
    assert "hunter2" not in repr(out)
    assert out["event"] == "credential.written"
