from __future__ import annotations

import pytest
from pydantic import ValidationError

from integrationhub.connectors.smtp import SendEmail, SmtpConnector
from integrationhub.connectors.smtp.compose import html_to_text
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
    text = html_to_text(
        "<h1>Title</h1><p>First<br>second <b>bold</b></p><script>var x = '<p>';</script>"
        "<style>p { color: red }</style><ul><li>one</li><li>two &amp; three</li></ul>"
    )
    assert text.splitlines() == ["Title", "First", "second bold", "one", "two & three"]


def test_plain_text_of_broken_or_hostile_html_is_still_its_words():
    assert html_to_text("<p>unclosed <b>tags <i>everywhere") == "unclosed tags everywhere\n"
    assert html_to_text("<<<>>> &bogus; <p a='>'>x</p>").split() == ["<<<>>>", "&bogus;", "x"]
    assert html_to_text("") == "\n"


def test_action_declares_its_models_credential_and_repeat_safety():
    described = ACTION.describe()
    assert described["credential_type"] == "smtp"
    assert described["safe_to_repeat"] is False
    assert set(described["input_schema"]["required"]) == {"to", "subject", "body"}
    assert "message_id" in described["output_schema"]["properties"]


@pytest.mark.parametrize(
    "subject", ["a\x0bb", "a\x0cb", "a\x1c\x1cb", "a\x85b", "a\u2028b", "a\x00b"]
)
def test_header_values_refuse_every_character_email_treats_as_a_line_break(subject):
    with pytest.raises(ValidationError, match="line breaks or control characters"):
        SendEmail.model_validate({"to": "a@example.com", "subject": subject, "body": ""})
