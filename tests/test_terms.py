"""The terms a question hinges on, and which of them the retrieved passages lack (issue 25's
questions: a folder without Tesla's filing or Git 2.40's release notes must say so)."""

from __future__ import annotations

import pytest

from ragcli.terms import missing_terms, specific_terms, term_pattern


@pytest.mark.parametrize(
    ("question", "terms"),
    [
        ("What was Tesla's total revenue in 2021?", ["Tesla", "2021"]),
        ("What new features did Git 2.40 introduce?", ["Git", "2.40"]),
        ("What were Amazon's total net sales in 2019?", ["Amazon", "2019"]),
        ("What is os.EOL on Windows?", ["os.EOL", "Windows"]),
        ("Which nice value does PRIORITY_HIGH correspond to?", ["PRIORITY_HIGH"]),
        ("Does the ferry run on public holidays?", []),
        ("Can a division head approve capital spending of $1 million?", []),  # "1" is no term
        ("Which CVEs were fixed in Git 2.41.1?", ["CVEs", "Git", "2.41.1"]),
    ],
)
def test_specific_terms(question: str, terms: list[str]) -> None:
    assert specific_terms(question) == terms


PFIZER = ["PFIZER 2021 10K", "Total revenues were $81.3 billion in 2021, an increase of 95%."]
GIT_239 = ["git RelNotes 2.39.0", "Git v2.39 Release Notes", "This is to backport various fixes accumulated "
           "during the development towards Git 2.39, the next feature release."]


def test_what_the_folder_lacks_is_named() -> None:
    assert missing_terms("What was Tesla's total revenue in 2021?", PFIZER) == ["Tesla"]
    assert missing_terms("What new features did Git 2.40 introduce?", GIT_239) == ["2.40"]
    assert missing_terms("What were Pfizer's total revenues in 2021?", PFIZER) == []


def test_a_term_is_found_in_a_file_name_written_another_way() -> None:
    assert missing_terms("Does Coca-Cola say obesity may reduce demand?", [], ["COCACOLA 2017 10K"]) == []
    assert missing_terms("How do I grant Deno permission?", ["the denominator is"]) == ["Deno"]  # whole words in text


@pytest.mark.parametrize(
    ("term", "text", "found"),
    [("2.40", "git v2.40.0", True), ("2.40", "version 2.401", False), ("2.4", "2.40", False),
     ("git", "a digit", False), ("8878", "rfc8878", True), ("2019", "$ 141,366 2019", True),
     ("Windows", "on windows,", True)],
)
def test_a_term_stands_as_a_whole_token(term: str, text: str, found: bool) -> None:
    assert bool(term_pattern(term).search(text)) is found


def test_spelling_variants_and_typos_are_not_missing_terms() -> None:
    paper = ["The basic reproduction number R 0 of SARS was 2.9; COVID-19 spread faster.",
             "Zanamivir combined with carrageenan protected mice."]
    assert missing_terms("What was the R0 of SARS?", paper) == []
    assert missing_terms("What are the symptoms of COVID19?", paper) == []
    assert missing_terms("Do carageenan and Zanamavir together help?", paper) == []  # a typo, one edit away
    assert missing_terms("Did Tesla report a loss?", ["Tesla's rival Tesco"]) == []
    assert missing_terms("Did Tesla report a loss?", ["Tesco and Texas"]) == ["Tesla"]  # short names: no typo allowance
    assert missing_terms("What happened on March 11th?", ["on 11 March"]) == []
