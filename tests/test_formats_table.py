"""``formats.FORMATS``, the one table of formats: each row is whole, and everything reads it."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from ragcli import formats, loaders
from ragcli.cli import _cited_where
from ragcli.formats import FORMATS
from ragcli.types import Citation

from .tools import formats as samples


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.kind)
def test_every_row_names_a_reader_that_exists_and_a_kind_its_citations_come_back_to(fmt: formats.Format) -> None:
    module, _, name = fmt.reader.partition(":")
    assert callable(getattr(importlib.import_module(f"ragcli.loaders.{module}"), name))
    for suffix in fmt.suffixes:
        assert formats.of_path(f"/d/x{suffix.upper()}") is fmt and suffix == suffix.lower()
        assert formats.kind_for(fmt.extraction, f"/d/x{suffix}") == fmt.kind  # verify re-reads it as this kind
    for extraction in fmt.also:
        assert formats.kind_for(extraction, "/d/x") == fmt.kind
    assert not fmt.read_as or formats.BY_KIND[fmt.read_as].also  # read as a kind that says when it applies
    assert fmt.paged or fmt.page_label == "p."  # a label only where there are pages to find


def test_a_suffix_belongs_to_one_row_and_a_kind_is_one_row() -> None:
    suffixes = [s for f in FORMATS for s in f.suffixes]
    assert len(suffixes) == len(set(suffixes)) == len(formats.SUFFIXES)
    assert len({f.kind for f in FORMATS}) == len(FORMATS)
    assert formats.of_path("/d/README").kind == "text" and formats.of_path("/m/x.eml#a.docx").kind == "docx"


def test_ask_names_a_page_as_search_does() -> None:
    """``rag search`` labels a hit by its document's kind, ``rag ask`` a citation by its
    extraction and file name: both by the same row."""
    named_as = {f.read_as: f for f in FORMATS if f.read_as}  # pdf+ocr: a .pdf
    for fmt in FORMATS:
        suffix = (fmt.suffixes or named_as[fmt.kind].suffixes)[0]
        for extraction in (fmt.extraction, *fmt.also):
            c = Citation(1, f"/d/x{suffix}", "", 2 if fmt.paged else None, 3, 3, 0, 1, "q", extraction=extraction)
            where = _cited_where(c).removesuffix(" (OCR)")
            assert where == (f"/d/x{suffix} {fmt.page_label}2 l.3" if fmt.paged else f"/d/x{suffix} l.3"), fmt
    assert _cited_where(Citation(1, "/d/deck.odp", "", 2, 3, 3, 0, 1, "q", extraction="odfpy")) == "/d/deck.odp slide 2 l.3"
    scan = Citation(1, "/d/scan.pdf", "", 1, 3, 4, 0, 1, "q", extraction="ocr")
    assert _cited_where(scan) == "/d/scan.pdf p.1 l.3-4 (OCR)"
    book = Citation(1, "/d/b.epub", "", 3, 1, 1, 0, 1, "q", extraction="ebooklib", title="Glass")
    assert _cited_where(book) == '/d/b.epub ch.3 "Glass" l.1'
    nb = Citation(1, "/d/n.ipynb", "", None, 2, 2, 0, 1, "q", extraction="json", unit="cell", unit_start=1, unit_end=2)
    assert _cited_where(nb) == "/d/n.ipynb cell 1-2 l.2"


def test_pages_carry_their_rows_extraction_and_block_name(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    samples.write_all(folder, ocr=False)
    (folder / "notes.md").write_text("# Notes\n\nThe ferry leaves at nine.\n")
    seen = set()
    for f in sorted(folder.iterdir()):
        for doc in loaders.load_all(f)[0]:
            fmt = formats.BY_KIND[doc.kind]
            seen.add(doc.kind)
            for page in doc.pages:
                assert page.extraction in (fmt.extraction, *fmt.also) and page.block_name == fmt.block_name
                again = loaders.reread(doc.path, page.number if doc.paged else None, doc.encoding, doc.kind)
                assert (again.text, again.extraction, again.block_name) == (page.text, page.extraction, page.block_name)
    assert seen >= {f.kind for f in FORMATS if f.suffixes}
