"""ragcli: answer questions about your own documents, offline, with exact verified quotes.

The public API is ``Index`` and the records it returns (imported lazily, so ``rag --help``
starts instantly)::

    from ragcli import Index
    with Index("./my-index") as idx:
        idx.ingest(["docs/"])
        answer = idx.ask("What is Q4_K_M?")
        for c in answer.citations: print(c.quote)

Every other module is private: the ``rag`` command and the MCP server run the same code
underneath, and may change it between versions (docs/python-api.md).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "Answer",
    "AnswerParams",
    "Chunk",
    "Citation",
    "Document",
    "EmptyScopeError",
    "Hit",
    "Index",
    "IndexNotFoundError",
    "IngestReport",
    "Origin",
    "RagError",
    "SearchResult",
    "Span",
    "Tally",
    "UsageError",
]

_WHERE = {
    "Answer": "types", "Chunk": "types", "Citation": "types", "Document": "types", "Hit": "types",
    "IngestReport": "types", "Origin": "types", "SearchResult": "types", "Span": "types",
    "RagError": "errors", "IndexNotFoundError": "errors", "EmptyScopeError": "errors", "UsageError": "errors",
    "Index": "api", "AnswerParams": "answer", "Tally": "ingest",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'ragcli' has no attribute {name!r}")
