"""OCR of one PDF page without a text layer (the optional ``ocr`` extra).

The recipe, which the README repeats and a test runs independently::

    page = pypdfium2.PdfDocument(source)[n - 1]
    image = page.render(scale=min(2, 4000 / max(page.get_size()))).to_numpy()
    result, _ = rapidocr_onnxruntime.RapidOCR()(image)
    text = "\\n".join(line[1] for line in result or [])

Rendering is capped at 4000 pixels on the long side, so a huge page cannot blow memory.
The same file, rapidocr-onnxruntime and pypdfium2 versions give the same text (tested);
other versions may not, which is why the extra pins them.

A page that renders to a single colour is blank: its text is "" without running the
models (RapidOCR finds nothing there either).

What it does not do: decide which pages need OCR (``pdf``).
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache

MAX_SIDE_PX = 4000
SCALE = 2  # 144 dpi


def available() -> bool:
    """Whether the ``ocr`` extra is installed (nothing is imported)."""
    return all(importlib.util.find_spec(m) is not None for m in ("rapidocr_onnxruntime", "pypdfium2"))


@lru_cache(maxsize=1)
def _engine():
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR()


def page_text(data: bytes, number: int) -> str:
    """The OCR text of page ``number`` (1-based) of the PDF ``data``."""
    import pypdfium2

    doc = pypdfium2.PdfDocument(data)
    try:
        page = doc[number - 1]
        image = page.render(scale=min(SCALE, MAX_SIDE_PX / max(page.get_size()))).to_numpy()
    finally:
        doc.close()
    if image.min() == image.max():  # a blank page (a filing's separator): nothing to read, and
        return ""  # no need to load the OCR models (about 600 MB) to find that out
    result, _ = _engine()(image)
    return "\n".join(line[1] for line in result or [])
