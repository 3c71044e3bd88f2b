"""Every format ragcli reads, one row each: the one home of what a format is.

A row says which file names ask for it, which reader in ``loaders`` reads it, what citations
call its extraction, whether its pages can be found (PDF pages, slides, chapters) and how
people name them and its blocks. Everything that knows about formats reads it: the walk
(which suffixes are taken), ``loaders`` (which reader runs, and the extraction and block name
its pages carry), ``types.Document.paged``, ``verify`` (the kind that rebuilds a citation),
``scope`` (``--type``) and ``cli`` (how ``rag search`` and ``rag ask`` say where a passage is).

Adding a format (say ``.xlsx``) is a loader module with a reader and one row here; ``rag verify``
then wants its recipe in docs/formats.md and ``recipes``, which stand apart from this code
on purpose (``tests/test_loaders_recipes.py`` asks for one per extraction).

What it does not do: import any reader (``reader`` is a name that ``loaders`` resolves on
first use), so that ``types``, ``verify`` and ``cli`` read it without loading parsers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Format:
    kind: str  # the ``Document.kind`` the index records
    suffixes: tuple[str, ...]  # lower-case file suffixes that ask for it; (): reached only as ``read_as``
    reader: str  # "module:function" in ``ragcli.loaders``: (path, data) -> pages; see the flags below
    extraction: str  # what citations name its pages' text by, and the recipe that rebuilds it
    paged: bool = False  # its pages are for people to find: citations carry the page number
    page_label: str = "p."  # how human output names a page: "p.2", "slide 2", "ch.2"
    block_name: str = ""  # what its blocks are in citations ("paragraph": paragraph_start/_end); "": none
    block_label: str = ""  # how human output numbers them: "¶12-13", "cell 3"
    one_page: bool = False  # the reader takes the page wanted (``only``) and can skip the others
    decodes: bool = False  # the reader takes the codec recorded at ingest ("": detect) and returns (pages, codec)
    read_as: str = ""  # ingest reads the file as this kind, and records it where a page names one of its ``also``
    also: tuple[str, ...] = ()  # extractions some of its pages name instead of ``extraction``
    note: str = ""  # human output adds "(NOTE)" to a quote from a page of an ``also`` extraction
    extra: str = ""  # the ``pip install "ragcli[EXTRA]"`` its ``also`` pages need


TEXT_SUFFIXES = (
    ".txt .md .markdown .rst .py .csv .tsv .json .jsonl .yaml .yml .toml .ini .cfg .log "
    ".xml .tex .org .adoc .js .ts .java .c .h .cpp .hpp .go .rs .rb .sh .sql"
).split()

FORMATS: tuple[Format, ...] = (
    Format("text", tuple(TEXT_SUFFIXES), "text:text_page", "text", decodes=True),
    Format("html", (".html", ".htm", ".xhtml"), "text:html_page", "inscriptis", decodes=True),
    Format("pdf", (".pdf",), "pdf:text_layer_pages", "pypdf", paged=True, one_page=True, read_as="pdf+ocr"),
    Format("pdf+ocr", (), "pdf:pdf_pages", "pypdf", paged=True, one_page=True, also=("ocr",), note="OCR",
           extra="ocr"),
    Format("docx", (".docx",), "office:docx_pages", "python-docx", block_name="paragraph", block_label="¶"),
    Format("pptx", (".pptx",), "office:pptx_pages", "python-pptx", paged=True, page_label="slide ", one_page=True),
    Format("epub", (".epub",), "epub:epub_pages", "ebooklib", paged=True, page_label="ch.", one_page=True),
    Format("odt", (".odt",), "office:odt_pages", "odfpy", block_name="paragraph", block_label="¶"),
    Format("odp", (".odp",), "office:odp_pages", "odfpy", paged=True, page_label="slide "),
    Format("eml", (".eml",), "mail:eml_pages", "email"),
    Format("ipynb", (".ipynb",), "notebook:ipynb_pages", "json", block_name="cell", block_label="cell "),
)

BY_KIND: dict[str, Format] = {f.kind: f for f in FORMATS}
BY_SUFFIX: dict[str, Format] = {s: f for f in FORMATS for s in f.suffixes}
SUFFIXES = frozenset(BY_SUFFIX)  # every suffix a walk takes (files without one are read when they are text)
PAGED_KINDS = frozenset(f.kind for f in FORMATS if f.paged)
TEXT = BY_KIND["text"]


def of_path(path: str | Path) -> Format:
    """The format a file's name asks for; text for a name without a known suffix.

    >>> of_path("/d/Deck.PPTX").kind, of_path("/d/notes").kind, of_path("/m/x.eml#a.pdf").kind
    ('pptx', 'text', 'pdf')
    """
    return BY_SUFFIX.get(Path(str(path)).suffix.lower(), TEXT)


def of_kind(kind: str) -> Format:
    """The row of a recorded ``Document.kind``; a kind no row has (an index from elsewhere) reads as text."""
    return BY_KIND.get(kind, TEXT)


def extraction_of(kind: str) -> str:
    """What citations call the text of a ``kind``'s pages (the kind itself when no row has it)."""
    return BY_KIND[kind].extraction if kind in BY_KIND else kind


def kind_for(extraction: str, source: str) -> str:
    """The ``Document.kind`` that rebuilds a citation's text: the one whose pages its
    ``extraction`` names; where several do, the one the file name asks for, else the first.

    >>> kind_for("ocr", "/d/scan.pdf"), kind_for("odfpy", "/d/deck.odp"), kind_for("pypdf", "/m/x.eml#a.pdf")
    ('pdf+ocr', 'odp', 'pdf')
    """
    named = of_path(source)
    kinds = [f.kind for f in FORMATS if extraction in (f.extraction, *f.also)]
    if not kinds:
        return named.kind
    return named.kind if named.kind in kinds else kinds[0]


def block_label(name: str) -> str:
    """How human output numbers blocks called ``name``: "¶", "cell ", else the name and a space."""
    return next((f.block_label for f in FORMATS if f.block_name == name and f.block_label), f"{name} ")
