"""A messy document folder and bad questions: each bad file fails alone, with its name and
reason; the rest is ingested; exit 3; no traceback.

Per-case tests call ``pipeline.ingest`` (fast, hashing embedder); one messy folder and the
path cases go through the real ``rag`` command.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragcli import pipeline
from ragcli.cli import app
from ragcli.config import resolve_settings
from ragcli.loaders import page_text_from_file
from ragcli.models.embedders import HashEmbedder

from .conftest import rag

EMB = HashEmbedder()
GOOD = "# Good\n\nThis good file talks about apples and pears. It has plenty of text.\n"


def pdf_bytes(pages: list[str]) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 10, text)
    return bytes(pdf.output())


def encrypted_pdf(user_password: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    w = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes(["Locked pages talk about plums. Plums are purple."]))))
    w.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def _valid_pdf() -> bytes:
    return pdf_bytes(["Apples are red. Apples grow on trees in orchards.", "Pears are green and sweet."])


# name -> (bytes, fragment of the reason)
BAD_FILES = {
    "empty.txt": (b"", "empty file"),
    "blank.md": (b"  \n\n\t \n", "empty file"),
    "image.txt": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8, "binary"),
    "controls.md": (bytes(range(1, 32)) * 40, "binary"),
    "mojibake.txt": ("Café crème, naïve résumé. ".encode() * 3 + b"\xff\xfe tail.", "not valid UTF-8: byte 0xff"),
    "neither.txt": (b"Text with bytes undefined in cp1252: \x81\x8d\x8f\x90 here.", "not valid UTF-8 nor cp1252"),
    "corrupt.pdf": (b"%PDF-1.4\n" + bytes(range(256)) * 10, "corrupt"),
    "truncated.pdf": (_valid_pdf()[:900], "corrupt or truncated"),
    "password.pdf": (encrypted_pdf("secret"), "encrypted with a password"),
    "scanned.pdf": (pdf_bytes(["", ""]), "no text layer (a scanned PDF?)"),  # + install ragcli[ocr], or OCR found none
}


@pytest.fixture
def settings(tmp_path: Path):
    return resolve_settings(index=tmp_path / "index")


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_file_fails_alone_with_its_reason(name: str, tmp_path: Path, settings) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.md").write_text(GOOD)
    data, reason = BAD_FILES[name]
    (docs / name).write_bytes(data)
    r = pipeline.ingest([str(docs)], settings, embedder=EMB)
    assert r.added == (str(docs / "good.md"),)
    assert len(r.failed) == 1 and r.failed[0][0] == str(docs / name)
    assert reason in r.failed[0][1], r.failed[0][1]


@pytest.mark.parametrize("codec", ["cp1252", "utf-16", "utf-8-sig"])
def test_other_encodings_are_decoded_and_recorded_so_quotes_stay_exact(codec: str, tmp_path: Path, settings) -> None:
    f = tmp_path / f"legacy-{codec}.txt"
    f.write_bytes("Crème brûlée is a French dessert. Its top is caramelised sugar.\r\n".encode(codec))
    r = pipeline.ingest([str(f)], settings, embedder=EMB)
    assert r.added == (str(f),) and not r.failed
    hit = pipeline.search("crème brûlée dessert", settings, embedder=EMB).hits[0]
    assert hit.origin.encoding == codec
    with open(f, encoding=codec, newline="") as fh:
        assert fh.read()[hit.chunk.start : hit.chunk.end] == hit.chunk.text
    assert "Crème brûlée" in hit.chunk.text  # decoded right, not mojibake


def test_pdf_pages_without_text_are_skipped_and_page_numbers_kept(tmp_path: Path, settings) -> None:
    f = tmp_path / "mixed.pdf"
    f.write_bytes(pdf_bytes(["Page one is about apples. Apples are red.", "",
                             "Page three is about pears. Pears are green."]))
    r = pipeline.ingest([str(f)], settings, embedder=EMB)
    assert r.added == (str(f),) and not r.failed
    hits = pipeline.search("pears are green", settings, k=5, embedder=EMB).hits
    assert {h.chunk.page for h in hits} == {1, 3}
    top = hits[0].chunk
    assert top.page == 3 and page_text_from_file(str(f), 3, "")[top.start : top.end] == top.text


def test_pdf_encrypted_with_an_empty_user_password_opens(tmp_path: Path, settings) -> None:
    f = tmp_path / "owner-only.pdf"
    f.write_bytes(encrypted_pdf(""))
    r = pipeline.ingest([str(f)], settings, embedder=EMB)
    assert r.added == (str(f),) and not r.failed
    c = pipeline.search("plums purple", settings, embedder=EMB).hits[0].chunk
    assert page_text_from_file(str(f), c.page, "")[c.start : c.end] == c.text  # the citation check works too


def test_very_long_single_line_is_chunked_with_exact_offsets(tmp_path: Path, settings) -> None:
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()
    line = " ".join(words[i % 10] + ("." if i % 17 == 16 else "") for i in range(60_000))  # ~400 kB, no newline
    f = tmp_path / "one-line.txt"
    f.write_text(line)
    t0 = time.monotonic()
    r = pipeline.ingest([str(f)], settings, embedder=EMB)
    assert r.added == (str(f),) and r.chunks > 100 and time.monotonic() - t0 < 30
    for h in pipeline.search("gamma delta epsilon", settings, k=5, embedder=EMB).hits:
        assert line[h.chunk.start : h.chunk.end] == h.chunk.text and len(h.chunk.text) < 5000


def test_200_mb_file_is_refused_without_being_read(tmp_path: Path, settings) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.md").write_text(GOOD)
    with open(docs / "huge.txt", "wb") as fh:  # sparse: costs no disk and no time
        fh.truncate(200 * 1024 * 1024)
    t0 = time.monotonic()
    r = pipeline.ingest([str(docs)], settings, embedder=EMB)
    assert time.monotonic() - t0 < 10
    assert r.added == (str(docs / "good.md"),)
    assert r.failed == ((str(docs / "huge.txt"), r.failed[0][1]),) and "--max-file-size" in r.failed[0][1]


def test_max_file_size_flag_is_documented_and_works(hash_models: Path, tmp_path: Path) -> None:
    assert "--max-file-size" in CliRunner().invoke(app, ["ingest", "--help"]).output
    f = tmp_path / "a.md"
    f.write_text(GOOD * 20)
    r = rag("ingest", str(f), "--max-file-size", "0.001", "--index", str(tmp_path / "i"),
            env={"RAG_MODELS": str(hash_models)})
    assert r.returncode == 3 and b"larger than --max-file-size" in r.stderr and b"Traceback" not in r.stderr


# -- the whole messy folder through the real command ----------------------------------------------


def test_messy_folder_through_the_cli(hash_models: Path, tmp_path: Path) -> None:
    docs = tmp_path / "messy"
    (docs / "sub").mkdir(parents=True)
    for name, (data, _) in BAD_FILES.items():
        (docs / name).write_bytes(data)
    with open(docs / "huge.txt", "wb") as fh:
        fh.truncate(200 * 1024 * 1024)
    good = ["good.md", "name with spaces.md", "new\nline.md", "naïve 日本語.md", "sub/deep.txt"]
    for name in good:
        (docs / name).write_text(GOOD.replace("Good", name.replace("\n", " ")))
    (docs / "broken.md").symlink_to(docs / "does-not-exist.md")
    (docs / "loop.md").symlink_to(docs / "loop.md")
    (docs / "sub" / "up").symlink_to(docs)  # a directory loop
    for hidden in (".git/notes.md", ".venv/lib/site.txt", ".hidden.md"):
        (docs / hidden).parent.mkdir(parents=True, exist_ok=True)
        (docs / hidden).write_text(GOOD)
    (docs / "drafts").mkdir()
    (docs / "drafts" / "wip.md").write_text(GOOD)
    (docs / "notes.tmp.md").write_text(GOOD)
    (docs / "bad\nname.txt").write_bytes(b"")  # its failure must still be one line
    env = {"RAG_MODELS": str(hash_models), "RAG_INDEX": str(tmp_path / "idx")}

    # --follow: the walk follows links, so a broken one and loops fail (without it they are skipped:
    # test_safety_reading.py)
    r = rag("ingest", str(docs), "--follow", "--exclude", "drafts", "--exclude", "*.tmp.md", "--json", env=env)
    assert r.returncode == 3 and b"Traceback" not in r.stderr, r.stderr
    rep = json.loads(r.stdout)
    assert sorted(rep["added"]) == sorted(str(docs / n) for n in good)  # no hidden, no excluded files
    failed = {Path(f["path"]).relative_to(docs).as_posix(): f["reason"] for f in rep["failed"]}
    expected = {**{n: why for n, (_, why) in BAD_FILES.items()}, "huge.txt": "--max-file-size",
                "broken.md": "broken symbolic link", "loop.md": "symbolic link loop", "sub/up": "loop",
                "bad\nname.txt": "empty file"}
    assert set(failed) == set(expected)
    for name, why in expected.items():
        assert why in failed[name], (name, failed[name])

    r = rag("ingest", str(docs), "--follow", "--exclude", "drafts", "--exclude", "*.tmp.md", env=env)  # human output
    assert r.returncode == 3 and b"Traceback" not in r.stderr
    lines = r.stderr.decode().splitlines()
    assert len(lines) == len(expected)  # one line per failure, each naming its file
    for name in expected:
        shown = name.replace("\n", "\\n")  # control characters escaped
        assert any(line.startswith("failed: ") and shown in line for line in lines), name
    assert "0 added" in r.stdout.decode() and f"{len(good)} unchanged" in r.stdout.decode()

    r = rag("ingest", str(docs), "--follow", "--hidden", "--exclude", "drafts", "--exclude", "*.tmp.md", "--json",
            env=env)
    added = json.loads(r.stdout)["added"]
    assert sorted(Path(p).name for p in added) == [".hidden.md", "notes.md", "site.txt"]


def _unreadable_runner() -> list[str] | None:
    """How to run ``rag`` so that permissions apply: as is, or (as root, who reads everything)
    in a user namespace where root's files belong to an unprivileged user."""
    if os.geteuid() != 0:
        return []
    prefix = ["unshare", "--map-user=65534", "--map-group=65534"]
    if shutil.which("unshare") and subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
        return prefix
    return None


@pytest.mark.skipif(_unreadable_runner() is None, reason="running as root and cannot drop privileges (unshare)")
def test_unreadable_file_and_directory(hash_models: Path, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.md").write_text(GOOD)
    (docs / "locked.md").write_text(GOOD)
    (docs / "locked-dir").mkdir()
    (docs / "locked-dir" / "inside.md").write_text(GOOD)
    os.chmod(docs / "locked.md", 0)
    os.chmod(docs / "locked-dir", 0)
    try:
        env = {**os.environ, "RAG_MODELS": str(hash_models), "RAG_INDEX": str(tmp_path / "idx")}
        r = subprocess.run([*_unreadable_runner(), sys.executable, "-m", "ragcli", "ingest", str(docs), "--json"],
                           env=env, capture_output=True, stdin=subprocess.DEVNULL, timeout=120)
    finally:
        os.chmod(docs / "locked.md", 0o644)
        os.chmod(docs / "locked-dir", 0o755)
    assert r.returncode == 3 and b"Traceback" not in r.stderr, r.stderr
    rep = json.loads(r.stdout)
    assert rep["added"] == [str(docs / "good.md")]
    failed = {f["path"]: f["reason"] for f in rep["failed"]}
    assert set(failed) == {str(docs / "locked.md"), str(docs / "locked-dir")}
    assert all("permission denied" in why for why in failed.values())


# -- questions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cmd", ["ask", "search"])
@pytest.mark.parametrize(
    "how, question, message",
    [
        ("argument", "", "empty"),
        ("argument", "why " * 25_000, "limit is"),  # 100 kB
        ("stdin", ("why " * 25_000).encode(), "limit is"),
        ("argument", "\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0e garbage \x0f\x10\x11", "binary"),
        ("stdin", bytes(range(128, 256)) * 4, "not UTF-8"),
    ],
    ids=["empty", "100kB-arg", "100kB-stdin", "controls-arg", "binary-stdin"],
)
def test_bad_questions_exit_2_with_a_message(hash_models: Path, tmp_path: Path, cmd: str, how: str,
                                             question: str | bytes, message: str) -> None:
    env = {"RAG_MODELS": str(hash_models), "RAG_INDEX": str(tmp_path / "idx")}
    if how == "argument":
        r = rag(cmd, question, env=env)
    else:
        r = rag(cmd, "-", stdin=question, env=env)
    assert r.returncode == 2, r.stderr
    err = r.stderr.decode()
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1
