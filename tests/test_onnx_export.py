"""The int8-mixed recipe's choice of the MatMuls kept in fp32, on small hand-made graphs."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from ragcli.models.onnx_export import _ffn_outputs_of_first_half


def _graph(tmp_path: Path, names: list[str], layers: int) -> tuple[Path, Path]:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps({"num_hidden_layers": layers}))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])
    w = helper.make_tensor("w", TensorProto.FLOAT, [2, 2], [1.0, 0.0, 0.0, 1.0])
    nodes, prev = [], "x"
    for i, name in enumerate(names):
        nodes.append(helper.make_node("MatMul", [prev, "w"], [f"y{i}"], name=name))
        prev = f"y{i}"
    y = helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, 2])
    path = tmp_path / "g.onnx"
    onnx.save(helper.make_model(helper.make_graph(nodes, "g", [x], [y], [w])), str(path))
    return model_dir, path


def test_the_first_half_of_the_layers_feed_forward_outputs_are_kept_in_fp32(tmp_path: Path) -> None:
    names = []
    for i in range(4):
        names += [f"/model/encoder/layer.{i}/attention/output/dense/MatMul",
                  f"/model/encoder/layer.{i}/intermediate/dense/MatMul",
                  f"/model/encoder/layer.{i}/output/dense/MatMul"]
    model_dir, graph = _graph(tmp_path, names, layers=4)
    assert _ffn_outputs_of_first_half(model_dir, graph) == [
        "/model/encoder/layer.0/output/dense/MatMul", "/model/encoder/layer.1/output/dense/MatMul"]


def test_a_model_named_otherwise_is_refused_with_the_backend_to_use(tmp_path: Path) -> None:
    model_dir, graph = _graph(tmp_path, [f"/blocks.{i}/mlp/fc2/MatMul" for i in range(4)], layers=4)
    with pytest.raises(ValueError, match='use backend = "onnx-int8-fused"'):
        _ffn_outputs_of_first_half(model_dir, graph)
