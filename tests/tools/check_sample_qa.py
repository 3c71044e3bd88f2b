"""Check ``tests/fixtures/sample_qa.json`` against ``sample_corpus/``.

    .venv/bin/python tests/tools/check_sample_qa.py

Asserts that:

* every answerable question names an existing corpus file, and each of its ``answer_contains``
  strings occurs verbatim in that file's text (a text file decoded as UTF-8 with no newline
  translation; for the PDF, pypdf's ``extract_text()`` of the named 1-based page);
* no answer string spans a line break, and no other corpus file contains all the answer strings
  of a question (so each answer lives in exactly one file);
* every corpus file is covered, the PDF by at least 3 questions, and there are at least 14
  answerable and 4 off-topic questions;
* the PDF text extracts cleanly: each page, with whitespace collapsed, equals the text
  ``make_sample_pdf.py`` put on it (so no glued words or hyphenation), and pages are distinct;
* the corpus keeps its intended shape: 400-1500 words per file, at least one CRLF file with
  non-ASCII characters.

Exits non-zero with a list of problems, or prints a summary.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "sample_corpus"
QA = ROOT / "tests" / "fixtures" / "sample_qa.json"

sys.path.insert(0, str(Path(__file__).resolve().parent))


def pdf_pages(path: Path) -> list[str]:
    import logging

    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    return [page.extract_text() or "" for page in PdfReader(path).pages]


def expected_pdf_pages() -> list[str]:
    import make_sample_pdf as m

    pages = []
    for number, (heading, paragraphs) in enumerate(m.PAGES, start=1):
        parts = [m.TITLE, m.SUBTITLE + "."] if number == 1 else []
        parts.append(heading)
        parts += ["- " + p[2:] if p.startswith("* ") else p for p in paragraphs]
        parts.append(f"Page {number} of {len(m.PAGES)}")
        pages.append(" ".join(" ".join(parts).split()))
    return pages


def load_corpus() -> dict[str, list[str]]:
    """file name -> list of page texts (one entry for a text file)."""
    docs: dict[str, list[str]] = {}
    for path in sorted(CORPUS.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.suffix.lower() == ".pdf":
            docs[path.name] = pdf_pages(path)
        else:
            docs[path.name] = [path.read_bytes().decode("utf-8")]
    return docs


def main() -> int:
    problems: list[str] = []
    docs = load_corpus()
    qa = json.loads(QA.read_text(encoding="utf-8"))
    answerable = [q for q in qa if not q.get("off_topic")]
    off_topic = [q for q in qa if q.get("off_topic")]

    # --- the questions -------------------------------------------------------------------
    covered: dict[str, int] = {}
    for n, q in enumerate(answerable, start=1):
        where = f"Q{n} {q.get('question')!r}"
        if not isinstance(q.get("question"), str) or not q["question"].strip():
            problems.append(f"{where}: missing question text")
        src = q.get("source")
        if src not in docs:
            problems.append(f"{where}: source {src!r} is not a file in sample_corpus/")
            continue
        covered[src] = covered.get(src, 0) + 1
        pages = docs[src]
        page = q.get("page", "missing")
        if src.lower().endswith(".pdf"):
            if not isinstance(page, int) or not 1 <= page <= len(pages):
                problems.append(f"{where}: page must be 1..{len(pages)} for a PDF, got {page!r}")
                continue
            text = pages[page - 1]
        else:
            if page is not None:
                problems.append(f"{where}: page must be null for a text file, got {page!r}")
            text = pages[0]
        answers = q.get("answer_contains")
        if not isinstance(answers, list) or not answers or not all(isinstance(a, str) and a for a in answers):
            problems.append(f"{where}: answer_contains must be a non-empty list of strings")
            continue
        for a in answers:
            if "\n" in a or "\r" in a:
                problems.append(f"{where}: answer {a!r} spans a line break")
            if a not in text:
                loc = f"{src} page {page}" if src.lower().endswith(".pdf") else src
                problems.append(f"{where}: {a!r} not found verbatim in {loc}")
        for other, other_pages in docs.items():
            if other != src and all(any(a in t for t in other_pages) for a in answers):
                problems.append(f"{where}: all answer strings also occur in {other} (ambiguous)")

    for q in off_topic:
        if set(q) != {"question", "off_topic"} or q["off_topic"] is not True:
            problems.append(f"off-topic entry has unexpected shape: {q!r}")

    missing = sorted(set(docs) - set(covered))
    if missing:
        problems.append(f"corpus files with no question: {missing}")
    pdfs = [name for name in docs if name.lower().endswith(".pdf")]
    if len(pdfs) != 1:
        problems.append(f"expected exactly one PDF in sample_corpus/, found {pdfs}")
    elif covered.get(pdfs[0], 0) < 3:
        problems.append(f"only {covered.get(pdfs[0], 0)} questions on {pdfs[0]}; want at least 3")
    if len(answerable) < 14:
        problems.append(f"only {len(answerable)} answerable questions; want at least 14")
    if len(off_topic) < 4:
        problems.append(f"only {len(off_topic)} off-topic questions; want at least 4")

    # --- the PDF's text extraction -------------------------------------------------------
    for name in pdfs:
        got = [" ".join(t.split()) for t in docs[name]]
        if len(got) < 4:
            problems.append(f"{name}: {len(got)} pages; want at least 4")
        if len(set(got)) != len(got):
            problems.append(f"{name}: some pages have identical text")
        if name == "context_windows_and_kv_cache.pdf":
            want = expected_pdf_pages()
            if len(want) != len(got):
                problems.append(f"{name}: {len(got)} pages, generator has {len(want)}; re-run make_sample_pdf.py")
            for i, (g, w) in enumerate(zip(got, want, strict=False), start=1):
                if g != w:
                    at = next((k for k, (x, y) in enumerate(zip(g, w, strict=False)) if x != y), min(len(g), len(w)))
                    problems.append(
                        f"{name} page {i}: extracted text differs from the source at char {at}: "
                        f"got {g[max(0, at - 30) : at + 30]!r}, want {w[max(0, at - 30) : at + 30]!r}"
                    )

    # --- the corpus's shape --------------------------------------------------------------
    crlf_non_ascii = False
    for name, pages in docs.items():
        words = sum(len(t.split()) for t in pages)
        if not 400 <= words <= 1500:
            problems.append(f"{name}: {words} words; want 400-1500")
        if not name.lower().endswith(".pdf"):
            text = pages[0]
            if "\r\n" in text and not text.isascii():
                crlf_non_ascii = True
    if not crlf_non_ascii:
        problems.append("no corpus file has CRLF line endings and non-ASCII characters")

    if problems:
        print(f"{len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print("  - " + p, file=sys.stderr)
        return 1
    print(
        f"ok: {len(answerable)} answerable questions over {len(docs)} files "
        f"({', '.join(f'{k}: {v}' for k, v in sorted(covered.items()))}), "
        f"{len(off_topic)} off-topic"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
