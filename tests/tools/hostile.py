"""Hostile inputs for the parse stage: small files that cost a reader without end, built exactly.

Each builder returns the file's bytes (or text); ``tests/test_safety_parsing.py`` ingests them
beside ordinary files, which must still be ingested. Sizes are parameters, so a test can
make one just big enough to cross a limit.

    python tests/tools/hostile.py DIR      # writes one file of each kind into DIR

- ``deep_notebook``: a .ipynb whose JSON nests lists ``depth`` deep (``json`` raises
  RecursionError past about 1,000);
- ``repeated_script``: ``<script>`` opened ``n`` times and never closed (markup blanking used
  to search the rest of the file from each one: quadratic);
- ``flat_odf_xml``: a flat OpenDocument file (.xml) of ``n`` ``<style:style>`` elements, which
  never meet a ``</style>`` (the same quadratic search);
- ``deep_html``: elements nested ``depth`` deep around the text (lxml stops at 255 and keeps
  only what came before, silently);
- ``epub_with_deep_chapter``: an EPUB whose second chapter is ``deep_html``; the others are fine;
- ``pdf_text_bomb``: a PDF of 1.5 KB whose page tree lists one page of 2,000 lines 1,000 times
  (pypdf extracts every one: 108 MB of text; form XObjects drawn in a loop pypdf caps itself);
- ``docx_huge_xml``: a .docx whose document part is ``mb`` MB of paragraphs of varied words (so
  it compresses like real text, under the zip-bomb ratio guard) that python-docx parses whole.
"""

from __future__ import annotations

import io
import json
import random
import sys
import zipfile
import zlib
from pathlib import Path

FINE_SENTENCE = "The ordinary file beside the hostile one is about harbour cranes and their wire ropes."


def deep_notebook(depth: int = 100_000) -> bytes:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# A notebook\n", FINE_SENTENCE]}]
    head = json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})[:-1]
    return (head + ', "deep": ' + "[" * depth + "]" * depth + "}").encode()


def repeated_script(n: int = 25_000) -> str:
    return "<doc>" + "<script>x" * n + "</doc>\n"


def flat_odf_xml(n: int = 3_000) -> str:
    styles = "".join(f'<style:style style:name="P{i}" style:family="paragraph">'
                     f'<style:text-properties fo:font-size="12pt"/></style:style>' for i in range(n))
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<office:document xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
            'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" '
            'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
            'xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0" office:version="1.2">'
            f"<office:styles>{styles}</office:styles><office:body><office:text>"
            f"<text:p>{FINE_SENTENCE}</text:p></office:text></office:body></office:document>\n")


def deep_html(depth: int = 1_000, text: str = "Deep inside the nesting lies a sentence about lanterns.") -> str:
    return (f"<html><body><p>{FINE_SENTENCE}</p>" + "<div>" * depth + f"<p>{text}</p>" + "</div>" * depth
            + "<p>A closing paragraph about copper kettles.</p></body></html>")


def epub_with_deep_chapter(depth: int = 1_000) -> bytes:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("ragcli-hostile-deep")
    book.set_title("Deep Chapters")
    book.set_language("en")
    c1 = epub.EpubHtml(title="Plain", file_name="c1.xhtml", lang="en")
    c1.content = f"<h1>Plain</h1><p>{FINE_SENTENCE}</p>"
    c2 = epub.EpubHtml(title="Deep", file_name="c2.xhtml", lang="en")
    c2.content = "<h1>Deep</h1><p>Replaced below.</p>"
    c3 = epub.EpubHtml(title="After", file_name="c3.xhtml", lang="en")
    c3.content = "<h1>After</h1><p>The third chapter is about copper kettles and their spouts.</p>"
    for c in (c1, c2, c3):
        book.add_item(c)
    book.toc = [epub.Link(c.file_name, c.title, c.file_name) for c in (c1, c2, c3)]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = [c1, c2, c3]
    out = io.BytesIO()
    epub.write_epub(out, book)  # (ebooklib cuts the deep chapter short while writing: put it back after)
    deep = ('<?xml version="1.0" encoding="utf-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><head>'
            "<title>Deep</title></head><body><h1>Deep</h1>" + "<div>" * depth
            + "<p>Lost words about lanterns.</p>" + "</div>" * depth + "</body></html>")
    return _replace_member(out.getvalue(), "EPUB/c2.xhtml", deep.encode())


def _replace_member(zip_bytes: bytes, name: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, data if info.filename == name else src.read(info))
    return out.getvalue()


def pdf_text_bomb(lines: int = 2_000, fanout: int = 10, depth: int = 3,
                  line: str = "Every copy of this line is extracted again and again.") -> bytes:
    """A PDF of about 1.5 KB: one compressed content stream that shows ``line`` ``lines`` times,
    on a page that a page tree lists ``fanout ** depth`` times (each node lists the one below
    ``fanout`` times). pypdf reads every page: 2,000 lines x 1,000 pages is 108 MB of text."""
    objs: list[bytes] = []  # object n is objs[n - 1]

    def add(body: bytes) -> int:
        objs.append(body)
        return len(objs)

    safe = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    ops = zlib.compress(b"BT /F1 10 Tf 72 720 Td 12 TL " + b" ".join([f"({safe}) '".encode()] * lines) + b" ET", 9)
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    content = add(f"<< /Filter /FlateDecode /Length {len(ops)} >>\nstream\n".encode() + ops + b"\nendstream")
    page = len(objs) + 1
    nodes = list(range(page + 1, page + 1 + depth))  # nodes[0] lists the page, nodes[-1] is the root
    add(f"<< /Type /Page /Parent {nodes[0]} 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 {font} 0 R >> >> "
        f"/Contents {content} 0 R >>".encode())
    child = page
    for i, n in enumerate(nodes):
        parent = f" /Parent {nodes[i + 1]} 0 R" if i + 1 < depth else ""
        assert add(f"<< /Type /Pages{parent} /Kids [{' '.join([f'{child} 0 R'] * fanout)}] "
                   f"/Count {fanout ** (i + 1)} >>".encode()) == n
        child = n
    catalog = add(f"<< /Type /Catalog /Pages {nodes[-1]} 0 R >>".encode())
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objs) + 1} /Root {catalog} 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def docx_huge_xml(mb: float = 40.0, seed: int = 24) -> bytes:
    """A valid .docx (built by python-docx) whose document.xml is replaced by ``mb`` MB of
    paragraphs of varied words."""
    from docx import Document

    base = io.BytesIO()
    Document().save(base)
    rng = random.Random(seed)
    words = [("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))))
             for _ in range(5_000)]
    head = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document '
            'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>')
    parts, size = [head], len(head)
    while size < mb * 1e6:
        p = f"<w:p><w:r><w:t>{' '.join(rng.choices(words, k=40))}.</w:t></w:r></w:p>"
        parts.append(p)
        size += len(p)
    parts.append("</w:body></w:document>")
    return _replace_member(base.getvalue(), "word/document.xml", "".join(parts).encode())


def write_all(folder: Path) -> dict[str, Path]:
    """One file of each kind in ``folder``; {kind: path}."""
    folder.mkdir(parents=True, exist_ok=True)
    made = {
        "deep.ipynb": deep_notebook(), "scripts.xml": repeated_script().encode(),
        "styles.xml": flat_odf_xml().encode(), "deep.html": deep_html().encode(),
        "deep.epub": epub_with_deep_chapter(), "bomb.pdf": pdf_text_bomb(), "huge.docx": docx_huge_xml(),
    }
    out = {}
    for name, data in made.items():
        (folder / name).write_bytes(data)
        out[name] = folder / name
    return out


if __name__ == "__main__":
    for name, path in write_all(Path(sys.argv[1])).items():
        print(f"{path.stat().st_size:>12,}  {name}")
