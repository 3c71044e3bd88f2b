"""Tables are read as rows: one block (one line, one sentence span) per row, each cell labelled
with its column's header, in .docx, .pptx and .odt files; the loaders and the documented recipe
(``recipes.table_rows``) give the same text.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ragcli import loaders, recipes
from ragcli.chunking import ChunkParams, chunk_document
from ragcli.loaders.blocks import table_rows

from .tools import finance_office, tables

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
    f = tmp_path / "harvest.odt"
    f.write_bytes(tables.harvest_odt())
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


def test_an_html_data_table_is_read_by_rows_and_a_layout_table_is_not(tmp_path: Path) -> None:
    f = tmp_path / "results.html"
    f.write_text(tables.RESULTS_HTML, encoding="utf-8")
    (doc,) = loaders.load_all(f)[0]
    text = doc.pages[0].text
    assert "\n\nRoute: Halden to Strömstad | Passengers 2023: 412,000 | Passengers 2024: 455,500 | Crossing: 55 min\n\n" in text
    assert "\n\nRoute: Lindau to Bregenz | Passengers 2023: 98,200 | Passengers 2024: 101,900 | Crossing: 25 min\n\n" in text
    assert "Route:" not in text.split("Menu")[-1] and "Body text." in text  # the layout table keeps inscriptis' layout
    assert recipes.inscriptis_html(f.read_bytes(), None, "utf-8") == text
    assert "Route: Lindau to Bregenz | Passengers 2023: 98,200 | Passengers 2024: 101,900 | Crossing: 25 min" in spans_of(doc)
