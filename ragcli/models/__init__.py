"""The model layer: which models exist, where their files are, and how each is built.

- ``registry``: models.toml -> frozen ``ModelSpec``s (the built-in ``models.toml`` sits beside it)
- ``files``: is a model available, its local path, the ONNX export, sha256 checks
- ``onnx_export``: a sentence-transformers folder -> ONNX (imports torch; run at set-up only)
- ``embedders``, ``e5``: the ``Embedder`` base and its backends; ``generators``: the ``Generator``
  base, llama.cpp and a scripted test double

Nothing is imported here, so importing any of them costs only that module: torch,
sentence-transformers, llama_cpp and onnxruntime load when a model is built or first used.
"""
