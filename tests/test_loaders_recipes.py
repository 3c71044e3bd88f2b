"""The recipes of docs/formats.md, run as written, rebuild the text ragcli's offsets index, for
every format; ``ragcli/recipes.py`` (what ``rag verify`` runs) is the same code and gives the
same text.

Each ``# recipe: NAME`` block of docs/formats.md is executed in a fresh namespace holding only
``data`` (the file's bytes, or an attachment's), ``page`` and ``encoding`` (no ragcli code), and
its ``text`` must equal the page text ragcli extracted, hold every sentence span ragcli would
store at its offsets, and equal what ``recipes.RECIPES[extraction]`` returns.
"""

from __future__ import annotations

import inspect
import re
from email.message import EmailMessage
from pathlib import Path

import pytest

from ragcli import loaders, recipes
from ragcli.chunking import ChunkParams, chunk_document
from ragcli.formats import FORMATS
from ragcli.loaders import ocr

from .conftest import ROOT, SAMPLE
from .tools import formats

DOC = ROOT / "docs" / "formats.md"
RECIPES = {m.group(1): m.group(2) for m in re.finditer(
    r"```python\n# recipe: ([\w-]+)[^\n]*\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)}
# a recipe -> the functions of ragcli/recipes.py that hold its lines, in order
FUNCTIONS = {name: [fn] for name, fn in recipes.RECIPES.items()} | {"attachment": [recipes.attachment],
                                                                     "tables": [recipes.table_rows]}
FUNCTIONS["inscriptis"] = [recipes.html_text, recipes.inscriptis_html]


def words(texts) -> list[int]:
    return [len(t.split()) + 1 for t in texts]


def run_recipe(name: str, data: bytes, page: int | None, encoding: str) -> str:
    ns: dict = {"data": data, "page": page, "encoding": encoding}
    if name in ("python-docx", "python-pptx", "odfpy", "inscriptis", "ebooklib", "email"):  # they call table_rows
        exec(RECIPES["tables"], ns)
    if name in ("ebooklib", "email"):  # they call html_text, defined by the inscriptis recipe
        exec(RECIPES["inscriptis"].split("text = ")[0], ns)
    exec(RECIPES[name], ns)
    return ns["text"]


def source_data(source: str) -> bytes:
    """The bytes a recipe starts from: the file's, or (``MAIL.eml#NAME``) the attachment's, by the
    attachment recipe."""
    i = source.lower().find(".eml#")
    if i < 0:
        return Path(source).read_bytes()
    ns: dict = {"data": Path(source[: i + 4]).read_bytes(), "name": source[i + 5 :]}
    exec(RECIPES["attachment"], ns)
    return ns["data"]


def notes_eml() -> bytes:
    """A message whose attachments are a text file (cp1252), an HTML page and a PDF."""
    msg = EmailMessage()
    msg["Subject"] = "Archive notes"
    msg["From"] = "Ana <ana@example.org>"
    msg.set_content("Hello,\n\nthe notes are attached.\n")
    msg.add_attachment("The Ostmark archive closes at five, says the café.\r\n".encode("cp1252"),
                       maintype="text", subtype="plain", filename="minutes.txt")
    msg.add_attachment(b"<h1>Ferries</h1><p>The Lindau ferry carries forty bicycles.</p>", maintype="text",
                       subtype="html", filename="ferries.html")
    msg.add_attachment(formats.pdf_bytes(["The Lindqvist survey counted 212 pairs."]), maintype="application",
                       subtype="pdf", filename="survey.pdf")
    return bytes(msg)


def test_every_extraction_has_a_recipe_and_the_module_has_each() -> None:
    assert {e for f in FORMATS for e in (f.extraction, *f.also)} | {"attachment"} <= set(RECIPES)
    assert set(recipes.RECIPES) | {"attachment", "tables"} == set(RECIPES)


def _code_lines(src: str) -> list[str]:
    """The statements of a block or a function, stripped: no blank, comment, ``def`` or
    docstring line, and no ``return`` (the functions return what the blocks assign)."""
    src = re.sub(r'"""(.*?)"""', "", src, flags=re.S)
    out = []
    for line in src.splitlines():
        s = line.strip()
        if s and not s.startswith(("#", "def ", "return text", "return data")):
            out.append(s)
    return out


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_the_module_is_the_recipe_line_for_line(name: str) -> None:
    module = [ln for fn in FUNCTIONS[name] for ln in _code_lines(inspect.getsource(fn))]
    block = _code_lines(RECIPES[name])
    if name == "inscriptis":  # the block's html_text returns its text; the module's returns it too
        module = [ln for ln in module if ln != "text = html_text(data.decode(encoding))"] + [
            "text = html_text(data.decode(encoding))"]
    assert module == block, f"ragcli/recipes.py and docs/formats.md differ for the {name!r} recipe"


def format_files(tmp_path: Path) -> list[Path]:
    made = formats.write_all(tmp_path / "docs", ocr=ocr.available())
    notes = tmp_path / "docs" / "notes.eml"
    notes.write_bytes(notes_eml())
    return sorted(made.values()) + [notes] + sorted(p for p in SAMPLE.iterdir() if p.is_file())


def test_recipes_and_the_module_rebuild_the_indexed_text_of_every_format(tmp_path: Path) -> None:
    seen, attached = set(), set()
    for path in format_files(tmp_path):
        docs, errors = loaders.load_all(path)
        assert not errors
        for doc in docs:
            spans = [s for c in chunk_document(doc, words, ChunkParams()) for s in c.spans]
            assert spans, doc.path
            data = source_data(doc.path)
            if "#" in doc.path:
                attached.add(doc.pages[0].extraction)
            for page in doc.pages:
                seen.add(page.extraction)
                number = page.number if doc.paged else None
                text = run_recipe(page.extraction, data, number, doc.encoding)
                assert text == page.text, (doc.path, page.number)
                assert recipes.RECIPES[page.extraction](data, number, doc.encoding) == text, (doc.path, page.number)
                for s in (s for s in spans if s.page == page.number):
                    assert text[s.start : s.end] == s.text
    assert seen >= {"text", "pypdf", "inscriptis", "python-docx", "python-pptx", "odfpy", "ebooklib", "email", "json"}
    assert attached >= {"text", "inscriptis", "pypdf"}
    assert "ocr" in seen or not ocr.available()


def test_html_recipe_reads_a_file_with_a_recorded_legacy_encoding(tmp_path: Path) -> None:
    f = tmp_path / "old.htm"
    f.write_bytes("<p>Cr\u00e8me br\u00fbl\u00e9e costs 7&nbsp;\u20ac.</p>".encode("cp1252"))
    doc = loaders.load(f)
    assert doc.encoding == "cp1252" and "Crème brûlée" in doc.pages[0].text
    assert run_recipe("inscriptis", f.read_bytes(), None, doc.encoding) == doc.pages[0].text
    assert recipes.inscriptis_html(f.read_bytes(), None, doc.encoding) == doc.pages[0].text


@pytest.mark.skipif(not ocr.available(), reason="the ocr extra is not installed")
def test_ocr_is_deterministic_and_matches_its_recipe(tmp_path: Path) -> None:
    f = tmp_path / "scan.pdf"
    f.write_bytes(formats.scanned_pdf_bytes())
    first = loaders.load(f)
    again = loaders.load(f)
    assert first.kind == "pdf+ocr" and first.pages[0].extraction == "ocr"
    assert first.pages == again.pages
    assert "Kestrel valve" in first.pages[0].text
    assert run_recipe("ocr", f.read_bytes(), 1, "") == first.pages[0].text == recipes.ocr_page(f.read_bytes(), 1, "")
