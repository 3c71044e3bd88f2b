"""Blocks of text (paragraphs, cells, shapes) -> one page text, remembering where each starts.

Every structured format joins its blocks the same way, with one blank line between them, so
that the README's recipes stay one line long (``"\\n\\n".join(blocks)``) and the sentence splitter
sees paragraph boundaries.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..types import Page

SEPARATOR = "\n\n"


def joined(number: int, blocks: Sequence[str], extraction: str, block_name: str = "", title: str = "") -> Page:
    """A page whose text is ``SEPARATOR.join(blocks)``, with each block's start offset.

    >>> p = joined(1, ["Title", "Body."], "python-docx", "paragraph")
    >>> p.text, p.blocks
    ('Title\\n\\nBody.', (0, 7))
    """
    starts, pos = [], 0
    for b in blocks:
        starts.append(pos)
        pos += len(b) + len(SEPARATOR)
    return Page(number, SEPARATOR.join(blocks), extraction=extraction, title=title, blocks=tuple(starts),
                block_name=block_name)
