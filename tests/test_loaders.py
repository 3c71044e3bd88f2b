"""Loaders per format: what each reads, in what order, with what page numbers, and how bad
files fail (alone, one line, exit 3), including zip bombs, huge media and encrypted files."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from ragcli import loaders, pipeline
from ragcli.config import resolve_settings
from ragcli.errors import SourceError
from ragcli.loaders import archive, ocr
from ragcli.loaders.pdf import text_layer_pages
from ragcli.models.embedders import HashEmbedder

from .conftest import ROOT, rag
from .tools import formats

FINANCEBENCH_AES = ROOT.parent / "shared" / "eval" / "financebench" / "pdfs" / "ADOBE_2022_10K.pdf"


def load(tmp_path: Path, name: str, data: bytes) -> list[loaders.Document]:
    f = tmp_path / name
    f.write_bytes(data)
    docs, errors = loaders.load_all(f)
    assert not errors
    return docs


def test_docx_paragraphs_and_table_rows_in_document_order(tmp_path: Path) -> None:
    (doc,) = load(tmp_path, "a.docx", formats.docx_bytes())
    page = doc.pages[0]
    assert (doc.kind, page.extraction, page.block_name, doc.paged) == ("docx", "python-docx", "paragraph", False)
    order = ["The Nordvik Lighthouse", "History", "built in 1874", "Height | 31 metres", "Range | 19 nautical miles", "café"]
    positions = [page.text.index(w) for w in order]
    assert positions == sorted(positions)
    assert [page.text[b:].split("\n\n")[0] for b in page.blocks[:3]] == ["The Nordvik Lighthouse", formats.FILLER, "History"]


def test_pptx_slides_are_pages_with_titles_tables_and_notes(tmp_path: Path) -> None:
    (doc,) = load(tmp_path, "a.pptx", formats.pptx_bytes())
    assert doc.kind == "pptx" and doc.paged and [p.number for p in doc.pages] == [1, 2]
    slide = doc.pages[1]
    assert slide.title == "Quarterly results" and slide.extraction == "python-pptx"
    for part in (formats.FACTS["pptx"].sentence, "\n\nQuarter: Q3 | Revenue: 3.2 M€\n\n", "Mention that the Osprey launch slipped"):
        assert part in slide.text


def test_epub_chapters_are_spine_items_with_titles(tmp_path: Path) -> None:
    (doc,) = load(tmp_path, "a.epub", formats.epub_bytes())
    assert doc.kind == "epub" and doc.paged
    # spine: nav (no text once <nav> is dropped, so no page), c1, c2
    assert [(p.number, p.title) for p in doc.pages] == [(2, "The Harbour"), (3, "The Glassmaker")]
    assert "watched & waited" in doc.pages[1].text and "<p>" not in doc.pages[1].text


def test_odt_and_odp(tmp_path: Path) -> None:
    (odt,) = load(tmp_path, "a.odt", formats.odt_bytes())
    assert odt.kind == "odt" and not odt.paged and odt.pages[0].text.startswith("The Varnel Orchard\n\n")
    (odp,) = load(tmp_path, "a.odp", formats.odp_bytes())
    assert odp.kind == "odp" and odp.paged and formats.FACTS["odp"].sentence in odp.pages[1].text


def test_eml_headers_body_and_supported_attachments_as_documents(tmp_path: Path) -> None:
    mail, pdf = load(tmp_path, "m.eml", formats.eml_bytes())  # the .png attachment is not read
    text = mail.pages[0].text
    assert text.startswith("Subject: Budget meeting moved\nFrom: Ana Kovač <ana@example.org>\nDate: Tue, 03 Mar 2026")
    assert formats.FACTS["eml"].sentence in text
    assert pdf.path == f"{tmp_path}/m.eml#storks.pdf" and pdf.kind == "pdf"
    assert loaders.source_bytes(pdf.path).startswith(b"%PDF") and loaders.container_of(pdf.path) == str(tmp_path / "m.eml")


def test_ipynb_markdown_and_code_cells_without_outputs(tmp_path: Path) -> None:
    (doc,) = load(tmp_path, "n.ipynb", formats.ipynb_bytes())
    text = doc.pages[0].text
    assert "lr = 3e-4" in text and formats.FACTS["ipynb"].sentence in text
    assert "SECRET OUTPUT" not in text and "raw cell" not in text and len(doc.pages[0].blocks) == 3


def test_html_drops_scripts_styles_and_navigation_and_decodes_entities(tmp_path: Path) -> None:
    (doc,) = load(tmp_path, "t.html", formats.html_bytes())
    text = doc.pages[0].text
    assert formats.FACTS["html"].sentence in text and "30 CZK" in text
    for gone in ("SCRIPT TEXT", "NAVIGATION", "color: red", "<p>", "&amp;", "Trams\n"):
        assert gone not in text


def test_extraction_is_deterministic(tmp_path: Path) -> None:
    for path in formats.write_all(tmp_path / "a").values():
        assert loaders.load_all(path)[0] == loaders.load_all(path)[0]


def test_aes_encrypted_pdf_with_an_empty_password_opens(tmp_path: Path) -> None:
    (doc,) = load(tmp_path, "aes.pdf", formats.aes_pdf_bytes())
    assert formats.FACTS["pdf-aes"].sentence in doc.pages[1].text


@pytest.mark.skipif(not FINANCEBENCH_AES.exists(), reason="../shared/eval is not there")
def test_the_financebench_aes_filing_opens() -> None:
    page = loaders.reread(str(FINANCEBENCH_AES), 2, kind="pdf")
    assert page.extraction == "pypdf" and len(page.text) > 200


def test_scanned_pdf_without_the_ocr_extra_says_what_to_install(tmp_path: Path) -> None:
    f = tmp_path / "scan.pdf"
    f.write_bytes(formats.scanned_pdf_bytes())
    with pytest.raises(SourceError, match=r"no text layer .*install ragcli\[ocr\] to read it"):
        text_layer_pages(f, f.read_bytes())


def _zip(members: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def _with_member(data: bytes, name: str, content: bytes) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    return _zip({**{i.filename: src.read(i) for i in src.infolist()}, name: content})


def _zeros_member(data: bytes, name: str, size: int) -> bytes:
    """``data`` plus a member of ``size`` zero bytes, written in pieces (a zip bomb)."""
    out = io.BytesIO(data)
    with zipfile.ZipFile(out, "a", zipfile.ZIP_DEFLATED) as z, z.open(name, "w", force_zip64=True) as fh:
        piece = bytes(1 << 20)
        for _ in range(size >> 20):
            fh.write(piece)
    return out.getvalue()


OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
BAD_OFFICE = {  # name -> (bytes, fragment of the reason)
    "corrupt.docx": (b"PK\x03\x04" + bytes(range(256)) * 4, "corrupt or truncated"),
    "truncated.pptx": (formats.pptx_bytes()[:3000], "corrupt or truncated"),
    "truncated.epub": (formats.epub_bytes()[:1500], "corrupt or truncated"),
    "not-a-docx.docx": (_zip({"hello.txt": b"hi"}), "corrupt or truncated"),
    "password.docx": (OLE + "EncryptedPackage".encode("utf-16-le") + bytes(512), "protected with a password"),
    "legacy.pptx": (OLE + bytes(512), "old binary Office file"),
    "password.odt": (_with_member(formats.odt_bytes(), "META-INF/manifest.xml",
                                  b'<manifest:manifest><manifest:encryption-data/></manifest:manifest>'),
                     "protected with a password"),
    "drm.epub": (_with_member(formats.epub_bytes(), "META-INF/encryption.xml", b"<encryption><uri>EPUB/c1.xhtml</uri></encryption>"),
                 "encrypted (DRM)"),
    "broken.ipynb": (formats.ipynb_bytes()[:100], "not valid JSON"),
}


@pytest.mark.parametrize("name", sorted(BAD_OFFICE))
def test_bad_office_and_epub_files_fail_alone_with_one_line(name: str, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.docx").write_bytes(formats.docx_bytes())
    data, reason = BAD_OFFICE[name]
    (docs / name).write_bytes(data)
    r = pipeline.ingest([str(docs)], resolve_settings(index=tmp_path / "index"), embedder=HashEmbedder())
    assert r.added == (str(docs / "good.docx"),)
    assert len(r.failed) == 1 and r.failed[0][0] == str(docs / name)
    assert reason in r.failed[0][1] and "\n" not in r.failed[0][1], r.failed[0][1]


def test_zip_bomb_and_huge_embedded_image_are_refused_without_unpacking(tmp_path: Path) -> None:
    import resource
    import time

    bomb = _zeros_member(formats.docx_bytes(), "word/media/image1.bmp", 300 << 20)  # 300 MB of zeros
    assert len(bomb) < 1 << 20
    big = formats.pptx_bytes()
    huge = _zip({**{i.filename: zipfile.ZipFile(io.BytesIO(big)).read(i) for i in zipfile.ZipFile(io.BytesIO(big)).infolist()},
                 "ppt/media/image9.png": b"\x89PNG" + bytes(range(256)) * 4096}, zipfile.ZIP_STORED)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with pytest.raises(SourceError, match="zip bomb"):
        loaders.load(tmp_path / "bomb.docx", bomb)
    assert time.perf_counter() - t0 < 2
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB: nothing was unpacked
    limit = archive.MAX_UNPACKED
    try:  # the total bound, with a smaller limit so the test stays small
        archive.MAX_UNPACKED = 512 * 1024
        with pytest.raises(SourceError, match="huge embedded media"):
            loaders.load(tmp_path / "huge.pptx", huge)
    finally:
        archive.MAX_UNPACKED = limit


def test_max_file_size_applies_to_every_format(tmp_path: Path) -> None:
    f = tmp_path / "a.docx"
    f.write_bytes(formats.docx_bytes())
    with pytest.raises(SourceError, match="larger than --max-file-size"):
        loaders.load_all(f, max_size=1000)


def test_a_bad_docx_exits_3_through_the_cli(tmp_path: Path, hash_models: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ok.ipynb").write_bytes(formats.ipynb_bytes())
    (docs / "bad.docx").write_bytes(b"PK\x03\x04garbage")
    r = rag("ingest", str(docs), "--index", str(tmp_path / "ix"), "--models", str(hash_models))
    err = r.stderr.decode()
    assert r.returncode == 3 and "Traceback" not in err
    assert [ln for ln in err.splitlines() if "bad.docx" in ln][0].startswith("failed: ")


def test_notebook_with_a_list_of_non_strings_fails_cleanly(tmp_path: Path) -> None:
    f = tmp_path / "odd.ipynb"
    f.write_text(json.dumps({"cells": [{"cell_type": "code", "source": [1, 2]}]}))
    with pytest.raises(SourceError):
        loaders.load(f)


@pytest.mark.skipif(not ocr.available(), reason="the ocr extra is not installed")
def test_scanned_pdf_is_read_by_ocr(tmp_path: Path) -> None:
    (doc,) = load(tmp_path, "scan.pdf", formats.scanned_pdf_bytes())
    assert doc.kind == "pdf+ocr" and doc.pages[0].extraction == "ocr"
    assert formats.OCR_FACT.sentence in doc.pages[0].text


@pytest.mark.skipif(not ocr.available(), reason="the ocr extra is not installed")
def test_a_blank_page_is_not_sent_to_the_ocr_models() -> None:
    """A filing's empty separator page has no text layer; it renders to one colour, so it
    reads as "" without loading RapidOCR (about 600 MB)."""
    import io

    from pypdf import PdfWriter

    w = PdfWriter()
    w.add_blank_page(width=612, height=792)
    buf = io.BytesIO()
    w.write(buf)
    ocr._engine.cache_clear()
    assert ocr.page_text(buf.getvalue(), 1) == ""
    assert ocr._engine.cache_info().currsize == 0


@pytest.mark.skipif(not ocr.available(), reason="the ocr extra is not installed")
def test_a_page_with_no_readable_ink_is_not_sent_to_the_ocr_models() -> None:
    """Every FinanceBench page without a text layer is a separator: a faint grey rule, or
    one dark rule 2 pixels tall. Not one colour, but nothing to read: a faint rule, a speck,
    and dark rules across or down the page read as "" without RapidOCR; a page holding a
    single printed character is still read."""
    import io

    import numpy as np
    import pypdfium2
    from PIL import Image

    page = np.full((1754, 1240), 255, dtype=np.uint8)
    page[800:804, 100:1140] = 230  # a faint rule
    page[400:403, 600:603] = 0  # a speck of 9 pixels
    buf = io.BytesIO()
    Image.fromarray(page).save(buf, format="PDF", resolution=150)  # A4, as a scan
    ocr._engine.cache_clear()
    assert ocr.page_text(buf.getvalue(), 1) == ""
    assert ocr._engine.cache_info().currsize == 0

    for rules in ((slice(300, 302), slice(60, 1180)), (slice(100, 1650), slice(620, 623))):
        page = np.full((1754, 1240), 255, dtype=np.uint8)
        page[rules] = 0  # a dark rule across, then one down the page: 2,240 / 4,650 ink pixels
        buf = io.BytesIO()
        Image.fromarray(page).save(buf, format="PDF", resolution=150)
        assert ocr.page_text(buf.getvalue(), 1) == ""
    assert ocr._engine.cache_info().currsize == 0

    one_char = pypdfium2.PdfDocument(formats.scanned_pdf_bytes(["1"]))[0]
    image = one_char.render(scale=min(ocr.SCALE, ocr.MAX_SIDE_PX / max(one_char.get_size()))).to_numpy()
    assert ocr.may_hold_print(image)
