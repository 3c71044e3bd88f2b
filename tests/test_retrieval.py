"""Hybrid retrieval's file-name list: a query that names a file's company and year finds it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragcli import index, pipeline
from ragcli.config import resolve_settings
from ragcli.models.embedders import HashEmbedder
from ragcli.retrieval import name_ranking, search

EMB = HashEmbedder()


@pytest.mark.parametrize("query, paths, want", [
    # two query words written together, and a prefix of three letters or more
    ("Coca Cola's FY2017 ROA?", {1: "/f/PEPSICO_2017_10K.pdf", 2: "/f/COCACOLA_2017_10K.pdf"}, [2, 1]),
    ("JPM net income in 2022", {1: "/f/JPMORGAN_2022Q2_10Q.pdf", 2: "/f/JPMORGAN_2023Q2_10Q.pdf"}, [1, 2]),
    # files named by numbers or hashes, and stop words, name nothing
    ("what is new in incubation", {1: "/d/1545.txt", 2: "/d/what-is-new.md"}, [2]),
    ("what is the incubation period", {1: "/d/1545.txt", 2: "/d/what-is-it.md"}, []),
    ("incubation period in 2020", {1: "/d/1545.txt", 2: "/d/5f2b9c0e4d1a7b3c9e8f.txt"}, []),
])
def test_name_ranking(query: str, paths: dict[int, str], want: list[int]) -> None:
    assert name_ranking(query, paths, {1: 0.5, 2: 0.4}) == want


def _corpus(tmp_path: Path, names: tuple[str, str]) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    # the second file says "capital expenditure" twice: on text alone it is the better match
    (docs / f"{names[0]}.md").write_text("Capital expenditure was 1,577 million dollars in the year.\n")
    (docs / f"{names[1]}.md").write_text("Capital expenditure rose. Capital expenditure was 1,749 million dollars.\n")
    return docs


def _top(settings, query: str, **kw) -> list[str]:
    with index.open(settings.index).reader() as st:
        return [Path(h.chunk.source).stem for h in search(st, EMB, query, 2, "hybrid", **kw)]


def test_a_query_naming_a_files_company_and_year_ranks_that_file_first(tmp_path: Path) -> None:
    settings = resolve_settings(index=tmp_path / "index")
    pipeline.ingest([str(_corpus(tmp_path, ("ACME_2018_10K", "ACME_2022_10K")))], settings, embedder=EMB)
    query = "What was the FY2018 capital expenditure for Acme?"
    assert _top(settings, query, name_weight=0.0) == ["ACME_2022_10K", "ACME_2018_10K"]  # text alone
    assert _top(settings, query) == ["ACME_2018_10K", "ACME_2022_10K"]  # the default: the name decides


def test_files_named_by_numbers_keep_the_ranking_of_their_text(tmp_path: Path) -> None:
    settings = resolve_settings(index=tmp_path / "index")
    pipeline.ingest([str(_corpus(tmp_path, ("2018", "2022")))], settings, embedder=EMB)
    query = "What was the FY2018 capital expenditure?"
    text_alone = _top(settings, query, name_weight=0.0)
    assert text_alone == ["2022", "2018"]  # had the names counted, "2018" would be first
    assert _top(settings, query) == text_alone
