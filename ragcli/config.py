"""Settings and where things live on disk; the one place precedence is resolved.

Precedence, lowest first: built-in defaults < models.toml < environment (``RAG_INDEX``,
``RAG_MODEL``, ``RAG_EMBEDDER``, ``RAG_MODELS``) < command-line flags. This module does not
read models.toml itself (see ``registry``); it only decides which files are read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from .errors import UsageError
from .index.locations import is_server


def xdg_dir(var: str, fallback: str, env: Mapping[str, str] | None = None) -> Path:
    """``$var`` if set and absolute (as the XDG spec asks), else ``~/<fallback>``."""
    env = os.environ if env is None else env
    value = env.get(var, "")
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / fallback


def default_index_dir(env: Mapping[str, str] | None = None) -> Path:
    return xdg_dir("XDG_DATA_HOME", ".local/share", env) / "ragcli"


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    return xdg_dir("XDG_CACHE_HOME", ".cache", env) / "ragcli"


def user_models_file(env: Mapping[str, str] | None = None) -> Path:
    return xdg_dir("XDG_CONFIG_HOME", ".config", env) / "ragcli" / "models.toml"


class Mode(StrEnum):
    """How a search ranks: by meaning (the embedder), by words (BM25), or both, fused."""

    DENSE = "dense"
    LEXICAL = "lexical"
    HYBRID = "hybrid"


MODES = tuple(m.value for m in Mode)
DEFAULT_MODE = Mode.HYBRID
DEFAULT_K = 5  # passages a search returns (``rag ask`` retrieves ``AnswerParams.k``)


def as_mode(mode: str | Mode) -> Mode:
    """``mode`` checked where it enters (a flag, a batch line, an MCP call, the API).

    >>> as_mode("dense") is Mode.DENSE
    True
    """
    try:
        return Mode(mode)
    except ValueError:
        raise UsageError(f"unknown retrieval mode '{mode}'; use one of: {', '.join(MODES)}") from None


@dataclass(frozen=True)
class Settings:
    index: str | Path  # the index: a directory (SQLite), or a postgresql://... URL (``index.open``)
    cache_dir: Path  # assembled / downloaded model files
    models_files: tuple[Path, ...]  # extra registry files, later ones override earlier ones
    model: str | None = None  # LLM name; None = the registry's default
    embedder: str | None = None  # embedder name for a new index; None = the registry's default
    n_threads: int | None = None  # llama.cpp / torch threads, ONNX embedder lanes; None = all cores


def resolve_settings(
    *,
    index: str | Path | None = None,
    models: str | Path | None = None,
    model: str | None = None,
    embedder: str | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: object,
) -> Settings:
    """Flags win over the environment, which wins over defaults.

    >>> resolve_settings(index="/tmp/i", env={"RAG_INDEX": "/x"}).index
    PosixPath('/tmp/i')
    >>> resolve_settings(env={"RAG_INDEX": "postgresql://me@db/team"}).index
    'postgresql://me@db/team'
    """
    env = os.environ if env is None else env
    where = index or env.get("RAG_INDEX")
    location = where if isinstance(where, str) and is_server(where) else \
        Path(where or default_index_dir(env)).expanduser().absolute()
    files: list[Path] = []
    user_file = user_models_file(env)
    if user_file.is_file():
        files.append(user_file)
    extra = models or env.get("RAG_MODELS")
    if extra:
        files.append(Path(extra).expanduser())
    settings = Settings(
        index=location,
        cache_dir=Path(env.get("RAG_CACHE") or default_cache_dir(env)).expanduser(),
        models_files=tuple(files),
        model=model or env.get("RAG_MODEL") or None,
        embedder=embedder or env.get("RAG_EMBEDDER") or None,
    )
    clean = {k: v for k, v in overrides.items() if v is not None}
    return replace(settings, **clean) if clean else settings  # type: ignore[arg-type]
