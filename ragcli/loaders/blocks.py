"""Blocks of text (paragraphs, cells, shapes) -> one page text, remembering where each starts.

Every structured format joins its blocks the same way, with one blank line between them, so
that the README's recipes stay one line long (``"\\n\\n".join(blocks)``) and the sentence splitter
sees paragraph boundaries. A table becomes one block per row (``table_rows``), so a row is one
citable line whose cells keep their column headers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..types import Page

SEPARATOR = "\n\n"


def joined(number: int, blocks: Sequence[str], title: str = "") -> Page:
    """A page whose text is ``SEPARATOR.join(blocks)``, with each block's start offset.

    >>> p = joined(1, ["Title", "Body."])
    >>> p.text, p.blocks
    ('Title\\n\\nBody.', (0, 7))
    """
    starts, pos = [], 0
    for b in blocks:
        starts.append(pos)
        pos += len(b) + len(SEPARATOR)
    return Page(number, SEPARATOR.join(blocks), title=title, blocks=tuple(starts))


# a cell that holds a value (a number, an amount), not a label: a header row has none, though
# a bare year ("2023") is a label. "31 metres" and "$16.8" are values; "FY2023 revenue" is not.
_VALUE = re.compile(r"[-+($€£]*\d(?!\d\d\d$)")


def table_rows(rows: Sequence[Sequence[str]]) -> list[str]:
    """A table's cell texts, row by row -> one block per row, each cell labelled with its column's
    header: the docs' ``tables`` recipe, line for line in ``recipes.table_rows``.

    The first row is a header when the table has another row, every header cell but the first
    (a corner) is filled and none holds a value; a row's cells then read "Header: value", joined
    by " | ", empty cells left out. Without a header each row is its cells joined by " | ".
    Whitespace inside a cell is folded to single spaces, so a row is one line.

    >>> table_rows([["Division", "FY2024 revenue ($M)"], ["Surgical Robotics", "16.8"]])
    ['Division: Surgical Robotics | FY2024 revenue ($M): 16.8']
    >>> table_rows([["Height", "31 metres"], ["Range", "19 nautical miles"]])
    ['Height | 31 metres', 'Range | 19 nautical miles']
    """
    cells = [[" ".join(c.split()) for c in row] for row in rows]
    head = cells[0] if len(cells) > 1 and all(cells[0][1:]) and not any(_VALUE.match(c) for c in cells[0]) else []
    if head:
        cells = [[f"{h}: {c}" if h and c else c for h, c in zip(head + [""] * len(row), row, strict=False)] for row in cells[1:]]
    return [" | ".join(c for c in row if c) for row in cells if any(row)]
