"""One adapter per peer. Each builds, for one case at one thread count, an `Instance`: a
sequence call `x -> y` or, for a streaming scenario, a single-step call with the state
carried, plus `reset` to zero that state.

Peer modules are imported in `Peer.load`, so a missing peer is reported as skipped with its
import error; nothing here imports Keras (the Keras peer runs in a subprocess, `keras_jax`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np

from .instance import Instance
from .model_cases import ModelInstance
from .onnx_graph import build_model
from .scenarios import GATES, Case


class Peer:
    """Base adapter. Subclasses set `name` and implement `load` and `build` (layer cases) or
    `build_model` (whole-model cases, bench/model_cases.py), saying which in `builds_layers`
    and `builds_models`."""

    name = ""
    version = ""
    builds_layers = True
    builds_models = False

    def load(self) -> None:
        """Import the peer's modules; raises (ImportError, ...) when the peer is unavailable."""

    def thread_note(self, threads: int) -> str | None:
        """A reason not to run at `threads` threads, or None."""
        return None

    def enter(self, threads: int) -> None:
        """Apply process-wide thread settings before a pass at `threads` threads."""

    def build(self, case: Case, threads: int) -> Instance:
        """Set the peer up for `case` (weights copied, thread count applied)."""
        raise NotImplementedError

    def build_model(self, case: Any, threads: int) -> Instance:
        """Set the peer up for a whole-model case (a `model_cases.ModelCase`): its model file
        loaded, thread count applied; the instance's output is a list of arrays."""
        raise NotImplementedError

    def close(self) -> None:
        """Release process-wide resources (worker processes)."""


def _layer_kwargs(cell: str) -> dict[str, Any]:
    return {"reset_after": True} if cell == "GRU" else {}


# ----------------------------------------------------------------------------- rnnkit
class RnnkitPeer(Peer):
    """rnnkit's own layers, called as a user would: `layer(x)`, stateful for streaming."""

    name = "rnnkit"

    def load(self) -> None:
        """Import rnnkit."""
        import rnnkit

        self.rnnkit = rnnkit
        self.version = f"{rnnkit.__version__} ({rnnkit.active_isa()})"
        self.set_threads = getattr(rnnkit, "set_num_threads", None)
        get_threads = getattr(rnnkit, "get_num_threads", None)
        self.saved_threads = get_threads() if get_threads is not None else None

    def thread_note(self, threads: int) -> str | None:
        """Without `rnnkit.set_num_threads` only the 1-thread row is run."""
        if self.set_threads is None and threads > 1:
            return "rnnkit has no set_num_threads(): 2-thread row not run"
        return None

    def enter(self, threads: int) -> None:
        """`rnnkit.set_num_threads(threads)` when it exists."""
        if self.set_threads is not None:
            self.set_threads(threads)

    unroll = False

    def build(self, case: Case, threads: int) -> Instance:
        """`rnnkit.<Cell>(units, return_sequences=True[, stateful=True])` with the weights."""
        stream = case.scenario.stream
        layer = getattr(self.rnnkit, case.cell)(
            case.units, return_sequences=True, stateful=stream, unroll=self.unroll,
            **_layer_kwargs(case.cell)
        )
        layer.build(case.x.shape)
        layer.set_weights(list(case.weights))
        note = "" if self.set_threads is not None else "no set_num_threads(): default threading"
        return Instance(case, layer, layer.reset_states if stream else None, note)

    builds_models = True

    def build_model(self, case: Any, threads: int) -> Instance:
        """`rnnkit.load_keras(path)`, called as `model(x)` (the instance's `run` is the model)."""
        return ModelInstance(case, self.rnnkit.load_keras(case.spec.path))

    def close(self) -> None:
        """Restore rnnkit's thread count."""
        if self.set_threads is not None and self.saved_threads is not None:
            self.set_threads(self.saved_threads)


class RnnkitUnrollPeer(RnnkitPeer):
    """rnnkit with `unroll=True`: every step's input projection computed before the loop (memory
    grows with the timesteps). Not a competitor: the summary compares rnnkit (`unroll=False`,
    bounded memory) with it, against the target of staying within 10 % (bench/README.md)."""

    name = "rnnkit-unroll"
    unroll = True
    builds_models = False  # a loaded model keeps the file's unroll setting


# ----------------------------------------------------------------------------- NumPy loop
def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def numpy_step(cell: str, weights: tuple[np.ndarray, ...]) -> Callable[..., list[np.ndarray]]:
    """One float32 step `x_t @ W + h @ U + b` and the gate math; returns the new states."""
    kernel, recurrent, bias = weights
    h_units = recurrent.shape[0]

    if cell == "SimpleRNN":
        return lambda xt, h: [np.tanh(xt @ kernel + h @ recurrent + bias)]
    if cell == "LSTM":

        def lstm(xt: np.ndarray, h: np.ndarray, c: np.ndarray) -> list[np.ndarray]:
            z = xt @ kernel + h @ recurrent + bias
            i, f = _sigmoid(z[:, :h_units]), _sigmoid(z[:, h_units : 2 * h_units])
            g, o = np.tanh(z[:, 2 * h_units : 3 * h_units]), _sigmoid(z[:, 3 * h_units :])
            c = f * c + i * g
            return [o * np.tanh(c), c]

        return lstm
    b_in, b_rec = bias[0], bias[1]

    def gru(xt: np.ndarray, h: np.ndarray) -> list[np.ndarray]:
        xw = xt @ kernel + b_in
        hu = h @ recurrent + b_rec
        zr = _sigmoid(xw[:, : 2 * h_units] + hu[:, : 2 * h_units])
        z, r = zr[:, :h_units], zr[:, h_units:]
        hh = np.tanh(xw[:, 2 * h_units :] + r * hu[:, 2 * h_units :])
        return [z * h + (1.0 - z) * hh]

    return gru


class NumpyPeer(Peer):
    """A plain per-step NumPy loop in float32 (the floor any library must beat)."""

    name = "numpy"

    def load(self) -> None:
        """NumPy is always there."""
        self.version = np.__version__

    def build(self, case: Case, threads: int) -> Instance:
        """The loop over timesteps; the state is carried between calls when streaming."""
        step = numpy_step(case.cell, case.weights)
        n_states = 2 if case.cell == "LSTM" else 1
        units = case.units

        def zeros(batch: int) -> list[np.ndarray]:
            return [np.zeros((batch, units), np.float32) for _ in range(n_states)]

        if not case.scenario.stream:

            def run(x: np.ndarray) -> np.ndarray:
                states = zeros(x.shape[0])
                out = np.empty((x.shape[0], x.shape[1], units), np.float32)
                for t in range(x.shape[1]):
                    states = step(x[:, t], *states)
                    out[:, t] = states[0]
                return out

            return Instance(case, run)
        carried = zeros(case.scenario.batch)

        def run_step(x: np.ndarray) -> np.ndarray:
            carried[:] = step(x[:, 0], *carried)
            return carried[0]

        def reset() -> None:
            carried[:] = zeros(case.scenario.batch)

        return Instance(case, run_step, reset)


# ----------------------------------------------------------------------------- PyTorch
class TorchPeer(Peer):
    """`torch.nn.RNN/LSTM/GRU` (batch_first) under `torch.inference_mode()`."""

    name = "torch"

    def load(self) -> None:
        """Import torch."""
        import torch

        self.torch = torch
        self.version = torch.__version__
        self.saved_threads = torch.get_num_threads()

    def close(self) -> None:
        """Restore torch's thread count."""
        self.torch.set_num_threads(self.saved_threads)

    def enter(self, threads: int) -> None:
        """`torch.set_num_threads(threads)`."""
        self.torch.set_num_threads(threads)

    def build(self, case: Case, threads: int) -> Instance:
        """Keras -> torch: transposed kernels, GRU gates z, r, h -> r, z, n, biases split."""
        torch = self.torch
        self.torch.set_num_threads(threads)
        kernel, recurrent, bias = case.weights
        units, dim = case.units, kernel.shape[0]
        module = {"SimpleRNN": torch.nn.RNN, "LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}[
            case.cell](dim, units, batch_first=True)
        b_ih, b_hh = (bias[0], bias[1]) if case.cell == "GRU" else (bias, np.zeros_like(bias))
        order = [1, 0, 2] if case.cell == "GRU" else list(range(GATES[case.cell]))

        def torch_layout(m: np.ndarray) -> Any:
            blocks = [m[..., k * units : (k + 1) * units] for k in order]
            return torch.from_numpy(np.ascontiguousarray(np.concatenate(blocks, -1).T))

        with torch.no_grad():
            module.weight_ih_l0.copy_(torch_layout(kernel))
            module.weight_hh_l0.copy_(torch_layout(recurrent))
            module.bias_ih_l0.copy_(torch_layout(b_ih))
            module.bias_hh_l0.copy_(torch_layout(b_hh))
        module.eval()
        if not case.scenario.stream:

            @torch.inference_mode()
            def run(x: np.ndarray) -> Any:
                return module(torch.from_numpy(x))[0]

            return Instance(case, run)
        state: list[Any] = [None]

        @torch.inference_mode()
        def run_step(x: np.ndarray) -> Any:
            y, state[0] = module(torch.from_numpy(x), state[0])
            return y

        def reset() -> None:
            state[0] = None  # torch's zero initial state

        return Instance(case, run_step, reset)


# ----------------------------------------------------------------------------- ONNX peers
def _onnx_io(case: Case) -> tuple[bytes, Callable[[np.ndarray], np.ndarray],
                                    Callable[[np.ndarray], np.ndarray], list[str]]:
    """Model bytes, input and output reshapers, and the state input names of a case."""
    s = case.scenario
    steps = 1 if s.stream else s.steps
    model = build_model(case.cell, case.weights, s.batch, steps, s.stream)
    names = ["h0", "c0"] if case.cell == "LSTM" else ["h0"]
    if s.batch == 1:  # time-major graph: (1, T, D) and (T, 1, D) are the same memory
        return model, (lambda x: x.reshape(x.shape[1], 1, x.shape[2])), \
            (lambda y: y.reshape(1, y.shape[0], y.shape[-1])), names
    return model, (lambda x: x), (lambda y: y), names


class OnnxRuntimePeer(Peer):
    """ONNX Runtime running the ONNX RNN/LSTM/GRU op (weights pre-packed at session creation)."""

    name = "onnxruntime"

    def load(self) -> None:
        """Import onnx and onnxruntime."""
        import onnx  # noqa: F401
        import onnxruntime

        self.ort = onnxruntime
        self.version = onnxruntime.__version__

    def build(self, case: Case, threads: int) -> Instance:
        """A session with `intra_op_num_threads=threads`, CPU provider, sequential."""
        ort = self.ort
        model, x_in, y_out, names = _onnx_io(case)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        if not case.scenario.stream:
            return Instance(case, lambda x: y_out(session.run(["y"], {"x": x_in(x)})[0]))
        feed: dict[str, np.ndarray] = {}

        def reset() -> None:
            for n in names:
                feed[n] = np.zeros((1, case.scenario.batch, case.units), np.float32)

        def run_step(x: np.ndarray) -> np.ndarray:
            feed["x"] = x_in(x)
            y, *states = session.run(None, feed)
            feed.update(zip(names, states))
            return y_out(y)

        reset()
        return Instance(case, run_step, reset)


class OpenVinoPeer(Peer):
    """OpenVINO (CPU plugin) running the same ONNX graph, f32 inference precision forced."""

    name = "openvino"

    def load(self) -> None:
        """Import onnx and openvino."""
        import onnx  # noqa: F401
        import openvino

        self.ov = openvino
        self.core = openvino.Core()
        self.version = openvino.__version__.split("-")[0]

    def build(self, case: Case, threads: int) -> Instance:
        """`compile_model(..., INFERENCE_NUM_THREADS=threads, INFERENCE_PRECISION_HINT=f32)`."""
        model_bytes, x_in, y_out, names = _onnx_io(case)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.onnx")
            with open(path, "wb") as f:
                f.write(model_bytes)
            model = self.core.read_model(path)
        config = {
            "INFERENCE_NUM_THREADS": threads,
            "INFERENCE_PRECISION_HINT": "f32",
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
        }
        compiled = self.core.compile_model(model, "CPU", config)
        precision = str(compiled.get_property("INFERENCE_PRECISION_HINT"))
        note = "" if precision.endswith("f32") else f"precision {precision}"
        request = compiled.create_infer_request()
        if not case.scenario.stream:

            def run(x: np.ndarray) -> np.ndarray:
                result = request.infer({"x": x_in(x)}, share_inputs=True, share_outputs=True)
                return y_out(result[0])

            return Instance(case, run, note=note)
        feed: dict[str, np.ndarray] = {}

        def reset() -> None:
            for n in names:
                feed[n] = np.zeros((1, case.scenario.batch, case.units), np.float32)

        def run_step(x: np.ndarray) -> np.ndarray:
            feed["x"] = x_in(x)
            result = request.infer(feed, share_inputs=True)
            feed.update(zip(names, (result[i] for i in range(1, 1 + len(names)))))
            return y_out(result[0])

        reset()
        return Instance(case, run_step, reset, note=note)
