"""Jupyter notebooks (.ipynb) -> one page: the markdown and code cells, outputs skipped.

A cell's ``source`` (a string or a list of lines) is joined as written; cells are separated by
a blank line (``blocks.joined``); citations name the cell range, counting markdown and code
cells only. Plain ``json``, no nbformat: the README's recipe needs nothing else.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import SourceError
from ..types import Page
from . import limits
from .blocks import joined

CELL_TYPES = ("markdown", "code")


def ipynb_pages(path: Path, data: bytes) -> tuple[Page, ...]:
    try:
        nb = json.loads(data.decode("utf-8"))
    except RecursionError:  # the C scanner stops at Python's recursion limit (about 1,000 levels)
        raise SourceError(str(path), "notebook nests its JSON too deeply to read (over about "
                                     f"{sys.getrecursionlimit()} levels); no real notebook does") from None
    except UnicodeDecodeError as e:
        raise SourceError(str(path), f"notebook is not UTF-8 (byte offset {e.start})") from None
    except json.JSONDecodeError as e:
        raise SourceError(str(path), f"notebook is not valid JSON (line {e.lineno}: {e.msg}); "
                                     "the file is corrupt or truncated") from None
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        raise SourceError(str(path), "not a Jupyter notebook (no \"cells\" list; nbformat 3 files: "
                                     "upgrade with `jupyter nbconvert --to notebook`)")
    blocks = []
    for c in cells:
        if isinstance(c, dict) and c.get("cell_type") in CELL_TYPES:
            src = c.get("source", "")
            if not (isinstance(src, str) or isinstance(src, list) and all(isinstance(x, str) for x in src)):
                raise SourceError(str(path), "not a valid notebook (a cell's source is not text)")
            blocks.append("".join(src))
            limits.take(len(blocks[-1]))
    return (joined(1, blocks),)
