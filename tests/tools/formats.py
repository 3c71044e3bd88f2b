"""Real files of every format ragcli reads, built with the same libraries that read them.

Used by the loader, verify and end-to-end tests, by bench/speed.py's per-format section and by
``make_sample_office.py``. Each builder writes one file holding one distinctive fact; ``FACTS``
pairs each format with a question whose answer is only in its file.

    python tests/tools/formats.py DIR     # writes one file of each format into DIR
"""

from __future__ import annotations

import io
import json
import sys
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path


@dataclass(frozen=True)
class Fact:
    name: str  # file name
    question: str
    sentence: str  # a sentence of the file that answers the question, as extracted


FACTS = {
    "docx": Fact("lighthouse.docx", "When was the Nordvik lighthouse built?",
                 "The Nordvik lighthouse was built in 1874 from granite quarried on Skarv island."),
    "pptx": Fact("osprey.pptx", "How much revenue did the Osprey product line reach in the third quarter?",
                 "Revenue of the Osprey product line reached 3.2 million euros in the third quarter."),
    "epub": Fact("glass.epub", "At what temperature did Ilsa Brenner fire her kiln?",
                 "Master glassmaker Ilsa Brenner fired her kiln at exactly 1120 degrees Celsius."),
    "odt": Fact("orchard.odt", "How much quince does the Varnel orchard harvest?",
                "The Varnel orchard harvests 40 tonnes of quince every October."),
    "odp": Fact("ferry.odp", "How long does the Halden ferry take to cross the fjord?",
                "The Halden ferry crosses the fjord in 25 minutes."),
    "eml": Fact("budget.eml", "Where is the budget meeting on Thursday?",
                "The budget meeting is moved to Thursday at 14:00 in room Tamarind."),
    "eml-pdf": Fact("budget.eml#storks.pdf", "How many breeding pairs of white storks did the Lindqvist survey count?",
                    "The Lindqvist survey counted 212 breeding pairs of white storks."),
    "ipynb": Fact("training.ipynb", "What learning rate did the training run use?",
                  "The training run used a learning rate of 0.0003 with cosine decay over 12 epochs."),
    "html": Fact("tram.html", "How many lines does the Ostrava tram network have?",
                 "The Ostrava tram network has 18 lines & carries 300,000 passengers a day."),
    "pdf-aes": Fact("plums.pdf", "When do Mirabelle plums ripen?",
                    "Mirabelle plums ripen in late August in the Lorraine region."),
}
OCR_FACT = Fact("valve-scan.pdf", "How often must the Kestrel valve be inspected?",
                "The Kestrel valve must be inspected\nevery 600 operating hours.")

FILLER = ("This paragraph is here so the document reads like a real one. It talks about nothing in "
          "particular and is not the answer to any question.")


def docx_bytes(fact: str = FACTS["docx"].sentence) -> bytes:
    import docx

    d = docx.Document()
    d.add_heading("The Nordvik Lighthouse", 0)
    d.add_paragraph(FILLER)
    d.add_heading("History", 1)
    d.add_paragraph(fact + " Its lamp was first lit in the winter of 1875.")
    t = d.add_table(rows=2, cols=2)
    for (r, c), text in {(0, 0): "Height", (0, 1): "31 metres", (1, 0): "Range", (1, 1): "19 nautical miles"}.items():
        t.cell(r, c).text = text
    d.add_paragraph("The keeper's house now holds a small museum & café.")
    out = io.BytesIO()
    d.save(out)
    return out.getvalue()


def pptx_bytes(fact: str = FACTS["pptx"].sentence) -> bytes:
    from pptx import Presentation
    from pptx.util import Inches

    prs = Presentation()
    s1 = prs.slides.add_slide(prs.slide_layouts[0])
    s1.shapes.title.text = "Osprey product line"
    s1.placeholders[1].text = "Quarterly review for the sales team"
    s2 = prs.slides.add_slide(prs.slide_layouts[1])
    s2.shapes.title.text = "Quarterly results"
    s2.placeholders[1].text_frame.text = fact
    s2.placeholders[1].text_frame.add_paragraph().text = "Margins stayed flat at 21 percent."
    table = s2.shapes.add_table(2, 2, Inches(1), Inches(5), Inches(4), Inches(1)).table
    for (r, c), text in {(0, 0): "Quarter", (0, 1): "Revenue", (1, 0): "Q3", (1, 1): "3.2 M€"}.items():
        table.cell(r, c).text = text
    s2.notes_slide.notes_text_frame.text = "Mention that the Osprey launch slipped by two weeks."
    out = io.BytesIO()
    prs.save(out)
    return out.getvalue()


def epub_bytes(fact: str = FACTS["epub"].sentence) -> bytes:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("ragcli-test-glass")
    book.set_title("Fire and Sand")
    book.set_language("en")
    c1 = epub.EpubHtml(title="The Harbour", file_name="c1.xhtml", lang="en")
    c1.content = f"<h1>The Harbour</h1><p>{FILLER}</p>"
    c2 = epub.EpubHtml(title="The Glassmaker", file_name="c2.xhtml", lang="en")
    c2.content = (f"<h1>The Glassmaker</h1><p>{fact} The apprentices watched &amp; waited.</p>"
                  "<p>By dawn the first bowl had cooled.</p>")
    for c in (c1, c2):
        book.add_item(c)
    book.toc = [epub.Link("c1.xhtml", "The Harbour", "c1"), epub.Link("c2.xhtml", "The Glassmaker", "c2")]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", c1, c2]
    out = io.BytesIO()
    epub.write_epub(out, book)
    return out.getvalue()


def odt_bytes(fact: str = FACTS["odt"].sentence) -> bytes:
    from odf.opendocument import OpenDocumentText
    from odf.text import H, P

    doc = OpenDocumentText()
    doc.text.addElement(H(outlinelevel=1, text="The Varnel Orchard"))
    doc.text.addElement(P(text=FILLER))
    doc.text.addElement(P(text=fact + " The fruit is sold to jam makers in the valley."))
    out = io.BytesIO()
    doc.write(out)
    return out.getvalue()


def odp_bytes(fact: str = FACTS["odp"].sentence) -> bytes:
    from odf.draw import Frame, Page, TextBox
    from odf.opendocument import OpenDocumentPresentation
    from odf.style import MasterPage, PageLayout
    from odf.text import P

    doc = OpenDocumentPresentation()
    layout = PageLayout(name="L")
    doc.automaticstyles.addElement(layout)
    master = MasterPage(name="M", pagelayoutname=layout)
    doc.masterstyles.addElement(master)
    for n, lines in enumerate((["Ferries of the fjord", FILLER], ["Crossing times", fact, "Boats leave every hour."]), 1):
        page = Page(name=f"slide{n}", masterpagename=master)
        doc.presentation.addElement(page)
        frame = Frame(width="20cm", height="10cm", x="1cm", y="1cm")
        page.addElement(frame)
        box = TextBox()
        frame.addElement(box)
        for line in lines:
            box.addElement(P(text=line))
    out = io.BytesIO()
    doc.write(out)
    return out.getvalue()


def pdf_bytes(pages: list[str]) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 10, text)
    return bytes(pdf.output())


def eml_bytes(fact: str = FACTS["eml"].sentence) -> bytes:
    msg = EmailMessage()
    msg["Subject"] = "Budget meeting moved"
    msg["From"] = "Ana Kovač <ana@example.org>"
    msg["To"] = "team@example.org"
    msg["Date"] = "Tue, 03 Mar 2026 09:12:00 +0100"
    msg.set_content(f"Hello all,\n\n{fact} Please bring the printed figures.\n\nAna\n")
    msg.add_attachment(pdf_bytes([FACTS["eml-pdf"].sentence + " The count was done in May."]),
                       maintype="application", subtype="pdf", filename="storks.pdf")
    msg.add_attachment(b"\x89PNG\r\n\x1a\n" + bytes(64), maintype="image", subtype="png", filename="logo.png")
    return bytes(msg)


def ipynb_bytes(fact: str = FACTS["ipynb"].sentence) -> bytes:
    nb = {
        "nbformat": 4, "nbformat_minor": 5, "metadata": {},
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["# Training notes\n", "\n", fact + "\n"]},
            {"cell_type": "code", "metadata": {}, "execution_count": 1, "source": "lr = 3e-4\nepochs = 12",
             "outputs": [{"output_type": "stream", "name": "stdout", "text": ["SECRET OUTPUT NOT INDEXED\n"]}]},
            {"cell_type": "raw", "metadata": {}, "source": "raw cell, skipped"},
            {"cell_type": "markdown", "metadata": {}, "source": "The validation loss stopped improving after epoch 9."},
        ],
    }
    return json.dumps(nb, indent=1).encode()


def html_bytes(fact: str = FACTS["html"].sentence) -> bytes:
    return (
        "<!DOCTYPE html><html><head><title>Trams</title><style>p { color: red }</style>"
        "<script>var x = 'SCRIPT TEXT NOT INDEXED';</script></head><body>"
        "<nav><a href='/'>Home</a> | <a href='/about'>NAVIGATION NOT INDEXED</a></nav>"
        "<h1>Trams of Ostrava</h1>"
        f"<p>{fact.replace('&', '&amp;')} The <b>oldest</b> line opened in 1894.</p>"
        "<p>Tickets cost 30&nbsp;CZK.</p></body></html>"
    ).encode()


def aes_pdf_bytes(fact: str = FACTS["pdf-aes"].sentence) -> bytes:
    from pypdf import PdfReader, PdfWriter

    w = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes([FILLER, fact]))))
    w.encrypt(user_password="", owner_password="owner", algorithm="AES-256")
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def scanned_pdf_bytes(lines: list[str] | None = None) -> bytes:
    """A PDF whose only page is an image of text (no text layer), like a scan."""
    from fpdf import FPDF
    from PIL import Image, ImageDraw, ImageFont

    lines = lines or ["Maintenance schedule", "The Kestrel valve must be inspected", "every 600 operating hours."]
    img = Image.new("L", (1240, 1754), 255)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=56)
    for i, line in enumerate(lines):
        draw.text((100, 150 + 110 * i), line, fill=0, font=font)
    pdf = FPDF()
    pdf.add_page()
    pdf.image(img, x=0, y=0, w=210, h=297)
    return bytes(pdf.output())


BUILDERS = {
    "docx": docx_bytes, "pptx": pptx_bytes, "epub": epub_bytes, "odt": odt_bytes, "odp": odp_bytes,
    "eml": eml_bytes, "ipynb": ipynb_bytes, "html": html_bytes, "pdf-aes": aes_pdf_bytes,
}


def write_all(folder: Path, ocr: bool = False) -> dict[str, Path]:
    """One file of each format in ``folder`` (plus a scanned PDF when ``ocr``); {kind: path}."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for kind, build in BUILDERS.items():
        p = folder / FACTS[kind].name
        p.write_bytes(build())
        out[kind] = p
    if ocr:
        p = folder / OCR_FACT.name
        p.write_bytes(scanned_pdf_bytes())
        out["pdf-ocr"] = p
    return out


if __name__ == "__main__":
    for kind, path in write_all(Path(sys.argv[1]), ocr="--ocr" in sys.argv).items():
        print(kind, path)
