"""Saved e-mails (.eml) -> the message as one page, and its attachments' bytes.

The page text is three header lines (Subject, From, Date, as the standard library's
``email.policy.default`` decodes them), a blank line and the text body (the ``text/plain``
part, else the ``text/html`` part through ``text.html_text``). Attachments whose file name has a
suffix ragcli reads are returned by name, first of each name only, so that ``load_all`` can
ingest them as documents of their own, named ``mail.eml#report.pdf``.

What it does not do: follow attachments inside attached messages, or decode TNEF (winmail.dat).
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

from ..errors import SourceError, brief
from ..types import Page
from . import limits
from .text import HtmlCutShort, html_text

ATTACHMENT_MARK = "#"  # "/mail/x.eml#report.pdf" names the attachment report.pdf of /mail/x.eml


def parse(path: Path | str, data: bytes) -> EmailMessage:
    try:
        return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]
    except Exception as e:  # the parser is lenient; this is a last resort
        raise SourceError(str(path), f"cannot parse e-mail ({brief(e)})") from None


def eml_pages(path: Path, data: bytes) -> tuple[Page, ...]:
    msg = parse(path, data)
    try:
        body = msg.get_body(("plain", "html"))
        content = "" if body is None else body.get_content()
        if body is not None and body.get_content_subtype() == "html":
            content = html_text(content)
        text = f"Subject: {msg['subject'] or ''}\nFrom: {msg['from'] or ''}\nDate: {msg['date'] or ''}\n\n{content}"
    except MemoryError:
        raise
    except HtmlCutShort as e:
        raise SourceError(str(path), f"cannot read all of the e-mail's HTML text: {e}") from None
    except Exception as e:  # unknown charsets, damaged MIME structure
        raise SourceError(str(path), f"cannot read the e-mail's text ({brief(e)})") from None
    limits.take(len(text))
    return (Page(1, text),)


def attachments(path: Path, data: bytes, suffixes: frozenset[str]) -> list[tuple[str, bytes]]:
    """(file name, bytes) of each attachment ragcli can read, first of each name, in order."""
    out: dict[str, bytes] = {}
    for part in parse(path, data).iter_attachments():
        name = part.get_filename() or ""
        if name and "/" not in name and Path(name).suffix.lower() in suffixes and name not in out:
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes) and payload:
                out[name] = payload
    return list(out.items())


def attachment_bytes(mail: Path, data: bytes, name: str) -> bytes:
    """The bytes of attachment ``name`` (the first of that name), as the README's recipe gets them."""
    for part in parse(mail, data).iter_attachments():
        if part.get_filename() == name:
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload
    raise SourceError(f"{mail}{ATTACHMENT_MARK}{name}", f"the e-mail has no attachment named {name!r} any more")


def split_source(source: str) -> tuple[str, str]:
    """("/m/x.eml", "a.pdf") for an attachment's source name, else (source, "").

    >>> split_source("/m/x.eml#a.pdf"), split_source("/m/notes#1.txt")
    (('/m/x.eml', 'a.pdf'), ('/m/notes#1.txt', ''))
    """
    i = source.lower().find(".eml" + ATTACHMENT_MARK)
    if i < 0:
        return source, ""
    return source[: i + 4], source[i + 5 :]
