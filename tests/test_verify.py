"""``verify``: a quote is checked against the file when it is readable here, else against the
page copy a server index stored (``verified: "index"``), else it is not shown."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ragcli.types import Citation, Page
from ragcli.verify import Verifier, stored_pages

TEXT = "Alpacas hum.\nLlamas spit when annoyed.\n"


def _sha(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def _cite(path: Path) -> Citation:
    a = TEXT.index("Llamas")
    return Citation(1, str(path), _sha(TEXT), None, 2, 2, a, a + 24, TEXT[a : a + 24])


def _stored(path: Path, text: str = TEXT, page_sha: str | None = None, doc_sha: str | None = None) -> dict:
    return {(str(path), 1): (Page(1, text, extraction="text"), page_sha or _sha(text), doc_sha or _sha(TEXT))}


def test_a_readable_file_is_the_witness(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_text(TEXT)
    c, err = Verifier(_stored(f, text="something else entirely, tampered")).check(_cite(f), "text")
    assert err == "" and c is not None and c.verified == "file" and c.to_json()["verified"] == "file"


def test_without_the_file_the_index_copy_verifies_and_says_so(tmp_path: Path) -> None:
    gone = tmp_path / "gone.txt"
    c, err = Verifier(_stored(gone)).check(_cite(gone), "text")
    assert err == "" and c is not None and c.verified == "index" and c.to_json()["verified"] == "index"


def test_a_copy_that_fails_its_sha256_or_another_version_or_offsets_is_refused(tmp_path: Path) -> None:
    gone = tmp_path / "gone.txt"
    for stored, why in [
        (_stored(gone, page_sha="0" * 64), "does not match its sha256"),
        (_stored(gone, doc_sha="1" * 64), "another version"),
        (_stored(gone, text=TEXT.replace("spit", "SPIT")), "does not hold the stored quote"),
        ({}, "can no longer be read"),
    ]:
        c, err = Verifier(stored).check(_cite(gone), "text")
        assert c is None and why in err


def test_a_changed_file_is_not_rescued_by_the_index_copy(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_text(TEXT.replace("annoyed", "bored"))
    c, err = Verifier(_stored(f)).check(_cite(f), "text")
    assert c is None and "changed since it was ingested" in err


def test_stored_pages_asks_only_for_files_not_here(tmp_path: Path) -> None:
    here = tmp_path / "here.txt"
    here.write_text(TEXT)
    asked = []

    class Reader:
        def pages(self, keys):
            asked.extend(keys)
            return {}

    stored_pages(Reader(), [(str(here), 1), (str(tmp_path / "gone.txt"), 1), (str(tmp_path / "gone.txt"), 1)])
    assert asked == [(str(tmp_path / "gone.txt"), 1)]
    assert stored_pages(Reader(), [(str(here), 1)]) == {} and len(asked) == 1  # nothing asked when all are here
