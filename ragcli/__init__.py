"""ragcli: answer questions about your own documents, offline, with exact verified quotes.

The public API (imported lazily, so ``rag --help`` starts instantly)::

    from ragcli import Index
    with Index("./my-index") as idx:
        idx.ingest(["docs/"])
        answer = idx.ask("What is Q4_K_M?")
        for c in answer.citations: print(c.quote)

The functions under it (``ingest``, ``search``, ``ask``, ``status`` over a ``Settings``)
are exported too.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "Answer",
    "Chunk",
    "Citation",
    "Document",
    "Hit",
    "Index",
    "IngestReport",
    "IndexNotFoundError",
    "RagError",
    "SearchResult",
    "Settings",
    "Span",
    "ask",
    "ingest",
    "resolve_settings",
    "search",
    "status",
]

_WHERE = {
    "Answer": "types", "Chunk": "types", "Citation": "types", "Document": "types", "Hit": "types",
    "Span": "types", "RagError": "errors", "IndexNotFoundError": "errors", "Settings": "config", "resolve_settings": "config",
    "Index": "api", "IngestReport": "types", "SearchResult": "types", "ask": "pipeline", "ingest": "pipeline",
    "search": "pipeline", "status": "pipeline",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'ragcli' has no attribute {name!r}")
