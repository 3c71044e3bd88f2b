"""sentence-transformers folder -> ONNX file, fp32, int8 or fused int8: done once, at set-up.

``export_onnx`` loads the folder's transformer with transformers (torch) and writes it with
``torch.onnx.export`` (the TorchScript exporter, ``dynamo=False``, opset 17, dynamic batch
and sequence axes); ``variant="int8"`` then quantizes its MatMul weights with ONNX Runtime's
``quantize_dynamic`` per channel. The weights go to a second file, ``<name>.data`` beside the
graph: ONNX Runtime maps it instead of parsing it, which halves the time a new process takes
to open the model (0.23 -> 0.13 s for int8 on 2 cores). The output is the transformer's ``last_hidden_state``;
pooling and normalisation stay in ``embedders.OnnxEmbedder``, so the file works for any
mean-pooled sentence-transformers model.

``variant="int8-fused"`` exports the transformer with its plain ("eager") attention, whose
graph ONNX Runtime's BERT optimiser recognises: it fuses each layer's attention into one
``Attention`` op (and embeddings + LayerNorm, residual + LayerNorm, bias + GELU), and the
quantizer then quantizes those attention ops' weights too (per channel). The default export
uses PyTorch's SDPA attention, which the optimiser cannot fuse (tried: no gain). Measured on
500 COVID-QA chunks, 2 cores, the same run, median of 4 (``bench/int8_batches.py``): 69.6
chunks/s against 47.9 for ``int8``, at the same cosine to fp32 (mean 0.9948). It is a BERT-only recipe: a folder whose
model the optimiser does not fuse is refused with a message naming the ``onnx-int8`` backend.

``variant="int8-mixed"`` is int8-fused with the feed-forward output MatMuls
(``layer.N/output/dense``) of the first half of the layers left in fp32. Their input comes
right after GELU, and one int8 scale per tensor serves its outliers worst: excluded one node at
a time from quantization (500 COVID-QA chunks, cosine to fp32), those three raised the mean
cosine most (0.9948 -> 0.9959, 0.9957, 0.9954; no other node above 0.9951); the three
together give 0.9974 at about 0.83x int8-fused's speed. Chosen on that cosine, then checked on
SciFact (bench/retrieval.py): the fused model's nDCG@10 loss to fp32 there, 0.0057 on the test
queries, becomes 0.0018.

Why these settings (measured on all-MiniLM-L6-v2, 2 CPU cores): the fp32 export gives
sentence-transformers' vectors (cosine >= 0.9999, ``tests/test_onnx_embedder.py``); the
per-channel MatMul-only int8 model embeds about twice as fast at cosine ~0.995 to fp32,
where ``quantize_dynamic``'s default settings lose much more (cosine 0.96-0.98).

Deliberately not here: where the files go and their sha256 (``modelfiles``), running them
(``embedders``). This is the only ragcli module that imports torch besides the
sentence-transformers backend.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

__all__ = ["VARIANTS", "data_path", "export_onnx"]

VARIANTS = ("fp32", "int8", "int8-fused", "int8-mixed")
OPSET = 17


def export_onnx(model_dir: Path, out: Path, variant: str = "fp32") -> tuple[Path, Path]:
    """Write the transformer of the sentence-transformers folder ``model_dir`` to ``out`` (the
    graph) and ``data_path(out)`` (its weights, named in the graph: keep the two together)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
    out = Path(out)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".export-") as tmp:
        fp32 = Path(tmp) / "model-fp32.onnx"
        fused = variant in ("int8-fused", "int8-mixed")
        _export_fp32(Path(model_dir), fp32, eager=fused)
        if variant == "fp32":
            _save_external(fp32, out)
        else:
            graph = fp32
            if fused:
                graph = Path(tmp) / "model-fused.onnx"
                _fuse(Path(model_dir), fp32, graph)
            quantized = Path(tmp) / "model-int8.onnx"
            keep = _ffn_outputs_of_first_half(Path(model_dir), graph) if variant == "int8-mixed" else []
            _quantize_int8(graph, quantized, ops=["MatMul", "Attention"] if fused else None, keep_fp32=keep)
            _save_external(quantized, out)
    return out, data_path(out)


def data_path(graph: Path) -> Path:
    """Where the weights of the graph file ``graph`` are: ``model.onnx`` -> ``model.onnx.data``."""
    return graph.with_name(graph.name + ".data")


def _save_external(src: Path, out: Path) -> None:
    import onnx

    model = onnx.load(str(src))
    onnx.save_model(model, str(out), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=data_path(out).name, size_threshold=1024)


def _export_fp32(model_dir: Path, out: Path, eager: bool = False) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder; never ask a hub
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import torch
    import transformers
    from transformers import AutoModel

    transformers.utils.logging.disable_progress_bar()  # no bars on the user's stderr

    class LastHiddenState(torch.nn.Module):
        """The transformer called with keywords (transformers 5 rejects positional inputs)."""

        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    options = {"attn_implementation": "eager"} if eager else {}  # eager: a graph the optimiser fuses
    model = LastHiddenState(AutoModel.from_pretrained(str(_transformer_dir(model_dir)), **options))
    model.eval()
    ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]], dtype=torch.int64)  # (2, 4)
    mask = (ids != 0).to(torch.int64)
    inputs = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
    dynamic = {name: {0: "batch", 1: "sequence"} for name in inputs}
    dynamic["last_hidden_state"] = {0: "batch", 1: "sequence"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on traced control flow: expected here
        torch.onnx.export(
            model, tuple(inputs.values()), str(out),
            input_names=list(inputs), output_names=["last_hidden_state"], dynamic_axes=dynamic,
            opset_version=OPSET, dynamo=False, do_constant_folding=True,
        )


def _transformer_dir(model_dir: Path) -> Path:
    """The folder holding config.json + the weights: the root of a sentence-transformers folder,
    or the subfolder named in its modules.json (e.g. ``0_Transformer``) for older layouts."""
    if (model_dir / "config.json").is_file():
        return model_dir
    for sub in sorted(model_dir.iterdir()):
        if (sub / "config.json").is_file():
            return sub
    return model_dir


def _fuse(model_dir: Path, fp32: Path, out: Path) -> None:
    """ONNX Runtime's BERT optimiser over the eager export: fused attention and LayerNorms."""
    import json

    from onnxruntime.transformers import optimizer

    config = json.loads((_transformer_dir(model_dir) / "config.json").read_text())
    fused = optimizer.optimize_model(str(fp32), model_type="bert", opt_level=1,
                                     num_heads=int(config.get("num_attention_heads", 0)),
                                     hidden_size=int(config.get("hidden_size", 0)))
    if not fused.get_fused_operator_statistics().get("Attention"):
        raise ValueError(f"{model_dir}: ONNX Runtime's BERT optimiser finds no attention to fuse in this "
                         "model; use backend = \"onnx-int8\" for it instead of \"onnx-int8-fused\"")
    fused.save_model_to_file(str(out))


def _ffn_outputs_of_first_half(model_dir: Path, graph: Path) -> list[str]:
    """The feed-forward output MatMuls (``layer.N/output/dense``) of the first half of the
    layers: their input, right after GELU, has the outliers that a per-tensor int8 scale serves
    worst (measured one node at a time, below)."""
    import json
    import re

    import onnx

    layers = int(json.loads((_transformer_dir(model_dir) / "config.json").read_text()).get("num_hidden_layers", 0))
    pattern = re.compile(r"layer\.(\d+)/output/dense/MatMul$")
    names = [n.name for n in onnx.load(str(graph), load_external_data=False).graph.node
             if n.op_type == "MatMul" and (m := pattern.search(n.name)) and int(m.group(1)) < layers // 2]
    if not names or len(names) != layers // 2:
        raise ValueError(f"{model_dir}: the feed-forward output layers of this model were not found by name; "
                         "use backend = \"onnx-int8-fused\" for it instead of \"onnx-int8-mixed\"")
    return names


def _quantize_int8(fp32: Path, out: Path, ops: list[str] | None = None, keep_fp32: Sequence[str] = ()) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs advice through the root logger
    try:
        # fused ops are in Microsoft's domain, where shape inference finds no types: float
        extra = {"DefaultTensorType": onnx.TensorProto.FLOAT} if ops else {}
        quantize_dynamic(str(fp32), str(out), per_channel=True, weight_type=QuantType.QInt8,
                         op_types_to_quantize=ops or ["MatMul"], nodes_to_exclude=list(keep_fp32),
                         extra_options=extra)
    finally:
        root.setLevel(level)
