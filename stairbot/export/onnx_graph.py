"""A PolicyGraph as an ONNX model.

The graph is written node by node with `onnx.helper` (opset 17, weights inline, one file), not traced
through torch's exporters, so it is exactly the graph `PolicyGraph.forward` describes and does not
depend on which exporter a torch release ships. Input `observation` (B, N) float32, output
`joint_targets` (B, J) float32.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from stairbot.export.policy_graph import Activation, PolicyGraph, Squash

ONNX_OPSET = 17
INPUT_NAME = "observation"
OUTPUT_NAME = "joint_targets"


def to_onnx(graph: PolicyGraph, path: Path, *, producer: str = "stairbot") -> None:
    """Write `graph` as a single-file ONNX model (validated with onnx.checker)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    initializers: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def const(name: str, value: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    x = node("Sub", [INPUT_NAME, const("obs_mean", graph.obs_mean)], "centered")
    x = node("Div", [x, const("obs_std", graph.obs_std)], "standardized")
    clip_lo, clip_hi = (
        const("obs_clip_low", np.array(-graph.obs_clip)),
        const("obs_clip_high", np.array(graph.obs_clip)),
    )
    x = node("Clip", [x, clip_lo, clip_hi], "normalized")
    activation = {Activation.ELU: "Elu", Activation.RELU: "Relu", Activation.TANH: "Tanh"}[graph.activation]
    for i, layer in enumerate(graph.hidden):
        x = node(
            "Gemm", [x, const(f"w{i}", layer.weight), const(f"b{i}", layer.bias)], f"linear{i}", transB=1
        )
        x = node(activation, [x], f"hidden{i}", **({"alpha": 1.0} if activation == "Elu" else {}))
    out = graph.output
    x = node("Gemm", [x, const("w_out", out.weight), const("b_out", out.bias)], "action_mean", transB=1)
    if graph.mean_clip is not None:
        bounds = [
            const("mean_low", np.array(-graph.mean_clip)),
            const("mean_high", np.array(graph.mean_clip)),
        ]
        x = node("Clip", [x, *bounds], "action_mean_clipped")
    if graph.squash is Squash.CLIP:
        x = node(
            "Clip", [x, const("action_low", np.array(-1.0)), const("action_high", np.array(1.0))], "action"
        )
    else:
        x = node("Tanh", [x], "action")
    x = node("Mul", [x, const("action_scale_rad", graph.action_scale_rad)], "offset_rad")
    node("Add", [x, const("default_pose_rad", graph.default_pose_rad)], OUTPUT_NAME)

    model = helper.make_model(
        helper.make_graph(
            nodes,
            "stairbot_policy",
            [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", graph.observation_size])],
            [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", graph.action_size])],
            initializers,
        ),
        opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
        producer_name=producer,
    )
    model.ir_version = 8  # readable by onnxruntime releases back to 1.10
    onnx.checker.check_model(model, full_check=True)
    onnx.save_model(model, str(path))
