"""The model layer's two records: a models.toml entry (``ModelSpec``) and the files an ONNX
entry resolves to (``OnnxFiles``). Frozen, validated where they are made (``registry``, ``files``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["ModelSpec", "OnnxFiles"]


@dataclass(frozen=True)
class ModelSpec:
    kind: str  # "llm" | "embedder"
    name: str  # registry name, e.g. "qwen2.5-coder-0.5b"
    source: str  # "path" | "pypi" | "hf" | "builtin"
    description: str = ""
    path: str = ""  # source = "path": a file (llm) or a folder (embedder); "~" allowed
    packages: tuple[str, ...] = ()  # source = "pypi": importable modules, one per part, in order
    files: tuple[str, ...] = ()  # the part's file inside each of ``packages``
    module: str = ""  # source = "pypi": one module with get_model_path() or assemble()
    assemble: bool = False  # call module.assemble(output_path) instead of get_model_path()
    repo: str = ""  # source = "hf": "owner/name"
    file: str = ""  # source = "hf": file in the repo (llm only)
    revision: str = "main"  # source = "hf"
    sha256: str = ""  # lowercase hex; "" = not checked. Embedders: of the ONNX export (onnx backends only)
    install: str = ""  # shown when unavailable, e.g. "pip install ..."
    backend: str = ""  # embedder: a name in ``backends.BACKENDS``, "" = "sentence-transformers"
    delay: float = 0.0  # test doubles: seconds to sleep per call (to test timeouts and locking)
    n_ctx: int = 4096  # llm: context window in tokens
    chat_format: str = ""  # llm: "" = the GGUF's chat template; else a llama-cpp-python name
    n_gpu_layers: int = 0  # llm: layers offloaded to a GPU, -1 = all
    dim: int = 0  # embedder: vector dimension
    max_tokens: int = 256  # embedder: longest input in tokens
    device: str = "cpu"  # embedder: "cpu" | "cuda" | "cuda:N", where its vectors are computed


@dataclass(frozen=True)
class OnnxFiles:
    onnx: Path  # the exported graph (input_ids, attention_mask, token_type_ids -> last_hidden_state);
    #             its weights are in the file beside it, <name>.onnx.data
    tokenizer: Path  # the source folder's tokenizer.json, copied beside it
    weights_id: str  # ``embedders.weights_id`` of the source folder
    variant: str  # "fp32" | "int8" | "int8-fused" | "int8-mixed"
