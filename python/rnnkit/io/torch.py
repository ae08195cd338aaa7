"""PyTorch recurrent modules into rnnkit: `from_torch(module)`.

`torch.nn.RNN` (tanh or relu), `LSTM` and `GRU`, with any `num_layers`, `bidirectional`,
`batch_first` and `bias`, become a `TorchRNN`: an `rnnkit.Sequential` of rnnkit recurrent layers
(one per torch layer, `Bidirectional` when the module is) that is called like the module and
returns the same numbers:

    out, h_n = converted(x)                  # RNN, GRU (torch: out, h_n = module(x))
    out, (h_n, c_n) = converted(x, (h0, c0))  # LSTM
    out = converted.predict(x)               # the output sequence alone

`torch.nn.RNNCell`, `LSTMCell` and `GRUCell` become the rnnkit cells.

The weights map onto Keras's layout: kernels are the transposed `weight_ih` / `weight_hh`;
LSTM gates i, f, g, o are Keras's i, f, c, o and the bias is `b_ih + b_hh`; GRU gates r, z, n
become Keras's z, r, h and the GRU is `reset_after=True` with bias rows `[b_ih; b_hh]`.

Refused: `proj_size > 0` (an LSTM with a projection of h: rnnkit's LSTM has none), and
parameters that are not float32/float64 (pass `dtype=` to convert them). `dropout` between
layers is a training-time operation: the converted model computes what the module computes
in `eval()` mode, which is what inference runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._arrays import as_float_array, as_mask, standardize_dtype
from ..layers.recurrent import Bidirectional, registry
from ..models.sequential import Sequential

__all__ = ["TorchRNN", "from_torch"]

# Each torch mode as a built-in cell (its C++ table name) and the cell arguments that make it
# compute what torch computes.
_MODES: dict[str, tuple[str, dict[str, Any]]] = {
    "RNN_TANH": ("simple_rnn", {"activation": "tanh"}),
    "RNN_RELU": ("simple_rnn", {"activation": "relu"}),
    "LSTM": ("lstm", {"unit_forget_bias": False}),
    "GRU": ("gru", {"reset_after": True}),
}
# The weights are copied right after: no initializer needs to run.
_NO_INITIALIZERS = {
    "kernel_initializer": "zeros",
    "recurrent_initializer": "zeros",
    "bias_initializer": "zeros",
}


def _numpy(tensor: Any) -> np.ndarray:
    tensor = tensor.detach().cpu()
    if not tensor.dtype.is_floating_point or tensor.dtype.itemsize < 4:
        tensor = tensor.float()  # float16/bfloat16 (refused unless `dtype` was given)
    return tensor.numpy()


def _gate_order(mode: str, width: int) -> np.ndarray:
    """Row order taking torch's gate blocks to Keras's: GRU r, z, n -> z, r, h."""
    if mode != "GRU":
        return np.arange(width)
    h = width // 3
    return np.concatenate([np.arange(h, 2 * h), np.arange(0, h), np.arange(2 * h, 3 * h)])


def _keras_weights(
    mode: str, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray | None, b_hh: np.ndarray | None
) -> list[np.ndarray]:
    order = _gate_order(mode, w_ih.shape[0])
    weights = [w_ih[order].T, w_hh[order].T]
    if b_ih is not None:
        if mode == "GRU":
            weights.append(np.stack([b_ih[order], b_hh[order]]))
        else:
            weights.append(b_ih + b_hh)
    return [np.ascontiguousarray(w) for w in weights]


def _dtype_of(module: Any, dtype: Any) -> str:
    if dtype is not None:
        return standardize_dtype(dtype)
    parameter = next(iter(module.parameters()), None)
    name = "float32" if parameter is None else str(parameter.dtype).replace("torch.", "")
    if name not in ("float32", "float64"):
        raise ValueError(
            f"{type(module).__name__} has {name} parameters; rnnkit computes in float32 or "
            "float64. Pass dtype='float32' (or 'float64') to convert them."
        )
    return name


def _mode(module: Any) -> str:
    mode = getattr(module, "mode", None)
    if mode not in _MODES:
        raise ValueError(f"Unknown recurrent mode {mode!r} of {type(module).__name__}.")
    return mode


def _cell_class(mode: str) -> tuple[type, dict[str, Any]]:
    core_name, arguments = _MODES[mode]
    return registry.cell_named(core_name), {**arguments, **_NO_INITIALIZERS}


def _make_layer(mode: str, units: int, dtype: str, batch_first: bool, **kwargs: Any) -> Any:
    cell_class, arguments = _cell_class(mode)
    return registry.layer_of(cell_class)(
        units,
        return_sequences=True,
        return_state=True,
        time_major=not batch_first,
        zero_output_for_mask=True,
        dtype=dtype,
        **arguments,
        **kwargs,
    )


def from_torch(module: Any, dtype: Any = None) -> Any:
    """Convert a torch.nn.RNN / LSTM / GRU (or RNNCell / LSTMCell / GRUCell) into rnnkit,
    with the same outputs. See the module docstring for what maps to what."""
    try:
        import torch
    except ImportError:  # pragma: no cover - only reachable with a torch-like object
        raise ImportError("from_torch needs PyTorch installed.") from None
    nn = torch.nn
    if isinstance(module, (nn.RNNCell, nn.LSTMCell, nn.GRUCell)):
        return _cell_from_torch(module, _dtype_of(module, dtype))
    if not isinstance(module, (nn.RNN, nn.LSTM, nn.GRU)):
        raise ValueError(
            f"from_torch converts torch.nn.RNN, LSTM and GRU (and RNNCell, LSTMCell, GRUCell). "
            f"Received: {type(module).__name__}"
        )
    mode = _mode(module)
    if getattr(module, "proj_size", 0):
        raise ValueError(
            f"LSTM with proj_size={module.proj_size} is not supported: rnnkit's LSTM has no "
            "projection of its hidden state (h_t = W_hr (o_t * tanh(c_t)))."
        )
    dtype = _dtype_of(module, dtype)
    directions = 2 if module.bidirectional else 1
    layers = []
    for index in range(module.num_layers):
        built = []
        for direction in range(directions):
            suffix = f"_l{index}" + ("_reverse" if direction else "")
            w_ih = _numpy(getattr(module, "weight_ih" + suffix))
            w_hh = _numpy(getattr(module, "weight_hh" + suffix))
            b_ih = _numpy(getattr(module, "bias_ih" + suffix)) if module.bias else None
            b_hh = _numpy(getattr(module, "bias_hh" + suffix)) if module.bias else None
            name = f"{mode.lower()}_{index}"
            if directions == 2:
                name = ("backward_" if direction else "forward_") + name
            layer = _make_layer(
                mode, module.hidden_size, dtype, module.batch_first, use_bias=bool(module.bias),
                go_backwards=bool(direction), name=name,
            )
            layer.build((None, None, w_ih.shape[1]))
            layer.set_weights(_keras_weights(mode, w_ih, w_hh, b_ih, b_hh))
            built.append(layer)
        if directions == 2:
            layers.append(
                Bidirectional(
                    built[0], merge_mode="concat", backward_layer=built[1],
                    name=f"bidirectional_{index}",
                )
            )
        else:
            layers.append(built[0])
    return TorchRNN(
        layers,
        mode=mode,
        input_size=module.input_size,
        hidden_size=module.hidden_size,
        num_layers=module.num_layers,
        bidirectional=bool(module.bidirectional),
        batch_first=bool(module.batch_first),
        name=f"torch_{mode.lower()}",
    )


def _cell_from_torch(module: Any, dtype: str) -> Any:
    mode = {
        "LSTMCell": "LSTM",
        "GRUCell": "GRU",
        "RNNCell": "RNN_TANH" if getattr(module, "nonlinearity", "tanh") == "tanh" else "RNN_RELU",
    }[type(module).__name__ if type(module).__name__ in ("LSTMCell", "GRUCell") else "RNNCell"]
    cell_class, arguments = _cell_class(mode)
    cell = cell_class(module.hidden_size, dtype=dtype, use_bias=bool(module.bias), **arguments)
    cell.build((None, module.input_size))
    bias = (_numpy(module.bias_ih), _numpy(module.bias_hh)) if module.bias else (None, None)
    cell.set_weights(
        _keras_weights(mode, _numpy(module.weight_ih), _numpy(module.weight_hh), *bias)
    )
    return cell


class TorchRNN(Sequential):
    """rnnkit layers standing in for one torch.nn.RNN / LSTM / GRU, called like it.

    `model(input, hx=None, lengths=None)` returns `(output, h_n)`, or `(output, (h_n, c_n))`
    for an LSTM, with torch's shapes: input `(batch, seq, features)` when `batch_first` else
    `(seq, batch, features)` (or unbatched `(seq, features)`), `h_n`/`c_n`
    `(num_layers * directions, batch, hidden_size)`. `lengths` (one per batch row) stands for a
    packed sequence of right-padded rows: the padded steps are skipped, output zeros there, and
    `h_n` is each row's state at its last step, as `pack_padded_sequence` /
    `pad_packed_sequence` give. `predict(input)` returns the output alone. `layers` are plain
    rnnkit layers (`return_sequences=True, return_state=True`).
    """

    def __init__(
        self,
        layers: Any = None,
        mode: str = "LSTM",
        input_size: int | None = None,
        hidden_size: int | None = None,
        num_layers: int = 1,
        bidirectional: bool = False,
        batch_first: bool = False,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(layers, name=name, **kwargs)
        if mode not in _MODES:
            raise ValueError(f"`mode` must be one of {_MODES}. Received: mode={mode!r}")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = int(num_layers)
        self.bidirectional = bool(bidirectional)
        self.batch_first = bool(batch_first)
        if len(self._layers) != self.num_layers:
            raise ValueError(
                f"TorchRNN needs one layer per torch layer: num_layers={self.num_layers}, "
                f"received {len(self._layers)} layers."
            )

    @property
    def _directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _initial_states(self, hx: Any, batch: int, unbatched: bool) -> list[Any] | None:
        if hx is None:
            return None
        if self.mode == "LSTM" and (not isinstance(hx, (list, tuple)) or len(hx) != 2):
            raise ValueError(
                f"`hx` of an LSTM is a pair (h_0, c_0). Received: {type(hx).__name__}"
            )
        parts = list(hx) if self.mode == "LSTM" else [hx]
        expected = (self.num_layers * self._directions, batch, self.hidden_size)
        arrays = []
        for part in parts:
            array = as_float_array(part, self.dtype, "hx")
            if unbatched and array.ndim == 2:
                array = array[:, None, :]
            if array.shape != expected:
                raise ValueError(
                    f"`hx` must have shape {expected if not unbatched else expected[::2]}. "
                    f"Received: {array.shape}"
                )
            arrays.append(array)
        per_layer = []
        for index in range(self.num_layers):
            states = []
            for direction in range(self._directions):
                row = index * self._directions + direction
                states.extend(a[row] for a in arrays)
            per_layer.append(states)
        return per_layer

    def __call__(  # type: ignore[override]
        self, inputs: Any, hx: Any = None, lengths: Any = None
    ) -> Any:
        x = as_float_array(inputs, self.dtype, "input")
        unbatched = x.ndim == 2
        if unbatched:
            x = x[:, None, :] if not self.batch_first else x[None]
        if x.ndim != 3:
            raise ValueError(
                f"`input` must be (batch, seq, features) with batch_first, (seq, batch, features) "
                f"without, or unbatched (seq, features). Received shape {np.shape(inputs)}"
            )
        batch_axis, time_axis = (0, 1) if self.batch_first else (1, 0)
        batch, steps = x.shape[batch_axis], x.shape[time_axis]
        mask = None
        if lengths is not None:
            lengths = np.asarray(lengths).reshape(-1)
            if lengths.shape != (batch,) or lengths.min() < 1 or lengths.max() > steps:
                raise ValueError(
                    f"`lengths` must hold {batch} lengths in [1, {steps}]. Received: {lengths}"
                )
            mask = np.arange(steps)[None, :] < lengths[:, None]
            if not self.batch_first:
                mask = mask.T
            mask = as_mask(mask, mask.shape)
        initial = self._initial_states(hx, batch, unbatched)
        finals_h, finals_c = [], []
        for index, layer in enumerate(self._layers):
            result = layer(
                x, initial_state=None if initial is None else initial[index], mask=mask
            )
            x, states = result[0], list(result[1:])
            per_direction = len(states) // self._directions
            for direction in range(self._directions):
                group = states[direction * per_direction : (direction + 1) * per_direction]
                finals_h.append(group[0])
                if self.mode == "LSTM":
                    finals_c.append(group[1])
        h_n = np.stack(finals_h)
        c_n = np.stack(finals_c) if self.mode == "LSTM" else None
        if unbatched:
            x = x[:, 0] if not self.batch_first else x[0]
            h_n = h_n[:, 0]
            c_n = None if c_n is None else c_n[:, 0]
        return (x, (h_n, c_n)) if self.mode == "LSTM" else (x, h_n)

    def _run(self, inputs: Any, mask: Any, training: bool) -> tuple[Any, Any]:
        if mask is not None:
            raise ValueError("TorchRNN takes `lengths`, not a mask.")
        return self(inputs)[0], None

    def predict(
        self, x: Any, batch_size: int | None = None, verbose: Any = 0, **unused: Any
    ) -> Any:
        """The output sequence (torch's `output`) for `x`, `batch_size` rows at a time."""
        if batch_size is None or not self.batch_first:
            return self(x)[0]
        parts = [self(x[i : i + batch_size])[0] for i in range(0, np.shape(x)[0], batch_size)]
        return np.concatenate(parts, axis=0)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "mode": self.mode,
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "bidirectional": self.bidirectional,
            "batch_first": self.batch_first,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TorchRNN:
        config = dict(config)
        layers = config.pop("layers", [])
        shape = config.pop("build_input_shape", None)
        model = cls(layers, **config)
        if shape is not None:
            model.build(shape)
        return model
