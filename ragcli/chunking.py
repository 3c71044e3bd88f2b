"""Page text -> sentence spans -> chunks, every one with exact offsets.

What it does: finds sentence-like spans in a page (paragraph and markdown-line aware,
abbreviation aware), splits any span too long for the embedder at word boundaries, and
packs consecutive spans into chunks that fit the embedder's window *including* the
context header that is embedded with them, so that every stored character is embedded.

What it does not do: read files (``loaders``) or embed (``embedders``). Token counts come
from a ``count`` callable, normally the embedder's own tokenizer.

Invariant (property-tested): for every span and chunk, ``page.text[start:end] == text``.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from .types import Chunk, Document, Page, Span

TokenCounter = Callable[[Sequence[str]], list[int]]  # texts -> wordpieces each, no special tokens


@dataclass(frozen=True)
class ChunkParams:
    chunk_tokens: int = 200  # target wordpieces of chunk text per chunk
    max_tokens: int = 254  # hard limit for header + chunk text (model window minus [CLS]/[SEP])
    header_tokens: int = 40  # the context header is cut to this many wordpieces
    version: int = 3  # bump when segmentation, embedded or extracted text changes: old indexes must be rebuilt
    # (3: a table is read as one line per row, its cells labelled with their headers)
    # the header starts with the file's name as words ("3M_2018_10K.pdf" -> "3M 2018 10K"): a
    # question naming a company and a year finds that filing's chunks (FinanceBench, bench/
    # financebench.py). Embedded and in BM25's text only; never in a chunk's text or its quotes
    name_in_header: bool = True
    # a paged document's chunks carry their page's heading instead of the document's title: a
    # slide's or chapter's title, or a PDF page's leading heading lines ("Consolidated Statement
    # of Cash Flows"), so a table's later chunks still say what table they are in
    page_headings: bool = True

    @classmethod
    def for_window(cls, window: int) -> ChunkParams:
        """The chunks of an embedder reading ``window`` tokens, its two special tokens included:
        the same target size, the hard limit its window (MiniLM's 256: the defaults).

        >>> ChunkParams.for_window(256) == ChunkParams(), ChunkParams.for_window(509).max_tokens
        (True, 507)
        """
        return cls(max_tokens=window - 2)

    def as_dict(self) -> dict:
        out: dict = {
            "chunk_tokens": self.chunk_tokens,
            "max_tokens": self.max_tokens,
            "header_tokens": self.header_tokens,
            "version": self.version,
        }
        if self.name_in_header:  # recorded only when on: an index built before the field existed is a build without it
            out["name_in_header"] = True
        if self.page_headings:  # the same: recorded only when on
            out["page_headings"] = True
        return out


# A block boundary: blank line(s), or a line that starts a markdown structure element.
_BLOCK_LINE = re.compile(r"^[ \t]*(#{1,6}\s|[-*+]\s|\d{1,3}[.)]\s|>|\||```|~~~|={3,}|-{3,})", re.M)
_BLANK = re.compile(r"\n[ \t\r\f\v]*\n")
# Where a sentence ends (``sentence_ranges`` checks what follows a Western mark, ``_opens_sentence``):
# - west: . ! ? … (and closing quotes) before whitespace and what may open a sentence;
# - always: 。！？｡ and a fullwidth ． (not before a digit), Arabic ؟ and Urdu ۔, Devanagari । ॥,
#   whitespace or none after: scripts without case need no capital letter after them;
# - greek: ; (the Greek question mark, also U+037E) after a Greek letter, before a capital;
# - thai: whitespace between two Thai characters (Thai writes words together, sentences apart).
_CLOSE = "\"'”’)\\]»」』）》〉】"
_SENT_END = re.compile(
    rf"""(?P<west>[.!?…]+[{_CLOSE}]*)(?=\s+["'“‘(\[«¿¡「『（]*(?P<next>\S))"""
    rf"""|(?P<always>(?:[。！？｡؟۔।॥]|．(?!\d))+[{_CLOSE}]*)"""
    rf"""|(?P<greek>(?<=[\u0370-\u03ff\u1f00-\u1fff])[;\u037e][{_CLOSE}]*)(?=\s+["'“‘(«]*(?P<gnext>\S))"""
    r"""|(?P<thai>(?<=[\u0e00-\u0e7f])(?=[ \t]+[\u0e00-\u0e7f]))"""
)
_ABBREV = frozenset(
    "e.g i.e etc vs cf al fig figs eq eqs no nos dr mr mrs ms prof st jr sr inc ltd co approx "
    "ca resp dept est vol pp ed eds sec ch ref refs tab u.s u.k a.m p.m".split()
)
_LEAD_MARKUP = re.compile(r"^(#{1,6}\s+|[-*+]\s+|\d{1,3}[.)]\s+|>\s*|\|\s*)+")
_TRAIL_MARKUP = re.compile(r"(\s*\|)+$")
_WORD = re.compile(r"\w", re.U)


def _blocks(text: str) -> list[tuple[int, int]]:
    """Paragraph-like blocks as (start, end); markdown lines (headings, items, rows) alone."""
    out: list[tuple[int, int]] = []
    pos = 0
    for m in _BLANK.finditer(text):
        out.extend(_split_md_lines(text, pos, m.start()))
        pos = m.end()
    out.extend(_split_md_lines(text, pos, len(text)))
    return out


def _split_md_lines(text: str, start: int, end: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    block_start = start
    line_start = start
    while line_start < end:
        nl = text.find("\n", line_start, end)
        line_end = end if nl == -1 else nl + 1
        if line_start > block_start and _BLOCK_LINE.match(text, line_start, line_end):
            out.append((block_start, line_start))
            block_start = line_start
        if _BLOCK_LINE.match(text, line_start, line_end) and text[line_start:line_end].lstrip()[:1] in "#|":
            # headings and table rows are single-line blocks
            out.append((block_start, line_end))
            block_start = line_end
        line_start = line_end
    if block_start < end:
        out.append((block_start, end))
    return out


def _is_abbreviation(text: str, dot: int) -> bool:
    """True when the '.' at ``dot`` ends an abbreviation or an initial ("Dr.", "e.g.", "J.")."""
    if text[dot] != ".":
        return False
    i = dot
    while i > 0 and (text[i - 1].isalnum() or text[i - 1] == "."):
        i -= 1
    word = text[i:dot].lower()
    return word in _ABBREV or (len(word) == 1 and word.isalpha())


def _opens_sentence(ch: str) -> bool:
    """Whether ``ch``, after a Western end mark and whitespace, opens a sentence: a digit, a
    capital letter of any cased script, or a letter of a script without case (Arabic,
    Devanagari, Han, Thai...), where no capital can say so.

    >>> [_opens_sentence(c) for c in "TΣ7ع日t,"]
    [True, True, True, True, True, False, False]
    """
    return ch.isdigit() or ch.isupper() or (ch.isalpha() and not ch.islower())


def sentence_ranges(text: str) -> list[tuple[int, int]]:
    """Sentence-like ranges of ``text``, trimmed of whitespace and leading markdown markers.

    >>> t = "# Title\\nDr. Smith works at e.g. home. It is 3.5 km away! Yes."
    >>> [t[a:b] for a, b in sentence_ranges(t)]
    ['Title', 'Dr. Smith works at e.g. home.', 'It is 3.5 km away!', 'Yes.']
    >>> t = "东京是首都。人口很多！对吗？ مرحبا بكم. كيف حالك؟ جيد"
    >>> [t[a:b] for a, b in sentence_ranges(t)]
    ['东京是首都。', '人口很多！', '对吗？', 'مرحبا بكم.', 'كيف حالك؟', 'جيد']
    """
    out: list[tuple[int, int]] = []
    for b_start, b_end in _blocks(text):
        pos = b_start
        block = text[b_start:b_end]
        for m in _SENT_END.finditer(block):
            end = b_start + m.end()
            if m.group("west") is not None and (not _opens_sentence(m.group("next")) or (
                    _is_abbreviation(text, b_start + m.start()) and m.end() - m.start() == 1)):
                continue
            if m.group("greek") is not None and not m.group("gnext").isupper():
                continue
            out.extend(_trim(text, pos, end))
            pos = end
        out.extend(_trim(text, pos, b_end))
    return out


def _trim(text: str, start: int, end: int) -> list[tuple[int, int]]:
    seg = text[start:end]
    lead = len(seg) - len(seg.lstrip())
    seg = seg.strip()
    if not seg:
        return []
    m = _LEAD_MARKUP.match(seg)
    if m:
        lead += m.end()
        seg = seg[m.end() :]
    t = _TRAIL_MARKUP.search(seg)
    if t:
        seg = seg[: t.start()]
    seg = seg.rstrip()
    if not _WORD.search(seg):  # rules, separators, lone punctuation: not citable
        return []
    s = start + lead
    return [(s, s + len(seg))]


class LineIndex:
    """Maps offsets to 1-based line numbers (a line ends with '\\n'; CRLF counts once)."""

    def __init__(self, text: str) -> None:
        self._nl = [i for i, ch in enumerate(text) if ch == "\n"]

    def line(self, offset: int) -> int:
        return bisect.bisect_left(self._nl, offset) + 1


def _split_long(text: str, start: int, end: int, count: TokenCounter, limit: int) -> list[tuple[int, int]]:
    """Cut [start, end) at whitespace into pieces of at most ``limit`` wordpieces.

    BERT wordpiece counts are additive over whitespace-separated words, so words are
    counted once and packed greedily; a single word longer than the limit is cut by
    characters as a last resort.
    """
    words = [(m.start() + start, m.end() + start) for m in re.finditer(r"\S+", text[start:end])]
    counts = count([text[a:b] for a, b in words])
    pieces: list[tuple[int, int]] = []
    cur_start, cur_end, cur_n = -1, -1, 0
    for (a, b), n in zip(words, counts, strict=True):
        if n > limit:  # pathological token (a base64 blob, a 5 kB URL): hard character cut
            if cur_start >= 0:
                pieces.append((cur_start, cur_end))
                cur_start, cur_n = -1, 0
            step = max(1, (b - a) * limit // (n + 1))
            for s in range(a, b, step):
                pieces.append((s, min(b, s + step)))
            continue
        if cur_start >= 0 and cur_n + n > limit:
            pieces.append((cur_start, cur_end))
            cur_start, cur_n = -1, 0
        if cur_start < 0:
            cur_start = a
        cur_end, cur_n = b, cur_n + n
    if cur_start >= 0:
        pieces.append((cur_start, cur_end))
    return pieces


def page_spans(page: Page, count: TokenCounter, limit: int) -> list[tuple[Span, int]]:
    """Spans of one page with their wordpiece counts; none longer than ``limit``."""
    view = page.visible
    ranges = sentence_ranges(view)
    counts = count([view[a:b] for a, b in ranges]) if ranges else []
    final: list[tuple[int, int, int]] = []
    for (a, b), n in zip(ranges, counts, strict=True):
        if n <= limit:
            final.append((a, b, n))
        else:
            pieces = _split_long(view, a, b, count, limit)
            for (pa, pb), pn in zip(pieces, count([view[pa:pb] for pa, pb in pieces]), strict=True):
                final.append((pa, pb, pn))
    lines = LineIndex(page.text)
    return [
        (Span(page.number, a, b, lines.line(a), lines.line(b - 1), page.text[a:b]), n)
        for a, b, n in final
    ]


def chunk_key(sha256: str, page: int, start: int, end: int) -> str:
    return hashlib.sha1(f"{sha256}:{page}:{start}:{end}".encode()).hexdigest()[:16]


def chunk_document(doc: Document, count: TokenCounter, params: ChunkParams) -> list[Chunk]:
    """Pack each page's spans greedily into chunks of about ``params.chunk_tokens``.

    A chunk never crosses a page. The budget leaves room for the header (title and section)
    that ``embed_text`` puts in front, so header + chunk always fits ``params.max_tokens``.
    """
    budget = min(params.chunk_tokens, params.max_tokens - params.header_tokens)
    title = _title(doc)
    name = name_words(doc.path) if params.name_in_header else ""
    headings = page_headings(doc) if params.page_headings and doc.paged else [""] * len(doc.pages)
    chunks: list[Chunk] = []
    for page, page_heading in zip(doc.pages, headings, strict=True):
        spans = page_spans(page, count, budget)
        heading = page_heading or title
        group: list[Span] = []
        group_n = 0
        group_heading = heading

        for span, n in spans:
            is_heading = _is_heading(page.visible, span)
            if group and (group_n + n > budget or is_heading):
                chunks.append(_make_chunk(doc, page, group, group_heading, count, params, name))
                group, group_n = [], 0
            if is_heading:
                heading = _join_heading(title, span.text)
            if not group:
                group_heading = heading
            group.append(span)
            group_n += n
        if group:
            chunks.append(_make_chunk(doc, page, group, group_heading, count, params, name))
    # exact wordpiece counts of what is embedded (the header may merge with the body)
    ns = count([c.embed for c in chunks]) if chunks else []
    return [replace(c, n_tokens=n) for c, n in zip(chunks, ns, strict=True)]


def _make_chunk(doc: Document, page: Page, group: list[Span], heading: str, count: TokenCounter,
                params: ChunkParams, name: str = "") -> Chunk:
    """One chunk from consecutive spans of a page; ``embed`` is what the embedder reads:
    the header (``name``, then ``heading``) and the visible text of the spans."""
    a, b = group[0].start, group[-1].end
    body = " ".join(" ".join(page.visible[s.start : s.end].split()) for s in group)
    header = _cut_header(_name_and(name, heading), count, params.header_tokens)
    if header and body.startswith(header):  # a chunk that opens with its own heading
        header = ""
    return Chunk(
        key=chunk_key(doc.sha256, page.number, a, b),
        source=doc.path,
        sha256=doc.sha256,
        page=page.number,
        start=a,
        end=b,
        line_start=group[0].line_start,
        line_end=group[-1].line_end,
        text=page.text[a:b],
        spans=tuple(group),
        heading=heading,
        embed=f"{header}: {body}" if header else body,
    )


_HEAD_LINES = 8  # a page's heading is looked for in its first lines
_HEAD_KEEP = 3  # and is at most this many of them
_HEAD_WORDS = 16
_HEAD_CHARS = 90  # a longer line is body text
# a line of this many words, after a heading line, whose text runs on into the next line (which starts in
# lower case) is wrapped body text even when it is short. Only after a first heading line: pypdf sometimes
# runs a heading into its body on one line ("Item 7A. Quantitative ... Market Risk We are exposed to"),
# and a page's only heading words are better than none. Short lines ("Consolidated Balance Shee" / "t",
# pypdf splitting a word) are not affected.
_WRAP_WORDS = 8


def page_headings(doc: Document) -> list[str]:
    """Each page's heading: its own title (a slide's, a chapter's) where the format gives one,
    else (a PDF page) its leading heading lines; a page without one keeps the one before it.

    Leading heading lines are short lines (at most 90 characters, a capital first letter, not
    ending like a sentence or a list item unless two words long, "Item 8.", not mostly figures),
    taken from the top of the page after skipping lines that open many pages of the document
    (running headers such as "Table of Contents") and bare page numbers. At most 3 lines and 16
    words; a later line of 8 words or more that runs on into a lower-case line is body text and
    ends the heading. Only the header of the page's chunks uses it: it is never stored as text or quoted.
    """
    tops = [_top_lines(page.visible) for page in doc.pages]
    running = _running_lines(tops)
    out: list[str] = []
    last = ""
    for page, top in zip(doc.pages, tops, strict=True):
        own = " ".join(page.title.split()) or _leading_heading(top, running)
        last = own or last
        out.append(last)
    return out


def _line_key(line: str) -> str:
    return re.sub(r"[\d\W_]+", " ", line.lower()).strip()


def _top_lines(view: str) -> list[str]:
    lines = []
    for line in view.splitlines():
        line = " ".join(line.split())
        if line:
            lines.append(line)
            if len(lines) == _HEAD_LINES:
                break
    return lines


def _running_lines(tops: Sequence[list[str]]) -> frozenset[str]:
    """Lines (compared without figures) opening at least 3 pages and a fifth of them (``tops``:
    each page's first lines)."""
    seen: dict[str, int] = {}
    for top in tops:
        for key in {_line_key(ln) for ln in top[:3]}:
            seen[key] = seen.get(key, 0) + 1
    least = max(3, len(tops) // 5)
    return frozenset(k for k, n in seen.items() if n >= least)


def _leading_heading(lines: list[str], running: frozenset[str]) -> str:
    r"""The heading among a page's first ``lines`` (``_top_lines``).

    >>> _leading_heading(_top_lines("Table of Contents\n3M Company and Subsidiaries\nConsolidated Balance Sheet\n"
    ...                  "(Dollars in millions)\nAssets 2,853 3,053 1,076 380\n"), frozenset({"table of contents"}))
    '3M Company and Subsidiaries Consolidated Balance Sheet (Dollars in millions)'
    >>> _leading_heading(_top_lines("delivery under existing contracts. The accounting quantity is limited\n"), frozenset())
    ''
    """
    kept: list[str] = []
    for i, line in enumerate(lines):
        key = _line_key(line)
        if not key or (key in running and not kept):  # a page number, a running header
            continue
        if not _is_heading_line(line) or len(kept) == _HEAD_KEEP:
            break
        if kept and len(line.split()) >= _WRAP_WORDS and lines[i + 1 : i + 2] and lines[i + 1][:1].islower():
            break  # a sentence-long line that runs on into the next: body text under a heading
        kept.append(line)
    words = " ".join(kept).split()
    return " ".join(words[:_HEAD_WORDS])


def _is_heading_line(line: str) -> bool:
    letters = re.search(r"[^\W\d_]", line)
    if not letters or not letters.group().isupper() or len(line) > _HEAD_CHARS:
        return False
    if line.endswith((",", ";")) or (line.endswith(".") and len(line.split()) > 2):
        return False
    digits = sum(ch.isdigit() for ch in line)
    return digits * 3 < len(line.replace(" ", ""))


def _is_heading(view: str, span: Span) -> bool:
    line_start = view.rfind("\n", 0, span.start) + 1
    return view[line_start : span.start].lstrip().startswith("#")


def _join_heading(title: str, heading: str) -> str:
    heading = heading.strip()
    if not title or heading.lower() == title.lower():
        return heading
    return f"{title} — {heading}"


def name_words(path: str) -> str:
    """A file's name as words, for the header; "" when it names nothing (a number, a hash).

    >>> name_words("/f/3M_2018_10K.pdf"), name_words("/f/Pfizer_2023Q2_10Q.pdf"), name_words("/d/1545.txt")
    ('3M 2018 10K', 'Pfizer 2023 Q2 10Q', '')
    >>> name_words("/d/quantization-and-gguf.md"), name_words("/d/5f2b9c0e4d1a7b3c9e8f.txt")
    ('quantization and gguf', '')
    """
    stem = path.replace("\\", "/").rsplit("/", 1)[-1]
    stem = stem.rsplit(".", 1)[0] if "." in stem[1:] else stem
    words = [w for w in re.split(r"[\W_]+", stem) if w]
    # a year glued to a letter group ("2023Q2") is two words to a tokenizer: "2023 Q2"
    words = [p for w in words for p in re.split(r"(?<=\d{4})(?=[^\W\d_])", w)]
    if not any(re.search(r"[^\W\d_]", w) for w in words):  # only numbers: an id
        return ""
    if len(words) == 1 and re.fullmatch(r"[0-9a-fA-F]{16,}", words[0]):  # a hash or uuid-like id
        return ""
    return " ".join(words)


def _name_and(name: str, heading: str) -> str:
    """``name — heading``; the name alone is left out when the heading already says it.

    >>> _name_and("3M 2018 10K", "UNITED STATES"), _name_and("quantization and gguf", "Quantization and GGUF")
    ('3M 2018 10K — UNITED STATES', 'Quantization and GGUF')
    """
    if not name or name.lower() in heading.lower():
        return heading
    return f"{name} — {heading}" if heading else name


def _title(doc: Document) -> str:
    """The first markdown H1, else a short first line (a paper's title), else the file name.

    A first line counts as a title when it is at most 120 characters, has a letter and does
    not end like a sentence or a list item (``.``, ``:``, ``;``, ``,``).
    """
    first = doc.pages[0].visible[:2000] if doc.pages else ""
    m = re.search(r"^#\s+(.+?)\s*$", first, re.M)
    if m:
        return m.group(1)
    line = next((ln.strip() for ln in first.splitlines() if ln.strip()), "")
    if 3 <= len(line) <= 120 and re.search(r"[^\W\d_]", line) and not line.endswith((".", ":", ";", ",")):
        return line
    name = doc.path.rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0].replace("_", " ").replace("-", " ")


def _cut_header(header: str, count: TokenCounter, limit: int) -> str:
    """Keep the leading words of ``header`` that fit in ``limit`` wordpieces (1 kept for ':')."""
    words = header.split()
    if not words:
        return ""
    total, keep = 0, 0
    for n in count(words):
        if total + n + 1 > limit:
            break
        total += n
        keep += 1
    return " ".join(words[:keep])
