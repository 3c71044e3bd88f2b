"""Office files with known facts, for bench/realfolders.py's finance folder (and any test that
needs a real .docx table with a header row, a slide deck or an e-mail): bytes, built the same
way every time.

    board_memo_docx()   a board memo: headings, a division table (header row + 4 rows), rules
    investor_pptx()     an investor-day deck: 4 slides of bullets, one with speaker notes
    ferry_eml()         a staff e-mail whose body states two facts

The facts are invented (a company called Northwind Medical) and written here, so a question
about them has one right answer that no model knows beforehand. python-docx and python-pptx
stamp the time into the zip members and core properties; both are fixed here, so the bytes
(and the sha256 an index records) do not change between builds.
"""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

FIXED_DATE = datetime(2024, 10, 14, 9, 0, 0)

MEMO_TITLE = "Northwind Medical - Board memo, October 2024"
MEMO_INTRO = ("This memo summarises the results of the fiscal year that ended on 30 September 2024 (FY2024) "
              "for the meeting of the board of directors on 21 October 2024.")
MEMO_TABLE = [
    ("Division", "FY2023 revenue ($M)", "FY2024 revenue ($M)", "Headcount"),
    ("Surgical Robotics", "14.2", "16.8", "112"),
    ("Diagnostics", "22.5", "21.9", "240"),
    ("Patient Monitoring", "9.4", "11.3", "87"),
    ("Home Care", "5.1", "6.0", "45"),
]
MEMO_SECTIONS = [
    ("Results", [
        "Group revenue grew in three of the four divisions. The table below gives each division's revenue "
        "and its headcount at the end of FY2024.",
    ]),
    ("Capital requests", [
        "Capital spending above $2 million needs to be approved by the full board.",
        "Division heads may only approve capital spending of up to $250,000; anything above that goes to the "
        "chief financial officer.",
        "The new cleanroom in Aarhus is budgeted at $3.4 million and is submitted for approval at this meeting.",
    ]),
    ("Risks", [
        "The Diagnostics division lost its largest reagent contract in March 2024, which explains its lower revenue.",
    ]),
]

DECK = [  # (title, bullets, speaker notes)
    ("Northwind Medical Investor Day 2024", ["Copenhagen, 12 November 2024"], ""),
    ("FY2024 highlights", [
        "Total revenue of $56.0 million, up 10.2% on FY2023",
        "Gross margin of 61.4%",
        "Free cash flow of $7.9 million",
    ], "Revenue growth came mostly from Surgical Robotics and Patient Monitoring."),
    ("Outlook for FY2025", [
        "Revenue guidance: $60 million to $63 million",
        "We do not plan to pay a dividend in FY2025",
        "Share buyback of up to $5 million",
    ], ""),
    ("Markets", [
        "Expansion into Brazil and Poland in 2025",
        "No plans to enter the Chinese market",
    ], ""),
]

MAIL_SUBJECT = "Staff ferry to the Lindholmen site from 4 November"
MAIL_BODY = (
    "Hello all,\n\n"
    "From Monday 4 November the staff ferry to the Lindholmen site leaves Pier 4 at 07:40 and 08:10 on weekdays, "
    "and returns at 16:30 and 17:15.\n\n"
    "The ferry does not run on public holidays; on those days please use the shuttle bus from the main gate.\n\n"
    "Best regards,\nFacilities team\n"
)


def _fixed_zip(data: bytes) -> bytes:
    """The same zip with every member stamped ``FIXED_DATE`` (python-docx/pptx use the clock)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, FIXED_DATE.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            dst.writestr(fixed, src.read(info.filename))
    return out.getvalue()


def board_memo_docx() -> bytes:
    import docx

    doc = docx.Document()
    doc.core_properties.created = doc.core_properties.modified = FIXED_DATE
    doc.core_properties.title = MEMO_TITLE
    doc.add_heading(MEMO_TITLE, level=1)
    doc.add_paragraph(MEMO_INTRO)
    for heading, paragraphs in MEMO_SECTIONS:
        doc.add_heading(heading, level=2)
        for text in paragraphs:
            doc.add_paragraph(text)
        if heading == "Results":
            table = doc.add_table(rows=len(MEMO_TABLE), cols=len(MEMO_TABLE[0]))
            table.style = "Table Grid"
            for r, row in enumerate(MEMO_TABLE):
                for c, cell in enumerate(row):
                    table.cell(r, c).text = cell
    buf = io.BytesIO()
    doc.save(buf)
    return _fixed_zip(buf.getvalue())


def investor_pptx() -> bytes:
    from pptx import Presentation

    prs = Presentation()
    prs.core_properties.created = prs.core_properties.modified = FIXED_DATE
    prs.core_properties.title = DECK[0][0]
    for n, (title, bullets, notes) in enumerate(DECK):
        slide = prs.slides.add_slide(prs.slide_layouts[0 if n == 0 else 1])
        slide.shapes.title.text = title
        body = slide.placeholders[1].text_frame
        body.text = bullets[0]
        for b in bullets[1:]:
            body.add_paragraph().text = b
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
    buf = io.BytesIO()
    prs.save(buf)
    return _fixed_zip(buf.getvalue())


def ferry_eml() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Facilities team <facilities@northwind-medical.example>"
    msg["To"] = "all-staff@northwind-medical.example"
    msg["Subject"] = MAIL_SUBJECT
    msg["Date"] = format_datetime(datetime(2024, 10, 28, 8, 15, tzinfo=UTC))
    msg["Message-ID"] = "<ferry-2024-11@northwind-medical.example>"
    msg.set_content(MAIL_BODY)
    return bytes(msg)
