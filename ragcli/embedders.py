"""Embedders: text -> L2-normalised float32 vectors, behind one small interface.

``Embedder.embed(texts) -> (n, dim) float32`` with unit rows, plus ``count_tokens`` so the
chunker can size chunks with the model's own tokenizer. Two backends:

- ``SentenceTransformerEmbedder``: the real one (all-MiniLM-L6-v2 by default). Its tokenizer
  is read with the ``tokenizers`` library alone, so chunking and ``rag status`` never import
  torch; torch and sentence-transformers load on the first ``embed`` call.
- ``HashEmbedder``: a deterministic bag-of-words hashing embedder with no dependencies,
  used by fast unit tests (and selectable in models.toml with ``backend = "hash"``).

Batching lives in ``embed_batched`` (shared by both); callers pass a progress callback.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np


class Embedder(Protocol):
    name: str  # registry name
    id: str  # identifies the weights; stored in the index
    dim: int
    max_tokens: int  # model window in wordpieces, special tokens included

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...  # (n, dim) float32, unit rows

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...  # wordpieces, no special tokens


def embed_batched(
    embedder: Embedder,
    texts: Sequence[str],
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Embed in batches (sorted by length, so padding is small), calling ``progress(n_done)``."""
    import numpy as np

    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    for lo in range(0, len(order), batch_size):
        idx = order[lo : lo + batch_size]
        out[idx] = embedder.embed([texts[i] for i in idx])
        if progress:
            progress(len(idx))
    return out


class SentenceTransformerEmbedder:
    """sentence-transformers model from a local directory (never from a hub)."""

    def __init__(self, model_dir: Path, name: str, dim: int = 384, max_tokens: int = 256,
                 batch_size: int = 32, n_threads: int | None = None) -> None:
        self.model_dir = Path(model_dir)
        self.name = name
        self.dim = dim
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.n_threads = n_threads
        weights = self.model_dir / "model.safetensors"
        size = weights.stat().st_size if weights.exists() else 0
        self.id = f"{self.model_dir.name}:{size}"
        self._tokenizer = None
        self._model = None
        self.load_s = 0.0

    def _tok(self):
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
            tok.no_truncation()
            tok.no_padding()
            self._tokenizer = tok
        return self._tokenizer

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        encs = self._tok().encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encs]

    def model(self):
        if self._model is None:
            t0 = time.perf_counter()
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is local; never ask a hub
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            import torch
            import transformers
            from sentence_transformers import SentenceTransformer

            transformers.utils.logging.disable_progress_bar()  # no bars on the user's stderr

            if self.n_threads:
                torch.set_num_threads(self.n_threads)
            self._model = SentenceTransformer(str(self.model_dir), device="cpu")
            self._model.max_seq_length = self.max_tokens
            self.load_s = time.perf_counter() - t0
        return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        vecs = self.model().encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)


_WORD = re.compile(r"\w+|[^\w\s]", re.U)


class HashEmbedder:
    """Deterministic hashed bag of lower-cased words (and their 4-char prefixes).

    Similar texts share words and so get similar vectors; good enough to test ranking,
    incremental updates and storage without loading a neural model. ``delay`` (seconds
    per call) makes ingests slow on purpose for interruption tests.
    """

    def __init__(self, dim: int = 256, name: str = "hash", max_tokens: int = 256, delay: float = 0.0) -> None:
        self.dim = dim
        self.name = name
        self.id = f"hash-{dim}"
        self.max_tokens = max_tokens
        self.delay = delay
        self.load_s = 0.0

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(_WORD.findall(t)) for t in texts]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        if self.delay:
            time.sleep(self.delay)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()):
                for feat in (w, w[:4] + "~"):
                    h = int.from_bytes(hashlib.blake2b(feat.encode(), digest_size=8).digest(), "little")
                    out[i, h % self.dim] += 1.0 if h & (1 << 63) else -1.0
            n = float(np.linalg.norm(out[i]))
            if n > 0:
                out[i] /= n
            else:
                out[i, 0] = 1.0
        return out
