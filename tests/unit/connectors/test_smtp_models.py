from __future__ import annotations

import pytest

from integrationhub.connectors.smtp import SendEmail, SmtpConnector
from integrationhub.connectors.smtp.connector import html_to_text
from integrationhub.errors import PermanentError

ACTION = SmtpConnector.actions["smtp-email"]


@pytest.mark.parametrize(
    "params",
    [
        {"to": "a@example.com", "subject": "x\r\nBcc: e@example.com", "body": "b"},
        {"to": "a@example.com", "subject": "x\nBcc: e@example.com", "body": "b"},
        {"to": "a@example.com\r\nBcc: e@example.com", "subject": "x", "body": "b"},
        {"to": [], "subject": "x", "body": "b"},
        {"to": "not-an-address", "subject": "x", "body": "b"},
        {"to": "a@example.com", "subject": "x" * 999, "body": "b"},
        {"to": "a@example.com", "subject": "x", "body": "b", "headers": {"X": "y"}},
    ],
)
def test_header_injection_and_malformed_input_are_refused_before_sending(params):
    with pytest.raises(PermanentError, match="invalid input for smtp-email"):
        ACTION.validate_input(params)


def test_single_recipient_becomes_a_list():
    assert SendEmail.model_validate({"to": "a@example.com", "subject": "s", "body": ""}).to == [
        "a@example.com"
    ]


def test_plain_text_alternative_keeps_the_words_and_drops_the_markup():
    text = html_to_text("<h1>Title</h1><p>First<br>second <b>bold</b></p><script></script>")
    assert text.splitlines() == ["Title", "First", "second", "bold"]


def test_action_declares_its_models_credential_and_repeat_safety():
    described = ACTION.describe()
    assert described["credential_type"] == "smtp"
    assert described["safe_to_repeat"] is False
    assert set(described["input_schema"]["required"]) == {"to", "subject", "body"}
    assert "message_id" in described["output_schema"]["properties"]
