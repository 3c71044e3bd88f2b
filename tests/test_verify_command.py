"""`rag verify`: the documented recipes re-check `rag ask --json` citations of every format.

The citations are real: a folder holding one file of every format ragcli reads (text in four
encodings, HTML, PDF, AES PDF, OCR'd scan when the extra is here, .docx, .pptx, .odt, .odp,
.epub, .eml with PDF, text and HTML attachments, .ipynb, and sample_corpus/) is ingested, and
each file's question is asked through the ``Index`` API (hashing embedder, a scripted model
that picks the passages holding the answer); ``Answer.to_json()`` is exactly what
``rag ask --json`` prints. Every check then runs the real ``rag verify`` in a new process.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from ragcli import Index
from ragcli.answer import AnswerParams
from ragcli.loaders import ocr
from ragcli.models.embedders import HashEmbedder
from ragcli.models.generators import ScriptedGenerator

from .conftest import SAMPLE, rag
from .tools import finance_office, formats, tables
from .tools.zip_bomb import with_zeros_member

OPEN = AnswerParams(min_similarity=0.0, min_sentence_similarity=0.0, min_evidence_similarity=0.0)

# file -> (its bytes, a question, a sentence of it that answers it) for what tools/formats.py lacks
EXTRA = {
    "mill.txt": ("The Tarnow mill grinds nine tonnes of rye a day, the café says.".encode("cp1252"),
                 "How much rye does the Tarnow mill grind?", "The Tarnow mill grinds nine tonnes"),
    "bridge.txt": ("The Kvarn bridge spans 140 metres over the Ume river.\r\nIt opened in 1931.\r\n".encode("utf-16"),
                   "How long is the Kvarn bridge?", "The Kvarn bridge spans 140 metres"),
    "beacon.md": ("# Beacons\n\nThe Pellow beacon flashes twice every twelve seconds.\n".encode("utf-8-sig"),
                  "How often does the Pellow beacon flash?", "The Pellow beacon flashes twice"),
    "bakery.htm": ("<html><body><p>The Brunsvik bakery sells cr\u00e8me br\u00fbl\u00e9e for 7&nbsp;\u20ac "
                   "on Sundays.</p></body></html>".encode("cp1252"),
                   "What does the Brunsvik bakery sell on Sundays?", "The Brunsvik bakery sells"),
}
TABLES = {  # files whose answering passage is a table row: name -> (bytes, question, the row's start)
    "memo.docx": (finance_office.board_memo_docx(), "What was the FY2024 revenue of Surgical Robotics?",
                  "Division: Surgical Robotics | FY2023 revenue ($M): 14.2 | FY2024 revenue ($M): 16.8"),
    "ferries.htm": (tables.RESULTS_HTML.encode(), "How many passengers did the Lindau ferry carry in 2024?",
                    "Route: Lindau to Bregenz | Passengers 2023: 98,200"),
    "harvest.odt": (tables.harvest_odt(), "How much quince was harvested in 2024?", "Fruit: Quince | 2023: 38 t"),
}
EXTRA |= TABLES
ATTACHED = {  # attachments of notes.eml: name -> (bytes, question, answering words)
    "minutes.txt": (b"The Ostmark archive closes at five on Fridays.\n",
                    "When does the Ostmark archive close?", "The Ostmark archive closes"),
    "ferries.html": (b"<h1>Ferries</h1><p>The Lindau ferry carries forty bicycles per crossing.</p>",
                     "How many bicycles does the Lindau ferry carry?", "The Lindau ferry carries"),
}


def notes_eml() -> bytes:
    msg = EmailMessage()
    msg["Subject"] = "Notes from the archive"
    msg["From"] = "Ana <ana@example.org>"
    msg["Date"] = "Tue, 03 Mar 2026 09:12:00 +0100"
    msg.set_content("Hello,\n\nThe notes are attached.\n")
    for name, (data, _, _) in ATTACHED.items():
        maintype, subtype = ("text", "html") if name.endswith(".html") else ("text", "plain")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return bytes(msg)


def oracle(key: list[str]):
    """A model that cites the shown passages holding ``key[0]`` first, then the others (up to 3)."""

    def reply(messages, grammar) -> str:
        shown = [ln for ln in messages[-1]["content"].splitlines() if ln[:1] == "[" and "] " in ln]
        hits = [i for i, ln in enumerate(shown, 1) if key[0] in ln]
        rest = [i for i in range(1, len(shown) + 1) if i not in hits]
        return json.dumps({"answer": "", "evidence": (hits + rest)[:3]})

    return reply


@pytest.fixture(scope="module")
def answers(tmp_path_factory) -> tuple[Path, list[dict]]:
    """(the corpus folder, one `rag ask --json` answer per file of it)."""
    root = tmp_path_factory.mktemp("verify")
    folder = root / "docs"
    made = formats.write_all(folder, ocr=ocr.available())
    questions = {p.name: ({**formats.FACTS, "pdf-ocr": formats.OCR_FACT}[k].question,
                          " ".join({**formats.FACTS, "pdf-ocr": formats.OCR_FACT}[k].sentence.split()[:4]))
                 for k, p in made.items()}
    questions["budget.eml#storks.pdf"] = (formats.FACTS["eml-pdf"].question, "The Lindqvist survey counted")
    for name, (data, question, words) in EXTRA.items():
        (folder / name).write_bytes(data)
        questions[name] = (question, words)
    (folder / "notes.eml").write_bytes(notes_eml())
    for name, (_, question, words) in ATTACHED.items():
        questions[f"notes.eml#{name}"] = (question, words)
    for p in SAMPLE.iterdir():
        shutil.copy(p, folder / p.name)
    questions["context_windows_and_kv_cache.pdf"] = ("What happens in the prefill phase?", "In the prefill phase")
    questions["cpu_inference_checklist.pptx"] = ("Why close other memory-hungry programs?", "Close other memory-hungry")
    questions["running_models_on_a_laptop.docx"] = ("Do the weights fit in memory?", "whether its weights fit")
    key: list[str] = [""]
    with pytest.MonkeyPatch.context() as mp:  # nothing of this module's set-up touches the real home
        for var in ("HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
            mp.setenv(var, str(root / "home"))
        idx = Index(root / "index", embedder=HashEmbedder(), generator=ScriptedGenerator(oracle(key)))
        report = idx.ingest([str(folder)])
        assert not report.failed, report.failed
        out = []
        for name, (question, words) in questions.items():
            key[0] = words
            ans = idx.ask(question, params=OPEN, k=20)
            assert ans.status == "answered", (name, ans.reason)
            assert any(c.source == str(folder / name) for c in ans.citations), (name, [c.source for c in ans.citations])
            out.append(ans.to_json())
    return folder, out


def lines(answers: list[dict]) -> str:
    return "".join(json.dumps(a, ensure_ascii=False) + "\n" for a in answers)


def first_citation(answers: list[dict], extraction: str) -> dict:
    """A copy (tests change it) of the first citation made by ``extraction``."""
    return dict(next(c for a in answers for c in a["citations"] if c["extraction"] == extraction))


def verify(*args: str, stdin: str | bytes | None = None, env: dict | None = None):
    r = rag("verify", *args, stdin=stdin if stdin is not None else "", env=env, timeout=300)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def test_every_formats_citations_verify(answers) -> None:
    folder, out = answers
    code, stdout, stderr = verify(stdin=lines(out))
    n = sum(len(a["citations"]) for a in out)
    assert code == 0, stdout + stderr
    assert stdout.splitlines()[-1] == f"{n} of {n} citations verified"
    assert stdout.count(" ok ") == n and "FAILED" not in stdout
    cited = {c["source"] for a in out for c in a["citations"]}
    assert {str(folder / n) for n in (*EXTRA, "notes.eml#minutes.txt", "notes.eml#ferries.html",
                                      "budget.eml#storks.pdf", "tram.html", "lighthouse.docx")} <= cited
    extractions = {c["extraction"] for a in out for c in a["citations"]}
    assert extractions >= {"text", "pypdf", "inscriptis", "python-docx", "python-pptx", "odfpy", "ebooklib",
                           "email", "json"}
    assert "ocr" in extractions or not ocr.available()
    encodings = {c["encoding"] for a in out for c in a["citations"] if c["extraction"] in ("text", "inscriptis")}
    assert {"cp1252", "utf-16", "utf-8-sig", "utf-8"} <= encodings


def _inputs(out: list[dict], tmp_path: Path) -> Iterator[tuple[str, tuple[str, ...], str, int]]:
    """(what, args, stdin, citations) for each way the input can arrive."""
    one = out[0]
    yield "one answer on stdin", (), json.dumps(one), len(one["citations"])
    yield "'-' reads stdin", ("-",), json.dumps(one, indent=2), len(one["citations"])
    f = tmp_path / "answers.jsonl"
    f.write_text(lines(out), encoding="utf-8")
    yield "JSON lines in a file", (str(f),), "", sum(len(a["citations"]) for a in out)
    yield "a single citation", (), json.dumps(first_citation(out, "python-pptx")), 1


def test_input_arrives_as_one_answer_json_lines_a_file_or_one_citation(answers, tmp_path: Path) -> None:
    _, out = answers
    for what, args, stdin, n in _inputs(out, tmp_path):
        code, stdout, stderr = verify(*args, stdin=stdin)
        assert code == 0 and stdout.splitlines()[-1] == f"{n} of {n} citations verified", (what, stdout, stderr)


def test_json_output_is_one_object_with_a_result_per_citation(answers) -> None:
    _, out = answers
    bad = json.loads(json.dumps(out[1]))
    bad["citations"][0]["quote"] += " (tampered)"
    code, stdout, _ = verify("--json", stdin=lines([out[0], bad]))
    got = json.loads(stdout)
    assert code == 1
    assert got["citations"] == len(out[0]["citations"]) + len(bad["citations"]) == got["verified"] + 1
    assert got["failed"] == 1 and got["not_checkable"] == 0
    failed = [r for r in got["results"] if r["status"] != "ok"]
    assert len(failed) == 1 and failed[0]["answer"] == 2 and failed[0]["id"] == bad["citations"][0]["id"]
    assert "not the quote" in failed[0]["reason"]


@pytest.mark.parametrize("extraction", ["inscriptis", "python-docx", "python-pptx", "pypdf", "email", "text"])
def test_a_tampered_quote_fails_and_says_why(answers, extraction: str) -> None:
    _, out = answers
    c = first_citation(out, extraction)
    c["quote"] = c["quote"].replace(c["quote"].split()[0], "Tampered", 1)
    code, stdout, _ = verify(stdin=json.dumps(c))
    assert code == 1
    assert "FAILED" in stdout and "not the quote" in stdout and '"Tampered' in stdout, stdout
    assert stdout.splitlines()[-1] == "0 of 1 citations verified, 1 failed"


def test_a_changed_file_fails_on_its_sha256(answers, tmp_path: Path) -> None:
    _, out = answers
    c = first_citation(out, "python-docx")
    copy = tmp_path / Path(c["source"]).name
    shutil.copy(c["source"], copy)
    c["source"] = str(copy)
    assert verify(stdin=json.dumps(c))[0] == 0  # the copy itself verifies
    with open(copy, "ab") as fh:
        fh.write(b"\0")  # the same text, another file
    code, stdout, _ = verify(stdin=json.dumps(c))
    assert code == 1 and "sha256 differs" in stdout, stdout


def test_wrong_offsets_or_lines_fail(answers) -> None:
    _, out = answers
    c = first_citation(out, "ebooklib")
    for field, delta, why in (("start", 1, "not the quote"), ("end", -1, "not the quote"),
                              ("line_start", 1, "not "), ("page", 1, "")):
        bad = {**c, field: c[field] + delta}
        code, stdout, _ = verify(stdin=json.dumps(bad))
        assert code == 1 and "FAILED" in stdout and why in stdout, (field, stdout)
    code, stdout, _ = verify(stdin=json.dumps({**c, "start": c["end"] + 1}))
    assert code == 1 and "not a range" in stdout


def test_a_missing_field_or_an_unknown_extraction_fails(answers) -> None:
    _, out = answers
    c = first_citation(out, "text")
    for bad, why in (({k: v for k, v in c.items() if k != "sha256"}, "'sha256' is missing"),
                     ({**c, "start": "12"}, "'start' is '12'"),
                     ({**c, "extraction": "xlsx-magic"}, "no documented recipe")):
        code, stdout, _ = verify(stdin=json.dumps(bad))
        assert code == 1 and why in stdout, stdout


@pytest.mark.parametrize("stdin, why", [
    ("", "the input is empty"),
    ("this is not json\n", "not JSON"),
    (b"\xff\xfe{", "not UTF-8"),
    ('{"question": "q", "answer": "", "status": "no_evidence", "citations": []}', "holds no citations"),
    ('{"rank": 1, "text": "a search hit"}', "neither a `rag ask --json` answer"),
    ('[1, 2]', "neither a `rag ask --json` answer"),
])
def test_bad_input_exits_2_and_says_what_to_give(stdin, why: str) -> None:
    code, stdout, stderr = verify(stdin=stdin)
    assert code == 2 and why in stderr and stdout == "", (stdout, stderr)


def test_a_missing_or_non_regular_input_file_exits_2(tmp_path: Path) -> None:
    code, _, stderr = verify(str(tmp_path / "nothing.json"))
    assert code == 2 and "nothing.json" in stderr and "cannot be read" in stderr
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    code, _, stderr = verify(str(fifo))  # never blocks waiting for a writer
    assert code == 2 and "not a regular file" in stderr


def _cite_file(path: Path, data: bytes, quote: str, **kw) -> dict:
    import hashlib

    text = data.decode("utf-8")
    a = text.index(quote)
    return {"id": 1, "source": str(path), "sha256": hashlib.sha256(data).hexdigest(), "page": None,
            "line_start": text.count("\n", 0, a) + 1, "line_end": text.count("\n", 0, a + len(quote) - 1) + 1,
            "start": a, "end": a + len(quote), "quote": quote, "encoding": "utf-8", "extraction": "text", **kw}


def test_fifos_devices_and_kernel_files_are_never_read(tmp_path: Path) -> None:
    fifo = tmp_path / "notes.txt"
    os.mkfifo(fifo)
    link = tmp_path / "zero.txt"
    link.symlink_to("/dev/zero")
    proc = tmp_path / "env.txt"
    proc.symlink_to("/proc/self/environ")
    cites = [_cite_file(p, b"x", "x", id=i) for i, p in enumerate((fifo, link, proc, Path("/sys/kernel/notes")), 1)]
    code, stdout, _ = verify(stdin=json.dumps({"citations": cites}))
    assert code == 1
    assert "[1] FAILED" in stdout and "not a regular file" in stdout.splitlines()[0]
    for line in stdout.splitlines()[1:4]:
        assert "FAILED" in line and "resolves into /proc, /sys or /dev" in line, line


def test_files_over_the_size_limit_and_zip_bombs_are_not_read(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    data = b"The quarry ships granite by rail every week.\n" * 30_000  # 1.4 MB
    big.write_bytes(data)
    c = _cite_file(big, data, "The quarry ships granite")
    assert verify(stdin=json.dumps(c))[0] == 0
    code, stdout, _ = verify("--max-file-size", "1", stdin=json.dumps(c))
    assert code == 1 and "larger than --max-file-size 1 MB" in stdout, stdout
    bomb = tmp_path / "bomb.docx"
    bomb_data = with_zeros_member(formats.docx_bytes(), "word/media/image1.bmp", 300 << 20)
    bomb.write_bytes(bomb_data)
    import hashlib

    c = {**c, "source": str(bomb), "sha256": hashlib.sha256(bomb_data).hexdigest(), "extraction": "python-docx"}
    code, stdout, _ = verify(stdin=json.dumps(c))
    assert code == 1 and "zip bomb" in stdout, stdout


def test_control_characters_in_names_reach_the_terminal_escaped(tmp_path: Path) -> None:
    evil = tmp_path / "evil\x1b[2J\rname.txt"
    data = b"The Moravia pump lifts water forty metres.\n"
    evil.write_bytes(data)
    good = _cite_file(evil, data, "The Moravia pump lifts water")
    bad = {**good, "id": 2, "quote": "The Moravia pump lifts \x1b[31mwater"}
    code, stdout, _ = verify(stdin=json.dumps({"citations": [good, bad]}))
    assert code == 1
    assert "\x1b" not in stdout and "\r" not in stdout
    assert "[1] ok" in stdout and "evil\\x1b[2J\\rname.txt" in stdout and "[2] FAILED" in stdout


def test_ocr_citations_without_the_extra_are_not_checkable(tmp_path: Path) -> None:
    import hashlib

    scan = tmp_path / "scan.pdf"
    data = formats.scanned_pdf_bytes()
    scan.write_bytes(data)
    shim = tmp_path / "shim" / "rapidocr_onnxruntime"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text('raise ImportError("hidden by the test", name="rapidocr_onnxruntime")\n')
    c = {"id": 1, "source": str(scan), "sha256": hashlib.sha256(data).hexdigest(), "page": 1, "line_start": 2,
         "line_end": 2, "start": 21, "end": 56, "quote": "The Kestrel valve must be inspected",
         "encoding": "utf-8", "extraction": "ocr"}
    env = {"PYTHONPATH": os.pathsep.join([str(shim.parent), *filter(None, [os.environ.get("PYTHONPATH")])])}
    code, stdout, _ = verify(stdin=json.dumps(c), env=env)
    assert code == 1
    assert "not checkable" in stdout and "install ragcli[ocr]" in stdout, stdout
    assert stdout.splitlines()[-1] == "0 of 1 citations verified, 1 not checkable here"


def test_table_row_citations_verify_and_a_changed_figure_fails(answers) -> None:
    folder, out = answers
    cited = [(c, row) for a in out for c in a["citations"] for name, (_, _, row) in TABLES.items()
             if c["source"] == str(folder / name) and row in c["quote"]]
    assert {Path(c["source"]).name for c, _ in cited} == set(TABLES)
    rows = [c for c, _ in cited]
    code, stdout, stderr = verify(stdin=lines([{"citations": rows}]))
    assert code == 0 and stdout.splitlines()[-1] == f"{len(rows)} of {len(rows)} citations verified", stdout + stderr
    for c, row in cited:
        figure = next(w for w in row.split() if w[0].isdigit())  # "14.2", "2023:", "98,200"
        bad = {**c, "quote": c["quote"].replace(row, row.replace(figure, "9" + figure, 1))}
        code, stdout, _ = verify(stdin=json.dumps(bad))
        assert code == 1 and "not the quote" in stdout, stdout
