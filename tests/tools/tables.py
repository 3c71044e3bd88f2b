"""Files holding tables, for the table tests (loaders, recipes, `rag verify`): an .odt and an HTML
page, built with the libraries that read them. The .docx table is the bench's board memo
(``finance_office.board_memo_docx``).
"""

from __future__ import annotations

import io

HARVEST = [["Fruit", "2023", "2024"], ["Quince", "38 t", "40 t"], ["Plum", "12 t", "9 t"]]

RESULTS_HTML = """<html><body><h1>Ferry traffic</h1>
<table><thead><tr><th>Route</th><th>Passengers 2023</th><th>Passengers 2024</th><th>Crossing</th></tr></thead>
<tbody><tr><td>Halden <b>to</b> Strömstad</td><td>412,000</td><td>455,500</td><td>55 min</td></tr>
<tr><td><p>Lindau</p><p>to Bregenz</p></td><td>98,200</td><td>101,900</td><td>25 min</td></tr></tbody></table>
<p>Layout below.</p><table><tr><td><div>Menu</div></td><td><p>Body text.</p></td></tr></table>
</body></html>"""


def harvest_odt() -> bytes:
    """A paragraph, the HARVEST table (header row: fruit and years) and a closing paragraph."""
    from odf.opendocument import OpenDocumentText
    from odf.table import Table, TableCell, TableColumn, TableRow
    from odf.text import P

    odt = OpenDocumentText()
    odt.text.addElement(P(text="Harvest by year."))
    table = Table(name="Harvest")
    table.addElement(TableColumn(numbercolumnsrepeated=3))
    for row in HARVEST:
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
    return buf.getvalue()
