"""Text files and HTML -> page text.

Text files are decoded with a documented fallback (UTF-8, UTF-8 with BOM, UTF-16 with BOM, then
cp1252 for legacy files); the codec is recorded so citations stay exact. UTF-8 with a few damaged
bytes fails with the offset of the first one rather than becoming cp1252 mojibake.

HTML goes through inscriptis, a real HTML-to-text renderer: scripts, styles, ``<head>`` and
``<nav>`` are dropped, entities decoded, block elements put on their own lines, and a data table
(no lists, blocks or tables in its cells) read as one paragraph per row whose cells keep their
column headers (``rows_as_paragraphs``). Offsets index
the text it returns (the README's recipe rebuilds it); the EPUB loader uses the same step.
XML keeps the older scheme: tags blanked *in place*, so offsets index the file itself.

What it does not do: walk directories or read files (``files``), split sentences (``chunking``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from ..errors import SourceError, brief
from ..types import Page
from . import limits
from .blocks import table_rows

_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def decode_text(path: Path, data: bytes) -> tuple[str, str]:
    """Bytes -> (text, codec). ``open(path, encoding=codec, newline="").read() == text``.

    Order: BOM-marked UTF-8/UTF-16, plain UTF-8, then cp1252 (Windows' Western default,
    which also covers ASCII and most Latin-1 text). Binary content (NUL bytes, or many
    control characters) fails instead of being decoded into garbage.
    """
    if not data.strip():
        raise SourceError(str(path), "empty file (no text)")
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec), codec
            except UnicodeDecodeError:
                raise SourceError(str(path), f"starts with a {codec} byte-order mark but is not valid {codec}") from None
    if b"\x00" in data[:65536]:
        raise SourceError(str(path), "looks like a binary file (contains NUL bytes), not text")
    try:
        text, codec = data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as e:
        if _mostly_utf8(data):  # cp1252 would turn its accents into mojibake ("cafÃ©")
            raise SourceError(
                str(path),
                f"not valid UTF-8: byte 0x{data[e.start]:02x} at offset {e.start} in otherwise UTF-8 text "
                "(damaged or mixed encodings); fix or re-save the file as UTF-8",
            ) from None
        try:
            text, codec = data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            raise SourceError(str(path), "not valid UTF-8 nor cp1252 text; convert it to UTF-8") from None
    sample = text[:65536]
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\n\r\f\v")
    if controls > max(8, len(sample) // 50):
        raise SourceError(str(path), "looks like a binary file (many control characters), not text")
    return text, codec


_UTF8_SEQ = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


def _mostly_utf8(data: bytes) -> bool:
    """True when most non-ASCII bytes form valid UTF-8 sequences: UTF-8 with a few bad bytes.

    Real cp1252 text almost never does ("Ã©" is two UTF-8 bytes of "é").

    >>> _mostly_utf8("café crème".encode() + b"\\xff"), _mostly_utf8("café".encode("cp1252"))
    (True, False)
    """
    high = sum(1 for b in data if b >= 0x80)
    in_seqs = sum(len(m) for m in _UTF8_SEQ.findall(data))
    return high > 0 and in_seqs >= high / 2


# Where a piece of markup starts: a comment's or a script/style block's opening, else a tag up
# to the next ">". Where a comment or a block ends is searched for separately (``markup_blanked``).
_OPENING = re.compile(r"<!--|<(script|style)\b|<[^>]*>", re.I)
_BLOCK = re.compile(r"<(script|style)\b.*?</\1\s*>", re.S | re.I)


def markup_blanked(html: str) -> str:
    r"""Blank out tags, comments, scripts and styles with spaces, keeping every offset (XML).

    >>> markup_blanked("<p>Hi <b>you</b></p>")
    '   Hi    you        '

    Newlines inside removed markup are kept so line numbers stay true. Character entities
    are left as written: the quote must match the file byte for byte.

    Linear time. What is blanked is exactly what ``<!--.*?-->|<(script|style)\b.*?</\1\s*>|<[^>]*>``
    (re.S, re.I) matches, but that one regex searches the rest of the file again from every
    opening that is never closed (``<script>`` repeated, or OpenDocument's ``<style:style>``,
    which never meets a ``</style>``): quadratic, 40 s for 200 KB. Here an end that is found
    is consumed with its markup, and one that is not there is not looked for again (none can
    appear further on); nothing after the last ``>`` is searched at all (no markup ends there).
    """
    last_gt = html.rfind(">")
    out: list[str] = []
    done = 0  # html[:done] is in ``out``
    unclosed: set[str] = set()  # "comment", "script", "style" (as lower-cased in the file): no end after here
    while done <= last_gt:
        m = _OPENING.search(html, done, last_gt + 1)
        if m is None:
            break
        start, end = m.start(), m.end()
        kind = "comment" if m.group(0) == "<!--" else (m.group(1) or "").lower()
        if kind and kind not in unclosed:
            if kind == "comment":
                close = html.find("-->", end)
                close = close + 3 if close >= 0 else -1
            else:
                block = _BLOCK.match(html, start, last_gt + 1)
                close = block.end() if block else -1
            if close < 0:
                unclosed.add(kind)
            else:
                end = close
        if kind in unclosed:  # never closed: an ordinary tag, up to its ">"
            end = html.find(">", start + 1) + 1
        piece = html[start:end]
        out += [html[done:start], re.sub(r"[^\n]", " ", piece) if "\n" in piece else " " * len(piece)]
        done = end
    out.append(html[done:])
    return "".join(out)


@lru_cache(maxsize=1)
def _inscriptis_config():
    from inscriptis.css_profiles import CSS_PROFILES
    from inscriptis.html_properties import Display
    from inscriptis.model.config import ParserConfig
    from inscriptis.model.html_element import HtmlElement

    return ParserConfig(css={**CSS_PROFILES["strict"], "nav": HtmlElement(display=Display.none)})


class HtmlCutShort(ValueError):
    """lxml stopped parsing part way and kept only what came before; the message says why."""


# a data table holds no such element; a layout table (a page laid out in cells) does, and keeps
# inscriptis' rendering
_LAYOUT = ".//table|.//div|.//ul|.//ol|.//dl|.//pre|.//blockquote|.//h1|.//h2|.//h3|.//h4|.//h5|.//h6|.//form"
_DATA_TABLES = f"//table[not(ancestor::table)][not({_LAYOUT})]"


def rows_as_paragraphs(tree) -> None:
    """Replace each data table of the lxml ``tree`` by one ``<p>`` per row (``blocks.table_rows``:
    its cells labelled with the header row's), in place, so a row is one line of the text.

    A cell's text is lxml's ``text_content()`` with a space after each ``<br>`` and ``<p>``.
    """
    from lxml.html import builder

    for table in tree.xpath(_DATA_TABLES):
        for e in table.iter("br", "p"):
            e.tail = " " + (e.tail or "")
        rows = [[c.text_content() for c in r.xpath("./th|./td")] for r in table.xpath("./tr|./*/tr")]
        div = builder.DIV(*(builder.P(row) for row in table_rows(rows)))
        div.tail = table.tail
        table.getparent().replace(table, div)


def html_text(html: str) -> str:
    """Visible text of an HTML document, as the README's recipe rebuilds it.

    >>> html_text("<nav>Home</nav><h1>Caf&eacute;</h1><p>One <b>two</b>.</p><script>x()</script>")
    'Café\\n\\nOne two.\\n'

    Raises ``HtmlCutShort`` where lxml gave up part way: past 255 nested elements, or a text
    run over 10 MB, it stops with a fatal error in its log and returns the tree so far, so the
    rest of the document would be lost without a word (a page of nested ``<div>`` came out as
    "no text"). inscriptis parses with lxml.html's shared default parser, whose log is that of
    its last run in this thread.
    """
    import inscriptis
    import lxml.html

    tree = inscriptis._get_html_tree(html)  # inscriptis' own parse (pinned version), as get_text does
    if tree is None:
        return ""
    rows_as_paragraphs(tree)
    text = inscriptis.Inscriptis(tree, _inscriptis_config()).get_text()
    why = _cut_short(lxml.html.html_parser.error_log)
    if why:
        raise HtmlCutShort(why)
    return text


def html_cut_short(data: bytes) -> str:
    """Why lxml would stop part way through the HTML ``data`` (UTF-8), else "". For HTML that
    another library parses first and then hands on, cut already (ebooklib's chapters)."""
    import lxml.html

    parser = lxml.html.HTMLParser(encoding="utf-8")
    try:
        lxml.html.document_fromstring(data, parser=parser)
    except Exception:  # noqa: S110  (empty or unparseable: not cut short, its reader says what it is)
        pass
    return _cut_short(parser.error_log)


def _cut_short(log) -> str:
    fatal = next((e for e in log if e.level_name == "FATAL"), None)
    if fatal is None:
        return ""
    msg = " ".join(fatal.message.split())
    if "depth" in msg.lower():
        return f"its elements nest more than 255 deep, where the HTML parser (lxml) stops ({msg})"
    return f"the HTML parser (lxml) stopped part way ({msg})"


def text_page(path: Path, data: bytes, encoding: str = "") -> tuple[tuple[Page, ...], str]:
    """A text file: one page, the decoded file. Returns (pages, codec). ``encoding``: the codec
    recorded at ingest, to rebuild the text exactly (``open(path, encoding=..., newline="")``)."""
    if encoding:
        return (Page(1, data.decode(encoding)),), encoding
    text, codec = decode_text(path, data)
    limits.take(len(text))
    view = markup_blanked(text) if path.suffix.lower() == ".xml" else ""
    return (Page(1, text, view),), codec


def html_page(path: Path, data: bytes, encoding: str = "") -> tuple[tuple[Page, ...], str]:
    """An HTML file: one page, inscriptis' text of the decoded file. Returns (pages, codec).
    ``encoding``: the codec recorded at ingest, used as it is."""
    if encoding:
        return (Page(1, html_text(data.decode(encoding))),), encoding
    html, codec = decode_text(path, data)
    try:
        text = html_text(html)
    except HtmlCutShort as e:
        raise SourceError(str(path), f"cannot read all of the HTML: {e}; the text after that point would be lost") from None
    except (ValueError, RecursionError) as e:  # lxml refuses some documents
        raise SourceError(str(path), f"cannot parse HTML ({brief(e)})") from None
    limits.take(len(text))
    return (Page(1, text),), codec
