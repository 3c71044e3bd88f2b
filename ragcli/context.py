"""The heading a quote sits under: what travels with a citation as ``context``.

A quote such as "Sales in Safety and Graphics totaled $6.2 billion" says nothing of the year;
the line "Year 2017 results:" above it does. ``heading_above`` finds, for a sentence of a
chunk, the nearest heading above it: a label line inside the chunk before the sentence (a
short line of its own that ends in a colon, or a markdown heading, "#" or underlined), else the chunk's
``heading`` (the markdown section, a slide's or PDF page's heading, the document's title:
``chunking``). It is shown beside the quote and to the model with its item, never part of the
quote: a quote is still exactly ``page_text[start:end]``.

This module reads only what a chunk already holds; it neither ranks (``evidence``) nor
prints (``cli``).
"""

from __future__ import annotations

import re

from .injection import addressed_to_assistant
from .types import Chunk, Span

MAX_CONTEXT_CHARS = 120  # a longer "heading" is body text, or too long to show beside a quote
# a chunk heading of more words is a PDF page's body run into its heading line ("Financial Position
# The following table presents selected ..."): shown as context it misleads more than it helps
MAX_HEADING_WORDS = 12
_LABEL_WORDS = 10  # a label line ("Year 2017 results:") has at most this many words
_MD_HEADING = re.compile(r"#{1,6}\s+(\S.*?)\s*#*\s*$")


# a manual page's navigation line taken for its heading: "Next: Thread Safety, Previous: ..., Up: ..."
_NAVIGATION = re.compile(r"\s*(Next|Previous|Prev|Up):\s", re.I)


def label_line(line: str) -> str:
    """The heading a line of page text is, or "".

    >>> label_line("Year 2017 results:"), label_line("## Windows notes"), label_line("* `\\\\r\\\\n` on Windows")
    ('Year 2017 results', 'Windows notes', '')
    >>> label_line("It sold well, as follows:")
    ''
    """
    text = " ".join(line.split())
    m = _MD_HEADING.fullmatch(text)
    if m:
        return m.group(1)[:MAX_CONTEXT_CHARS]
    text = text.strip("*_ ")  # "**Windows notes:**"
    if not text.endswith(":") or len(text) > MAX_CONTEXT_CHARS or len(text.split()) > _LABEL_WORDS:
        return ""
    body = text[:-1].strip().strip("*_").strip()
    # a label starts with a capital or a digit and is not a clause running on ("as follows:")
    if not body or not (body[0].isupper() or body[0].isdigit()) or "," in body or body.endswith((".", ";")):
        return ""
    return body


_UNDERLINE = re.compile(r"\s*(=+|-{3,})\s*")


def setext_heading(line: str, below: str) -> str:
    """``line`` when the line ``below`` underlines it ("man-db 2.11.1 (15 November 2022)" over
    "====="), else "".

    >>> setext_heading("man-db 2.11.1 (15 November 2022)", "================================")
    'man-db 2.11.1 (15 November 2022)'
    >>> setext_heading("", "-----"), setext_heading("Some text.", "more text")
    ('', '')
    """
    text = " ".join(line.split())
    if not text or not _UNDERLINE.fullmatch(below) or len(text) > MAX_CONTEXT_CHARS or len(text.split()) > MAX_HEADING_WORDS:
        return ""
    return text


def heading_above(chunk: Chunk, span: Span) -> str:
    """The nearest heading above ``span`` in ``chunk``: a label line before it, else the
    chunk's heading ("" when it has none).

    >>> s = Span(1, 19, 52, 2, 2, "Sales in Safety totaled $6.2 bn.")
    >>> c = Chunk("k", "f", "h", 1, 0, 52, 1, 2, "Year 2017 results:\\nSales in Safety totaled $6.2 bn.", (s,),
    ...           heading="3M 10-K")
    >>> heading_above(c, s), heading_above(c, Span(1, 0, 18, 1, 1, "Year 2017 results:"))
    ('Year 2017 results', '3M 10-K')
    """
    before = chunk.text[: max(span.start - chunk.start, 0)]
    lines = before.split("\n")
    found = next((h for i in range(len(lines) - 2, -1, -1)  # whole lines: the last is the span's
                  if (h := label_line(lines[i]) or setext_heading(lines[i], lines[i + 1]))), "")
    if not found and len(chunk.heading.split()) <= MAX_HEADING_WORDS and not _NAVIGATION.match(chunk.heading):
        found = " ".join(chunk.heading.split())[:MAX_CONTEXT_CHARS]
    return "" if addressed_to_assistant(found) else found  # the model reads it: no "SYSTEM: ..." heading
