"""The exit codes of ``rag``, and which one each outcome gets: the one home of the numbers.

    0    OK           success
    1    ERROR        error (the message on stderr says what to do)
    2    USAGE        usage error (bad flags, empty question)
    3    PARTIAL      ingest finished but some files failed
    4    NO_EVIDENCE  no evidence: the documents do not answer the question
    130  INTERRUPTED  interrupted (Ctrl-C); the index is left as it was

``rag verify`` uses 0 (every citation verified), 1 (a citation failed, or could not be checked
here: a recipe's library is not installed) and 2 (the input is not ``rag ask --json`` output,
or holds no citation). Errors carry theirs (``errors.RagError.exit_code``); the outcomes that
are not errors are decided by the functions below, which ``cli`` calls.
"""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    ERROR = 1
    USAGE = 2
    PARTIAL = 3
    NO_EVIDENCE = 4
    INTERRUPTED = 130


EPILOG = (
    "Exit codes: 0 success, 1 error, 2 usage error, 3 ingest finished but some files failed, "
    "4 no evidence for an answer, 130 interrupted."
)


def of_ingest(failed: bool, only_known_failures: bool = False, accept_known_failures: bool = False) -> Exit:
    """An ingest: 3 when a file failed, unless every failure is one that failed before, unchanged,
    and the user accepts those (``--accept-known-failures``).

    >>> of_ingest(True).value, of_ingest(True, True, True).value, of_ingest(False).value
    (3, 0, 0)
    """
    return Exit.PARTIAL if failed and not (accept_known_failures and only_known_failures) else Exit.OK


def of_batch(questions: int, no_evidence: int) -> Exit:
    """``rag ask --batch``: 4 only when every question abstained (errors are on their lines).

    >>> of_batch(2, 2).value, of_batch(2, 1).value, of_batch(0, 0).value
    (4, 0, 0)
    """
    return Exit.NO_EVIDENCE if questions and no_evidence == questions else Exit.OK


def of_answer(answered: bool) -> Exit:
    """``rag ask``: 4 when the documents do not answer."""
    return Exit.OK if answered else Exit.NO_EVIDENCE
