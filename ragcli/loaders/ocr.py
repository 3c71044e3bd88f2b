"""OCR of one PDF page without a text layer (the optional ``ocr`` extra).

The recipe, which the README repeats and a test runs independently::

    page = pypdfium2.PdfDocument(source)[n - 1]
    image = page.render(scale=min(2, 4000 / max(page.get_size()))).to_numpy()
    result, _ = rapidocr_onnxruntime.RapidOCR()(image)
    text = "\\n".join(line[1] for line in result or [])

Rendering is capped at 4000 pixels on the long side, so a huge page cannot blow memory.
The same file, rapidocr-onnxruntime and pypdfium2 versions give the same text (tested);
other versions may not, which is why the extra pins them.

A page whose ink cannot hold print is blank: its text is "" without running the models.
Ink is a pixel more than ``INK_LEVEL`` away, in any channel, from the page's background (its
median colour). Fewer than ``MIN_INK_PX`` such pixels cannot hold one printed character at
144 dpi (a character is 50+ pixels); ink confined to fewer than ``MIN_GLYPH_PX`` rows, or to
fewer than that many columns, is rules, not print (6-point type is 8+ pixels tall at 144
dpi, whichever way the page is turned). Measured on the 39 FinanceBench filings: all 10
pages without a text layer are such pages (8 with 0-1 ink pixels, 2 with one dark rule 2
pixels tall: 1,152 and 2,303 ink pixels); RapidOCR finds nothing on any of them, and each
cost its model load and run (the worker's peak went from about 100 MB to 580-610 MB) and
1-6 s. The test scan has 27,597 ink pixels over far more rows and columns.

What it does not do: decide which pages need OCR (``pdf``).
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache

MAX_SIDE_PX = 4000
SCALE = 2  # 144 dpi
INK_LEVEL = 64  # of 255: farther than this from the background colour is ink
MIN_INK_PX = 25  # fewer ink pixels than this: a blank page
MIN_GLYPH_PX = 8  # ink in fewer rows (or columns) than this: rules, not print


def available() -> bool:
    """Whether the ``ocr`` extra is installed (nothing is imported)."""
    return all(importlib.util.find_spec(m) is not None for m in ("rapidocr_onnxruntime", "pypdfium2"))


@lru_cache(maxsize=1)
def _engine():
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR()


def _ink(image):
    """A rendered page's ink mask (H x W): pixels more than ``INK_LEVEL`` from its median colour
    in some channel."""
    import numpy as np

    pixels = image.reshape(image.shape[0], image.shape[1], -1).astype(np.int16)
    background = np.median(pixels.reshape(-1, pixels.shape[-1]), axis=0)
    return np.abs(pixels - background).max(axis=2) > INK_LEVEL


def may_hold_print(image) -> bool:
    """Whether a rendered page has enough ink, spread over enough rows and columns, to hold
    one printed character; ``False`` for a blank page, a speck or rules alone.

    >>> import numpy as np
    >>> page = np.full((400, 300, 3), 255, dtype=np.uint8)
    >>> page[50:52, 10:290] = 0  # a dark rule: 560 ink pixels in 2 rows
    >>> page[60:360, 150:152] = 0  # and a vertical one
    >>> may_hold_print(page[:55]), may_hold_print(page[55:]), may_hold_print(page)
    (False, False, True)
    """
    ink = _ink(image)
    rows, columns = int(ink.any(axis=1).sum()), int(ink.any(axis=0).sum())
    return int(ink.sum()) >= MIN_INK_PX and min(rows, columns) >= MIN_GLYPH_PX


def page_text(data: bytes, number: int) -> str:
    """The OCR text of page ``number`` (1-based) of the PDF ``data``."""
    import pypdfium2

    doc = pypdfium2.PdfDocument(data)
    try:
        page = doc[number - 1]
        image = page.render(scale=min(SCALE, MAX_SIDE_PX / max(page.get_size()))).to_numpy()
    finally:
        doc.close()
    if not may_hold_print(image):  # blank, or rules alone: nothing to read, and no need to
        return ""  # load the OCR models (the worker grows by about 450 MB) to find that out
    result, _ = _engine()(image)
    return "\n".join(line[1] for line in result or [])
