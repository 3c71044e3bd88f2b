"""The README's recipes, run as written, rebuild the text ragcli's offsets index, for every format.

Each ``# recipe: NAME`` block of README.md is executed in a fresh namespace holding only
``source``, ``page`` and ``encoding`` (no ragcli code), and its ``text`` must equal the page
text ragcli extracted, and hold every sentence span ragcli would store at its offsets.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from ragcli import loaders
from ragcli.chunking import ChunkParams, chunk_document
from ragcli.loaders import ocr

from .conftest import ROOT, SAMPLE
from .tools import formats

RECIPES = {m.group(1): m.group(2) for m in re.finditer(
    r"```python\n# recipe: ([\w-]+)[^\n]*\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)}


def words(texts) -> list[int]:
    return [len(t.split()) + 1 for t in texts]


def run_recipe(name: str, source, page: int | None, encoding: str) -> str:
    ns: dict = {"source": source, "page": page, "encoding": encoding}
    if name in ("ebooklib", "email"):  # they call html_text, defined by the inscriptis recipe
        exec(RECIPES["inscriptis"].split("text = ")[0], ns)
    exec(RECIPES[name], ns)
    return ns["text"]


def recipe_text(doc: loaders.Document, page: loaders.Page) -> str:
    number = page.number if doc.paged else None
    source: object = doc.path
    if "#" in doc.path and ".eml#" in doc.path.lower():
        ns: dict = {"source": doc.path}
        exec(RECIPES["attachment"], ns)
        source = ns["source"]
        if page.extraction in ("text", "inscriptis"):  # text formats: decode the bytes instead of open()
            data = source.getvalue().decode(doc.encoding)
            return data if page.extraction == "text" else run_recipe("inscriptis", io.StringIO(data), None, "")
    return run_recipe(page.extraction, source, number, doc.encoding)


def test_every_extraction_has_a_recipe() -> None:
    assert set(loaders.EXTRACTIONS.values()) | {"ocr", "attachment"} <= set(RECIPES)


def format_files(tmp_path: Path) -> list[Path]:
    made = formats.write_all(tmp_path / "docs", ocr=ocr.available())
    return sorted(made.values()) + sorted(p for p in SAMPLE.iterdir() if p.is_file())


def test_recipes_rebuild_the_indexed_text_of_every_format(tmp_path: Path) -> None:
    seen = set()
    for path in format_files(tmp_path):
        docs, errors = loaders.load_all(path)
        assert not errors
        for doc in docs:
            spans = [s for c in chunk_document(doc, words, ChunkParams()) for s in c.spans]
            assert spans, doc.path
            for page in doc.pages:
                seen.add(page.extraction)
                text = recipe_text(doc, page)
                assert text == page.text, (doc.path, page.number)
                for s in (s for s in spans if s.page == page.number):
                    assert text[s.start : s.end] == s.text
    assert seen >= {"text", "pypdf", "inscriptis", "python-docx", "python-pptx", "odfpy", "ebooklib", "email", "json"}
    assert "ocr" in seen or not ocr.available()


def test_html_recipe_reads_a_file_with_a_recorded_legacy_encoding(tmp_path: Path) -> None:
    f = tmp_path / "old.htm"
    f.write_bytes("<p>Cr\u00e8me br\u00fbl\u00e9e costs 7&nbsp;\u20ac.</p>".encode("cp1252"))
    doc = loaders.load(f)
    assert doc.encoding == "cp1252" and "Crème brûlée" in doc.pages[0].text
    assert run_recipe("inscriptis", str(f), None, doc.encoding) == doc.pages[0].text


@pytest.mark.skipif(not ocr.available(), reason="the ocr extra is not installed")
def test_ocr_is_deterministic_and_matches_its_recipe(tmp_path: Path) -> None:
    f = tmp_path / "scan.pdf"
    f.write_bytes(formats.scanned_pdf_bytes())
    first = loaders.load(f)
    again = loaders.load(f)
    assert first.kind == "pdf+ocr" and first.pages[0].extraction == "ocr"
    assert first.pages == again.pages
    assert "Kestrel valve" in first.pages[0].text
    assert run_recipe("ocr", str(f), 1, "") == first.pages[0].text
