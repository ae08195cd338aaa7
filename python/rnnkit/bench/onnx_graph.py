"""The ONNX RNN/LSTM/GRU graph of a case, built with the `onnx` helper API (ORT, OpenVINO).

Keras -> ONNX: kernels transposed to (G·H, D) and (G·H, H); LSTM gates reordered from Keras
i, f, c, o to ONNX i, o, f, c; GRU keeps z, r, h with linear_before_reset=1 (Keras
reset_after=True); bias [input bias, recurrent bias]. The ONNX ops are time-major only
(layout=1 is refused by ONNX Runtime), so at batch > 1 the graph transposes the batch-first
input and output like an exported batch-first model does; at batch 1 the adapter reshapes
(no copy) instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

OPSET = 17
IR_VERSION = 8
LSTM_ONNX_ORDER = (0, 3, 1, 2)  # ONNX i, o, f, c from Keras i, f, c, o


def onnx_weights(cell: str, weights: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
    """ONNX W (1, G·H, D), R (1, G·H, H) and B (1, 2·G·H) from Keras weights."""
    kernel, recurrent, bias = (np.asarray(w, dtype=np.float32) for w in weights)
    units = recurrent.shape[0]
    if cell == "GRU":
        b_in, b_rec = bias[0], bias[1]
    else:
        b_in, b_rec = bias, np.zeros_like(bias)
    if cell == "LSTM":

        def order(m: np.ndarray) -> np.ndarray:
            blocks = [m[..., k * units : (k + 1) * units] for k in LSTM_ONNX_ORDER]
            return np.concatenate(blocks, axis=-1)

        kernel, recurrent, b_in, b_rec = (order(m) for m in (kernel, recurrent, b_in, b_rec))
    w = np.ascontiguousarray(kernel.T[None])
    r = np.ascontiguousarray(recurrent.T[None])
    b = np.concatenate([b_in, b_rec])[None].astype(np.float32)
    return w, r, b


def build_model(cell: str, weights: Sequence[np.ndarray], batch: int, steps: int,
                stateful: bool) -> bytes:
    """Serialized ONNX model. Inputs: `x` ((B, T, D) at batch > 1, else (T, 1, D)), and with
    `stateful` also `h0` (and `c0` for LSTM) of shape (1, B, H). Outputs: `y` ((B, T, H) at
    batch > 1, else (T, 1, 1, H)), and with `stateful` `hT` (and `cT`)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w, r, b = onnx_weights(cell, weights)
    units, input_dim = r.shape[2], w.shape[2]
    f32 = TensorProto.FLOAT
    op = {"SimpleRNN": "RNN", "LSTM": "LSTM", "GRU": "GRU"}[cell]
    nodes = []
    inits = [numpy_helper.from_array(a, name) for a, name in ((w, "W"), (r, "R"), (b, "B"))]
    time_major = batch == 1
    if time_major:
        inputs = [helper.make_tensor_value_info("x", f32, [steps, 1, input_dim])]
        seq = "x"
    else:
        inputs = [helper.make_tensor_value_info("x", f32, [batch, steps, input_dim])]
        nodes.append(helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]))
        seq = "xt"
    state_names = ["h0", "c0"] if cell == "LSTM" else ["h0"]
    node_inputs = [seq, "W", "R", "B"]
    node_outputs = ["y" if time_major else "Y"]
    outputs = []
    if stateful:
        node_inputs += [""] + state_names  # no sequence_lens
        node_outputs += ["hT", "cT"][: len(state_names)]
        for name in state_names:
            inputs.append(helper.make_tensor_value_info(name, f32, [1, batch, units]))
    attrs: dict[str, Any] = {"hidden_size": units}
    if cell == "GRU":
        attrs["linear_before_reset"] = 1
    nodes.append(helper.make_node(op, node_inputs, node_outputs, **attrs))
    if time_major:
        outputs.append(helper.make_tensor_value_info("y", f32, [steps, 1, 1, units]))
    else:
        inits.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"))
        nodes.append(helper.make_node("Squeeze", ["Y", "axis1"], ["Ys"]))
        nodes.append(helper.make_node("Transpose", ["Ys"], ["y"], perm=[1, 0, 2]))
        outputs.append(helper.make_tensor_value_info("y", f32, [batch, steps, units]))
    for name in node_outputs[1:]:
        outputs.append(helper.make_tensor_value_info(name, f32, [1, batch, units]))
    graph = helper.make_graph(nodes, f"rnnkit_bench_{op}", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model.SerializeToString()
