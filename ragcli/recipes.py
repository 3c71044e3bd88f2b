"""The documented recipes: the page text a citation's offsets index, rebuilt from the file's bytes.

One function per ``# recipe: NAME`` block of docs/formats.md, written with the same lines, and
each using only the library that its recipe names (and the standard library). ``rag verify``
re-checks quotes with these functions and no other ragcli code that reads documents;
``tests/test_loaders_recipes.py`` runs the docs' blocks, these functions and the loaders on
every format and checks that all three give the same text.

Every recipe takes ``data`` (the file's bytes; for an e-mail attachment, the bytes that
``attachment`` takes out of the message), ``page`` (the citation's 1-based page, ``None`` for
files without pages) and ``encoding`` (the codec recorded for text and HTML files) and returns
the page text; a quote is ``text[start:end]``.

What it does not do: open files (the caller reads them, ``recheck``), guard against hostile
files beyond what the libraries do, or decide which recipe a citation needs (its
``extraction`` names it: ``RECIPES``). Of ragcli it reads only the ``formats`` table, for the
extra a recipe's library comes with (``EXTRA_OF``).
"""

from __future__ import annotations

from collections.abc import Callable

from .formats import FORMATS

Recipe = Callable[[bytes, "int | None", str], str]


def text_file(data: bytes, page: int | None, encoding: str) -> str:
    """``text``: a text file, decoded with its recorded codec, newlines untouched.

    >>> text_file("Crème\\r\\nbrûlée".encode("cp1252"), None, "cp1252")
    'Crème\\r\\nbrûlée'
    """
    text = data.decode(encoding)
    return text


def pypdf_page(data: bytes, page: int | None, encoding: str) -> str:
    """``pypdf``: a PDF page's text layer."""
    import io

    from pypdf import PdfReader
    text = PdfReader(io.BytesIO(data)).pages[page - 1].extract_text()
    return text


def ocr_page(data: bytes, page: int | None, encoding: str) -> str:
    """``ocr``: a PDF page without a text layer, rendered by pdfium and read by RapidOCR."""
    import pypdfium2
    import rapidocr_onnxruntime
    pdf_page = pypdfium2.PdfDocument(data)[page - 1]
    image = pdf_page.render(scale=min(2, 4000 / max(pdf_page.get_size()))).to_numpy()
    result, _ = rapidocr_onnxruntime.RapidOCR()(image)
    text = "\n".join(line[1] for line in result or [])
    return text


def html_text(html: str) -> str:
    """The visible text of an HTML document (inscriptis; ``<nav>`` dropped; a data table read as
    one paragraph per row, through ``table_rows``), for three recipes.

    >>> html_text("<nav>Home</nav><h1>Caf&eacute;</h1><p>One <b>two</b>.</p>")
    'Café\\n\\nOne two.\\n'
    """
    import inscriptis
    from inscriptis.css_profiles import CSS_PROFILES
    from inscriptis.html_properties import Display
    from inscriptis.model.config import ParserConfig
    from inscriptis.model.html_element import HtmlElement
    from lxml.html import builder
    tree = inscriptis._get_html_tree(html)  # inscriptis' own parse (lxml), as its get_text does
    if tree is None:
        return ""
    layout = ".//table|.//div|.//ul|.//ol|.//dl|.//pre|.//blockquote|.//h1|.//h2|.//h3|.//h4|.//h5|.//h6|.//form"
    for table in tree.xpath(f"//table[not(ancestor::table)][not({layout})]"):  # data tables: none of these inside
        for e in table.iter("br", "p"):
            e.tail = " " + (e.tail or "")
        rows = [[c.text_content() for c in r.xpath("./th|./td")] for r in table.xpath("./tr|./*/tr")]
        div = builder.DIV(*(builder.P(row) for row in table_rows(rows)))
        div.tail = table.tail
        table.getparent().replace(table, div)
    return inscriptis.Inscriptis(tree, ParserConfig(css={**CSS_PROFILES["strict"], "nav": HtmlElement(display=Display.none)})).get_text()


def inscriptis_html(data: bytes, page: int | None, encoding: str) -> str:
    """``inscriptis``: an HTML file, decoded with its recorded codec."""
    text = html_text(data.decode(encoding))
    return text


def table_rows(rows):
    """``tables``: a table's cell texts, row by row -> one block per row, each cell labelled with
    its column's header (the first row, when it is one); for three recipes.

    >>> table_rows([["Division", "FY2024 revenue ($M)"], ["Home Care", "6.0"]])
    ['Division: Home Care | FY2024 revenue ($M): 6.0']
    """
    import re
    cells = [[" ".join(c.split()) for c in row] for row in rows]
    value = re.compile(r"[-+($€£]*\d(?!\d\d\d$)")  # a number or amount, not a bare year: no header holds one
    head = cells[0] if len(cells) > 1 and all(cells[0][1:]) and not any(value.match(c) for c in cells[0]) else []
    if head:
        cells = [[f"{h}: {c}" if h and c else c for h, c in zip(head + [""] * len(row), row, strict=False)] for row in cells[1:]]
    return [" | ".join(c for c in row if c) for row in cells if any(row)]


def docx_text(data: bytes, page: int | None, encoding: str) -> str:
    """``python-docx``: body paragraphs and table rows (``table_rows``) in document order."""
    import io

    from docx import Document
    from docx.table import Table
    blocks = []
    for b in Document(io.BytesIO(data)).iter_inner_content():
        blocks += table_rows([[c.text for c in r.cells] for r in b.rows]) if isinstance(b, Table) else [b.text]
    text = "\n\n".join(blocks)
    return text


def pptx_slide(data: bytes, page: int | None, encoding: str) -> str:
    """``python-pptx``: one slide's text frames and table rows in shape order, then its notes."""
    import io

    from pptx import Presentation
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    def texts(shapes):
        for s in shapes:
            if s.shape_type == MSO_SHAPE_TYPE.GROUP:
                yield from texts(s.shapes)
            elif s.has_text_frame:
                yield s.text_frame.text
            elif s.has_table:
                yield from table_rows([[c.text for c in r.cells] for r in s.table.rows])
    slide = Presentation(io.BytesIO(data)).slides[page - 1]
    blocks = list(texts(slide.shapes))
    if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
        blocks.append(slide.notes_slide.notes_text_frame.text)
    text = "\n\n".join(blocks)
    return text


def odf_text(data: bytes, page: int | None, encoding: str) -> str:
    """``odfpy``: every paragraph and heading of an .odt, or of one .odp slide, in order; tables by row."""
    import io

    from odf import teletype
    from odf.draw import Page
    from odf.namespaces import TABLENS, TEXTNS
    from odf.opendocument import load
    from odf.table import TableCell, TableRow
    from odf.text import P

    def blocks(e):
        if getattr(e, "qname", None) in ((TEXTNS, "p"), (TEXTNS, "h")):
            yield teletype.extractText(e)
        elif getattr(e, "qname", None) == (TABLENS, "table"):
            yield from table_rows([[" ".join(teletype.extractText(p) for p in c.getElementsByType(P))
                                    for c in r.getElementsByType(TableCell)] for r in e.getElementsByType(TableRow)])
        else:
            for child in e.childNodes:
                yield from blocks(child)
    doc = load(io.BytesIO(data))
    root = doc.presentation.getElementsByType(Page)[page - 1] if page else doc.text  # .odp slide, .odt body
    text = "\n\n".join(blocks(root))
    return text


def epub_chapter(data: bytes, page: int | None, encoding: str) -> str:
    """``ebooklib``: one spine item (chapter) of an EPUB, through ``html_text``."""
    import io

    from ebooklib import epub
    book = epub.read_epub(io.BytesIO(data), options={"ignore_ncx": True})
    text = html_text(book.get_item_with_id(book.spine[page - 1][0]).get_content().decode("utf-8"))
    return text


def email_message(data: bytes, page: int | None, encoding: str) -> str:
    """``email``: three header lines, a blank line and the text body (HTML through ``html_text``)."""
    import email
    import email.policy
    msg = email.message_from_bytes(data, policy=email.policy.default)
    body = msg.get_body(("plain", "html"))
    content = "" if body is None else body.get_content()
    if body is not None and body.get_content_subtype() == "html":
        content = html_text(content)
    text = f"Subject: {msg['subject'] or ''}\nFrom: {msg['from'] or ''}\nDate: {msg['date'] or ''}\n\n{content}"
    return text


def notebook_cells(data: bytes, page: int | None, encoding: str) -> str:
    """``json``: a notebook's markdown and code cells; outputs and raw cells skipped."""
    import json
    cells = json.loads(data.decode("utf-8"))["cells"]
    text = "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] in ("markdown", "code"))
    return text


def attachment(data: bytes, name: str) -> bytes:
    """``attachment``: the bytes of the first attachment called ``name`` of the message ``data``
    (``StopIteration`` when it has none of that name)."""
    import email
    import email.policy
    msg = email.message_from_bytes(data, policy=email.policy.default)
    data = next(p for p in msg.iter_attachments() if p.get_filename() == name).get_payload(decode=True)
    return data


# a citation's ``extraction`` -> its recipe
RECIPES: dict[str, Recipe] = {
    "text": text_file, "pypdf": pypdf_page, "ocr": ocr_page, "inscriptis": inscriptis_html,
    "python-docx": docx_text, "python-pptx": pptx_slide, "odfpy": odf_text, "ebooklib": epub_chapter,
    "email": email_message, "json": notebook_cells,
}

# the ``pip install`` that brings a recipe's library, where it is an optional extra (``formats``)
EXTRA_OF = {e: f"ragcli[{f.extra}]" for f in FORMATS if f.extra for e in f.also}
