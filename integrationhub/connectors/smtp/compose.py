"""An HTML email as multipart/alternative, with a plain-text part derived from the HTML.

Composing is a large part of what a run costs, so the common case takes a fast road: when
every header is ASCII, the message is built with the ``email.mime`` classes (policy
``compat32``), about four times cheaper than ``EmailMessage``, whose header registry parses
each header it is given. A header with anything else (an internationalised address, a subject
in another script) takes ``EmailMessage``, which encodes it as RFC 2047 and RFC 6532 require.
"""

from __future__ import annotations

from email.charset import QP, Charset
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from html.parser import HTMLParser

__all__ = ["compose", "html_to_text"]

_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP  # any line length and script, and readable where it is ASCII

# Elements that start a new line of text; everything else runs on in the same line.
_BLOCKS = frozenset(
    {
        *("address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt"),
        *("figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6"),
        *("header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table"),
        *("td", "th", "tr", "ul"),
    }
)
_HIDDEN = frozenset({"script", "style", "template", "head", "title"})


def compose(headers: dict[str, str], html: str) -> Message:
    """``headers`` (From, To, Subject, ...) in order, empty values left out."""
    text = html_to_text(html)
    if all(value.isascii() for value in headers.values()):
        message: Message = MIMEMultipart("alternative")
        for name, value in headers.items():
            message[name] = value
        message.attach(MIMEText(text, "plain", _UTF8))
        message.attach(MIMEText(html, "html", _UTF8))
        return message
    email = EmailMessage()
    for name, value in headers.items():
        email[name] = value
    email.set_content(text)
    email.add_alternative(html, subtype="html")
    return email


def html_to_text(html: str) -> str:
    """The words of ``html``, a line per block element, without markup, scripts or styles."""
    parser = _TextParser()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line) + "\n"


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in _HIDDEN:
            self._hidden += 1
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: object) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)
