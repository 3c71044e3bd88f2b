"""Tables are read as rows: one block (one line, one sentence span) per row, each cell labelled
with its column's header, in .docx, .pptx and .odt files; the loaders and the documented recipe
(``recipes.table_rows``) give the same text.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ragcli import loaders, recipes
from ragcli.chunking import ChunkParams, chunk_document
from ragcli.loaders.blocks import table_rows

from .tools import finance_office

ROBOTICS = "Division: Surgical Robotics | FY2023 revenue ($M): 14.2 | FY2024 revenue ($M): 16.8 | Headcount: 112"

CASES = [  # (cell texts, row by row; the blocks)
    ([["Segment", "2023", "2022"], ["Robotics", "$16.8", "$14.2"]], ["Segment: Robotics | 2023: $16.8 | 2022: $14.2"]),
    ([["", "2023", "2022"], ["Net sales", "280,522", "232,887"]], ["Net sales | 2023: 280,522 | 2022: 232,887"]),
    ([["Height", "31 metres"], ["Range", "19 nautical miles"]], ["Height | 31 metres", "Range | 19 nautical miles"]),
    ([["Name", "Role"], ["Ana  Kovač\nlead", ""], ["", ""], ["Bo", "QA", "extra"]],
     ["Name: Ana Kovač lead", "Name: Bo | Role: QA | extra"]),
    ([["Name", ""], ["Ana", "x"]], ["Name", "Ana | x"]),  # a header cell but the corner empty: no header
    ([["Only one row", "of cells"]], ["Only one row | of cells"]),
    ([], []),
]


@pytest.mark.parametrize(("rows", "blocks"), CASES)
def test_table_rows_label_cells_with_the_header_row_when_there_is_one(rows, blocks) -> None:
    assert table_rows(rows) == blocks
    assert recipes.table_rows(rows) == blocks


def spans_of(doc) -> list[str]:
    return [s.text for c in chunk_document(doc, lambda ts: [len(t.split()) + 1 for t in ts], ChunkParams())
            for s in c.spans]


def test_a_docx_table_row_is_one_block_and_one_span_with_its_headers(tmp_path: Path) -> None:
    f = tmp_path / "memo.docx"
    f.write_bytes(finance_office.board_memo_docx())
    (doc,) = loaders.load_all(f)[0]
    page = doc.pages[0]
    blocks = [page.text[b:].split("\n\n")[0] for b in page.blocks]
    assert ROBOTICS in blocks and "Division: Home Care | FY2023 revenue ($M): 5.1 | FY2024 revenue ($M): 6.0 | Headcount: 45" in blocks
    assert "Division" not in blocks  # the header row is in every row, not a block of its own
    assert ROBOTICS in spans_of(doc)
    assert recipes.docx_text(f.read_bytes(), None, "") == page.text


def test_an_odt_table_is_read_by_rows(tmp_path: Path) -> None:
    from odf.opendocument import OpenDocumentText
    from odf.table import Table, TableCell, TableColumn, TableRow
    from odf.text import P

    odt = OpenDocumentText()
    odt.text.addElement(P(text="Harvest by year."))
    table = Table(name="Harvest")
    table.addElement(TableColumn(numbercolumnsrepeated=3))
    for row in (["Fruit", "2023", "2024"], ["Quince", "38 t", "40 t"], ["Plum", "12 t", "9 t"]):
        tr = TableRow()
        for cell in row:
            tc = TableCell()
            tc.addElement(P(text=cell))
            tr.addElement(tc)
        table.addElement(tr)
    odt.text.addElement(table)
    odt.text.addElement(P(text="The end."))
    buf = io.BytesIO()
    odt.write(buf)
    f = tmp_path / "harvest.odt"
    f.write_bytes(buf.getvalue())
    (doc,) = loaders.load_all(f)[0]
    assert doc.pages[0].text == "Harvest by year.\n\nFruit: Quince | 2023: 38 t | 2024: 40 t\n\nFruit: Plum | 2023: 12 t | 2024: 9 t\n\nThe end."
    assert recipes.odf_text(f.read_bytes(), None, "") == doc.pages[0].text
    assert "Fruit: Quince | 2023: 38 t | 2024: 40 t" in spans_of(doc)


def test_a_pptx_table_row_keeps_its_headers(tmp_path: Path) -> None:
    f = tmp_path / "deck.pptx"
    f.write_bytes(finance_office.investor_pptx())
    docs = loaders.load_all(f)[0]
    for page in docs[0].pages:
        assert recipes.pptx_slide(f.read_bytes(), page.number, "") == page.text


HTML = """<html><body><h1>Results</h1>
<table><thead><tr><th>Division</th><th>FY2023 revenue ($M)</th><th>FY2024 revenue ($M)</th><th>Headcount</th></tr></thead>
<tbody><tr><td>Surgical <b>Robotics</b></td><td>14.2</td><td>16.8</td><td>112</td></tr>
<tr><td><p>Home</p><p>Care</p></td><td>5.1</td><td>6.0</td><td>45</td></tr></tbody></table>
<p>Layout below.</p><table><tr><td><div>Menu</div></td><td><p>Body text.</p></td></tr></table>
</body></html>"""


def test_an_html_data_table_is_read_by_rows_and_a_layout_table_is_not(tmp_path: Path) -> None:
    f = tmp_path / "results.html"
    f.write_text(HTML, encoding="utf-8")
    (doc,) = loaders.load_all(f)[0]
    text = doc.pages[0].text
    assert f"\n\n{ROBOTICS}\n\n" in text
    assert "\n\nDivision: Home Care | FY2023 revenue ($M): 5.1 | FY2024 revenue ($M): 6.0 | Headcount: 45\n\n" in text
    assert "Division:" not in text.split("Menu")[-1] and "Body text." in text  # the layout table keeps inscriptis' layout
    assert recipes.inscriptis_html(f.read_bytes(), None, "utf-8") == text
    assert ROBOTICS in spans_of(doc)
