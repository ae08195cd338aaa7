"""rnnkit.Sequential: a linear stack of layers run in order, masks handed on as Keras does (a
recurrent layer consumes the mask; it passes it on when it returns sequences, and drops it
otherwise)."""

from __future__ import annotations

from collections.abc import Sequence as SequenceABC
from typing import Any, Callable

import numpy as np

from .._arrays import as_mask, describe
from ..layers.core import InputLayer, ModelLayer, Shape
from ..layers.recurrent.bidirectional import Bidirectional
from ..layers.recurrent.rnn import RNN
from ..layers.symbolic import SymbolicTensor, is_symbolic, symbolic_call
from .blas_threads import single_threaded_blas
from .container import LayerContainer
from .functional import Model
from .profiling import Profiled
from .progress import batches_with_progress
from .summary import format_shape, summary_table


# --------------------------------------------------------------------------- recurrent helpers
def is_recurrent(layer: Any) -> bool:
    return isinstance(layer, (RNN, Bidirectional))


def output_shape(layer: Any, input_shape: Shape) -> Any:
    """The output shape of any layer a Sequential model may hold."""
    if hasattr(layer, "compute_output_shape"):
        return layer.compute_output_shape(input_shape)
    raise ValueError(f"Cannot compute the output shape of {layer!r}")


def build_layer(layer: Any, input_shape: Shape) -> None:
    """Build `layer` for inputs of `input_shape` unless it is built."""
    if not getattr(layer, "built", False):
        layer.build(input_shape)
        layer.built = True


def apply_layer(
    layer: Any, x: Any, mask: Any, training: bool
) -> tuple[Any, Any]:
    """Run one layer of a model: (outputs, the mask for the next layer), as Keras does."""
    if is_recurrent(layer):
        y = layer(x, mask=mask, training=training)
        if not layer.return_sequences:
            return y, None
        if isinstance(layer, Bidirectional) and layer.merge_mode is None:
            return y, [mask, mask]
        return y, mask
    if isinstance(layer, (ModelLayer, Sequential, Model)):
        return layer._run(x, mask, training)
    # Any other rnnkit layer (or callable object): called on the outputs, drops the mask.
    return layer(x), None


# --------------------------------------------------------------------------- Sequential
class Sequential(Profiled, LayerContainer):
    """A linear stack of layers, as `keras.Sequential`, for inference.

    Layers: any rnnkit recurrent layer (RNN, SimpleRNN, LSTM, GRU, Bidirectional) and the layers
    of this module; optionally an `InputLayer` first, which fixes the input shape (and so lets
    `summary()` show output shapes and `build()` create the weights before the first call).

    `model(x, mask=None)` runs the layers in order, handing each the mask the previous one
    produced (see the module docstring); `predict(x, batch_size=None)` does the same in
    batches. `get_weights()` / `set_weights()` are every layer's weights in order (Keras's
    `model.get_weights()` order), `load_weights(path)` reads a Keras weights file, and
    `summary()` prints the layers; `with model.profile() as times:` times each layer's calls
    (models/profiling.py).
    """

    def __init__(
        self,
        layers: SequenceABC[Any] | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("trainable", None)
        kwargs.pop("dtype", None)
        super().__init__(name=name, **kwargs)
        self._input_layer: InputLayer | None = None
        self._layers: list[Any] = []
        self._build_shape: Shape | None = None
        for layer in layers or []:
            self.add(layer)

    @property
    def dtype(self) -> str:  # type: ignore[override]
        """The first layer's dtype (float32 for an empty model)."""
        layers = self.__dict__.get("_layers") or []
        return str(getattr(layers[0], "dtype", "float32")) if layers else "float32"

    @dtype.setter
    def dtype(self, value: Any) -> None:
        pass  # a model computes in its layers' dtypes

    # ----------------------------------------------------------------- structure
    def add(self, layer: Any) -> None:
        """Append a layer (an `InputLayer`, or the `rnnkit.Input` tensor, only first)."""
        if isinstance(layer, SymbolicTensor) and isinstance(
            getattr(layer.node, "layer", None), InputLayer
        ):
            layer = layer.node.layer
        if isinstance(layer, InputLayer):
            if self._layers or self._input_layer is not None:
                raise ValueError(
                    "An InputLayer can only be the first layer of a Sequential model."
                )
            self._input_layer = layer
            self._build_shape = layer.batch_shape
            return
        if not (callable(layer) and hasattr(layer, "get_weights")):
            raise TypeError(
                "Sequential holds rnnkit layers (recurrent layers, Dense, Embedding, ...). "
                f"Received: {describe(layer)}"
            )
        self._layers.append(layer)

    @property
    def layers(self) -> list[Any]:
        """The layers, in order (without the InputLayer, as in Keras)."""
        return list(self._layers)

    @property
    def input_layer(self) -> InputLayer | None:
        return self._input_layer

    @property
    def input_shape(self) -> Shape | None:
        return self._build_shape

    def build(self, input_shape: SequenceABC[int | None]) -> None:
        """Create every layer's weights for inputs of `input_shape` (batch may be None)."""
        self._build_shape = tuple(input_shape)
        self._build_layers(self._build_shape)

    def _build_layers(self, input_shape: SequenceABC[int | None]) -> None:
        shape: Any = tuple(input_shape)
        for layer in self._layers:
            build_layer(layer, shape)
            shape = output_shape(layer, shape)
            if isinstance(shape, list):
                shape = shape[0]
        self.built = True

    def compute_output_shape(self, input_shape: SequenceABC[int | None]) -> Any:
        shape: Any = tuple(input_shape)
        for layer in self._layers:
            shape = output_shape(layer, shape)
        return shape

    # ----------------------------------------------------------------- call
    def _run(self, inputs: Any, mask: Any, training: bool) -> tuple[Any, Any]:
        x = inputs
        if self._input_layer is not None:
            x = self._input_layer._prepare_inputs(x)
        if not self._layers:
            return x, mask
        if self._build_shape is None and np.ndim(x) > 0:
            self._build_shape = (None, *np.shape(x)[1:])
        if any(not getattr(layer, "built", False) for layer in self._layers):
            self._build_layers((None, *np.shape(x)[1:]))
        last = len(self._layers) - 1
        for index, layer in enumerate(self._layers):
            x, mask = self._timed_call(layer, apply_layer, layer, x, mask, training)
            if isinstance(x, tuple) and index != last:
                raise ValueError(
                    f"Layer {layer.name} returned several outputs (return_state=True or "
                    "merge_mode=None), so it can only be the last layer of a Sequential model."
                )
        return x, mask

    def __call__(self, inputs: Any, mask: Any = None, training: bool = False) -> Any:
        """Run the model on `inputs`; `mask` (optional, boolean (batch, timesteps)) is the
        input mask, combined as Keras does with the masks the layers make."""
        if is_symbolic(inputs, mask):  # a layer of a functional model
            return symbolic_call(self, (inputs,), {"mask": mask})
        if mask is not None:
            shape = np.shape(inputs)
            mask = as_mask(mask, tuple(shape[:2]))
        with single_threaded_blas():
            return self._run(inputs, mask, training)[0]

    def _invoke(self, args: Any, kwargs: dict[str, Any], mask_of: Callable[[Any], Any],
                training: bool) -> tuple[Any, Any]:
        kwargs = dict(kwargs)
        inputs = args[0] if args else kwargs.pop("inputs")
        mask = kwargs.pop("mask", None)
        return self._run(inputs, mask_of(inputs) if mask is None else mask,
                         bool(kwargs.pop("training", None) or training))

    def _symbolic_output_shapes(self, input_shapes: list[Any]) -> Any:
        if not self.built:
            self.build(input_shapes[0])
        shape = self.compute_output_shape(input_shapes[0])
        return [tuple(s) for s in shape] if isinstance(shape, list) else tuple(shape)

    def call(self, inputs: Any, mask: Any = None, training: bool = False) -> Any:
        return self(inputs, mask=mask, training=training)

    def predict(
        self, x: Any, batch_size: int | None = None, verbose: Any = 0, **unused: Any
    ) -> Any:
        """The outputs for `x`, `batch_size` rows at a time (all at once by default);
        `verbose=1` shows a progress bar."""
        parts = [self(chunk[0]) for chunk in batches_with_progress([x], batch_size, verbose)]
        if len(parts) == 1:
            return parts[0]
        if isinstance(parts[0], tuple):
            return tuple(np.concatenate(p, axis=0) for p in zip(*parts))
        return np.concatenate(parts, axis=0)

    # ----------------------------------------------------------------- describe
    def summary(self, print_fn: Callable[[str], Any] | None = None, line_length: int = 80) -> str:
        """Print (with `print_fn`, default print) and return a table of the layers: name and
        type, output shape (when the input shape is known) and number of weights."""
        rows = []
        shape: Any = self._build_shape
        for layer in self._layers:
            if shape is not None:
                try:
                    shape = output_shape(layer, shape)
                except Exception:  # a summary shows "?" rather than failing
                    shape = None
            rows.append((layer, format_shape(shape)))
            if isinstance(shape, list):
                shape = shape[0]
        return summary_table(self, rows, print_fn, line_length)

    def get_config(self) -> dict[str, Any]:
        layers = ([self._input_layer] if self._input_layer is not None else []) + self._layers
        return {"name": self.name, "layers": layers, "build_input_shape": self._build_shape}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Sequential:
        model = cls(name=config.get("name"))
        for layer in config.get("layers", []):
            model.add(layer)
        if config.get("build_input_shape") is not None and not model.built:
            model.build(config["build_input_shape"])
        return model

    def __repr__(self) -> str:
        return f"<Sequential name={self.name}, layers={[lay.name for lay in self._layers]}>"
