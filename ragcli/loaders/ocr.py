"""OCR of one PDF page without a text layer (the optional ``ocr`` extra).

The recipe, which the README repeats and a test runs independently::

    page = pypdfium2.PdfDocument(source)[n - 1]
    image = page.render(scale=min(2, 4000 / max(page.get_size()))).to_numpy()
    result, _ = rapidocr_onnxruntime.RapidOCR()(image)
    text = "\\n".join(line[1] for line in result or [])

Rendering is capped at 4000 pixels on the long side, so a huge page cannot blow memory.
The same file, rapidocr-onnxruntime and pypdfium2 versions give the same text (tested);
other versions may not, which is why the extra pins them.

A page with almost no ink is blank: its text is "" without running the models. Ink is a
pixel more than ``INK_LEVEL`` away, in any channel, from the page's background (its median
colour); fewer than ``MIN_INK_PX`` such pixels cannot hold one printed character at 144 dpi
(a character is 50+ pixels). Measured on the 39 FinanceBench filings: 9 of the 10 pages
without a text layer are such pages (a separator with a faint grey rule: 0-1 ink pixels),
RapidOCR finds nothing on them, and each cost its model load (the worker's peak goes from
about 100 MB to 600-670 MB) and 2-6 s; the test scan has 27,597 ink pixels.

What it does not do: decide which pages need OCR (``pdf``).
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache

MAX_SIDE_PX = 4000
SCALE = 2  # 144 dpi
INK_LEVEL = 64  # of 255: farther than this from the background colour is ink
MIN_INK_PX = 25  # fewer ink pixels than this: a blank page


def available() -> bool:
    """Whether the ``ocr`` extra is installed (nothing is imported)."""
    return all(importlib.util.find_spec(m) is not None for m in ("rapidocr_onnxruntime", "pypdfium2"))


@lru_cache(maxsize=1)
def _engine():
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR()


def ink_pixels(image) -> int:
    """How many pixels of a rendered page (H x W x channels, uint8) differ from its median
    colour by more than ``INK_LEVEL`` in some channel.

    >>> import numpy as np
    >>> page = np.full((40, 30, 3), 255, dtype=np.uint8)
    >>> page[5, :] = 230  # a faint grey rule
    >>> page[10:14, 10:12] = 0  # 8 dark pixels
    >>> ink_pixels(page)
    8
    """
    import numpy as np

    flat = image.reshape(-1, image.shape[-1] if image.ndim == 3 else 1).astype(np.int16)
    background = np.median(flat, axis=0)
    return int((np.abs(flat - background).max(axis=1) > INK_LEVEL).sum())


def page_text(data: bytes, number: int) -> str:
    """The OCR text of page ``number`` (1-based) of the PDF ``data``."""
    import pypdfium2

    doc = pypdfium2.PdfDocument(data)
    try:
        page = doc[number - 1]
        image = page.render(scale=min(SCALE, MAX_SIDE_PX / max(page.get_size()))).to_numpy()
    finally:
        doc.close()
    if ink_pixels(image) < MIN_INK_PX:  # a blank page (one colour has none): nothing to
        return ""  # read, and no need to load the OCR models (about 600 MB) to find that out
    result, _ = _engine()(image)
    return "\n".join(line[1] for line in result or [])
