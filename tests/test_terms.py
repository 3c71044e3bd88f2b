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
        # a fiscal period is its year; measure and unit words name nothing a folder may lack
        ("What is the FY2018 capital expenditure amount (in USD millions) for 3M?", ["2018", "3M"]),
        ("What was Pfizer's net PP&E in FY20 and Q2 2023?", ["Pfizer", "2020", "2023"]),
        ("What was MGM's H1 FY2023 EBITDA and its 3Q21 COGS?", ["MGM", "2023", "2021"]),
        # a word opening any sentence of the question, and what the question defines, are no names
        ("What is Adobe's FY2017 operating cash flow ratio? Round your answer to two decimal places. "
         "Please utilize the balance sheet.", ["Adobe", "2017"]),
        ("Here's the question: what is the FY2015 ratio for AMD?", ["2015", "AMD"]),
        ("What is Amazon's FY2017 days payable outstanding (DPO)? DPO is defined as: 365 * (average "
         "accounts payable between FY2016 and FY2017) / (FY2017 COGS). Round your answer.", ["Amazon", "2017"]),
        ("What is the FY2019 cash conversion cycle (CCC) for General Mills? CCC is defined as: DIO + DSO - DPO.",
         ["2019", "General", "Mills"]),
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


def test_an_answer_keeps_the_names_that_open_its_later_sentences() -> None:
    """Only a question's sentences open with words that name nothing; an answer's names count wherever they stand."""
    assert specific_terms("Yes. Tesla reported it. Round numbers.", as_question=False) == ["Tesla", "Round"]
    assert specific_terms("Yes. Tesla reported it. Round numbers.") == []


def test_a_filing_answers_a_question_written_as_analysts_write_them() -> None:
    """FinanceBench's questions name a fiscal year as "FY2018", the unit as "USD", and add
    instructions ("Round your answer ...", "Give a response ..."); the filing says "2018" and "$"."""
    filing = ["3M 2018 10K", "Purchases of property, plant and equipment (PP&E) (1,577) (1,373) in 2018 and 2017"]
    q = ("What is the FY2018 capital expenditure amount (in USD millions) for 3M? Give a response to the "
         "question by relying on the details shown in the cash flow statement.")
    assert missing_terms(q, filing) == []
    assert missing_terms(q.replace("3M", "Tesla"), filing) == ["Tesla"]  # the gate still stops what is absent
    assert missing_terms(q.replace("FY2018", "FY2021"), filing) == ["2021"]
