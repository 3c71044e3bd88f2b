"""``rag ask --batch``: many questions in one process, the models loaded once.

Input: JSON Lines, one object a line: ``{"question": ..., "id": ... (optional), "k": ...
(optional), "mode": ... (optional), "path", "type", "since" (optional: the line's own
``--path``/``--type``/``--since``, each replacing the flag's for that line; ``scope``)}``;
a line that is plain text (not starting with ``{``)
is a question by itself; blank lines are skipped. Output: one JSON object a line, in input
order: ``rag ask --json``'s answer plus ``id`` and ``line``; a line that cannot be asked (bad
JSON, no question, a question ``check_question`` refuses) gives ``{"status": "error",
"error": ...}`` and the batch goes on. What it does not do: run questions in parallel.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .answer import AnswerParams
from .api import Index
from .config import MODES
from .errors import UsageError
from .scope import Scope, parse_scope


@dataclass(frozen=True)
class BatchSummary:
    questions: int  # lines that held a question (errors included)
    answered: int
    no_evidence: int
    errors: int
    seconds: float

    def line(self) -> str:
        rate = self.questions / self.seconds if self.seconds > 0 else 0.0
        return (f"rag: batch: {self.questions} questions: {self.answered} answered, {self.no_evidence} "
                f"no evidence, {self.errors} errors in {self.seconds:.1f}s ({rate:.2f} questions/s)")


def _parse(n: int, raw: str) -> dict:
    raw = raw.strip()
    if not raw.startswith("{"):
        return {"question": raw}
    try:
        row = json.loads(raw)
    except json.JSONDecodeError as e:
        raise UsageError(f"line {n} is not JSON: {e.msg}") from None
    if not isinstance(row, dict) or not isinstance(row.get("question"), str):
        raise UsageError(f'line {n} has no "question" string')
    k = row.get("k")
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 100):
        raise UsageError(f"line {n}: k must be a whole number from 1 to 100")
    if row.get("mode") not in (None, *MODES):
        raise UsageError(f"line {n}: mode must be one of: {', '.join(MODES)}")
    return row


_FILTERS = ("path", "type", "since")


def _filters(n: int, row: dict, scope: Scope | None) -> dict:
    """The line's filters (``path``, ``type``, ``since``), each key replacing the flags' one."""
    base = scope or Scope()
    out = {"path": list(base.paths), "type": list(base.types), "since": base.since_text or None}
    out.update({key: row[key] for key in _FILTERS if key in row})
    try:
        parse_scope(out["path"], out["type"], out["since"])
    except UsageError as e:
        raise UsageError(f"line {n}: {e}") from None
    return out


def run_batch(lines: Iterable[str], idx: Index, emit: Callable[[dict], None], *, k: int | None = None,
              mode: str | None = None, params: AnswerParams | None = None, scope: Scope | None = None) -> BatchSummary:
    """Ask each line's question of ``idx``; ``emit`` gets each result as it is ready;
    ``params``: the answering knobs (``AnswerParams``), the same for every line; ``scope``:
    the flags' filters, which a line's own ``path``/``type``/``since`` replace."""
    t0 = time.perf_counter()
    counts = {"answered": 0, "no_evidence": 0, "error": 0}
    for n, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        ident = None
        try:
            row = _parse(n, raw)
            ident = row.get("id")
            ans = idx.ask(row["question"], k=row.get("k") or k, mode=row.get("mode") or mode,
                          params=params or AnswerParams(), **_filters(n, row, scope))
            out = {"id": ident, "line": n, **ans.to_json(), "reason": ans.reason}
            counts[ans.status if ans.status in counts else "answered"] += 1
        except UsageError as e:
            out = {"id": ident, "line": n, "status": "error", "error": str(e)}
            counts["error"] += 1
        emit(out)
    total = sum(counts.values())
    return BatchSummary(total, counts["answered"], counts["no_evidence"], counts["error"], time.perf_counter() - t0)
