"""Whole-model cases: a saved Keras model (.keras or .h5), the random inputs every peer gets,
and the check of a peer's outputs against rnnkit's.

Inputs are built from the model's inputs as rnnkit loads them: float inputs standard normal;
id inputs (an integer dtype, or read by an `Embedding`) uniform in [1, vocab) with `vocab` the
`input_dim` of the first Embedding reading the input ([0, 100) when none does); None dimensions
(after the batch) become `steps`. Nothing here imports Keras: the Keras peers load the file in
their worker (keras_jax.py).
"""

from __future__ import annotations

import os
import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..io.keras import load_keras
from ..layers.core import Embedding
from ..layers.symbolic import flatten
from ..models import Model, Sequential
from .instance import Instance, Run, as_float64
from .measure import Budget, Timing, time_callable

# A peer's outputs pass when allclose(peer, rnnkit, rtol=MODEL_TOLERANCE,
# atol=MODEL_TOLERANCE * max|rnnkit|) holds for every output: 1e-4 relative, the absolute part
# scaled to the output so that entries near zero (float32 rounding ~1e-7 of the scale) pass.
MODEL_TOLERANCE = 1e-4
DEFAULT_VOCAB = 100  # ids drawn from [0, 100) for an integer input no Embedding reads


@dataclass(frozen=True)
class InputSpec:
    """One model input: shape with the batch (None: free), dtype, and for ids the vocabulary."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str
    ids: bool = False  # integer ids (an integer dtype, or read by an Embedding)
    vocab: int | None = None  # the first reading Embedding's input_dim (None: none reads it)


@dataclass(frozen=True)
class ModelSpec:
    """A model file to benchmark, its row label and its inputs. `padding`: id inputs get
    trailing zeros (random lengths from half the steps to all), for a model masking id 0."""

    name: str
    path: str
    inputs: tuple[InputSpec, ...]
    padding: bool = False

    def batches(self, wanted: Sequence[int]) -> list[int]:
        """The batch sizes to run: the model's own when its inputs fix it, else `wanted`."""
        fixed = {s.shape[0] for s in self.inputs if s.shape and s.shape[0] is not None}
        return sorted(fixed) if fixed else list(wanted)

    @property
    def has_steps(self) -> bool:
        """Whether some input has a free dimension after the batch (filled with `steps`)."""
        return any(d is None for s in self.inputs for d in s.shape[1:])


@dataclass(frozen=True)
class ModelCase:
    """A model at one batch size and number of steps, with its inputs (in the model's input
    order). Pickled to the Keras workers, which load `spec.path` themselves."""

    spec: ModelSpec
    batch: int
    steps: int
    inputs: tuple[np.ndarray, ...]

    @property
    def label(self) -> str:
        """The row's scenario: `name-b<batch>[-t<steps>]`."""
        steps = f"-t{self.steps}" if self.spec.has_steps else ""
        return f"{self.spec.name}-b{self.batch}{steps}"

    @property
    def args(self) -> Any:
        """What a model is called on: the array, or the list of arrays for several inputs."""
        return self.inputs[0] if len(self.inputs) == 1 else list(self.inputs)


class ModelInstance(Instance):
    """A peer ready to run a model case: `run(case.args)` is the timed call."""

    case: ModelCase  # type: ignore[assignment]

    def __init__(self, case: ModelCase, run: Run, note: str = "") -> None:
        super().__init__(case, run, None, note)  # type: ignore[arg-type]

    def output(self) -> list[np.ndarray]:  # type: ignore[override]
        """Every output of one call, float64, in a fixed order (dicts by key)."""
        return flat_outputs(self.run(self.case.args))

    def measure(self, budget: Budget, calls: int = 0) -> Timing:
        """Time `run(case.args)` (see `measure.time_callable`)."""
        run, args = self.run, self.case.args
        return time_callable(lambda: run(args), budget, calls)


def flat_outputs(y: Any) -> list[np.ndarray]:
    """A model's outputs (an array, nested lists and tuples, dicts) as float64 arrays."""
    if isinstance(y, dict):
        return [a for key in sorted(y) for a in flat_outputs(y[key])]
    if isinstance(y, (list, tuple)):
        return [a for item in y for a in flat_outputs(item)]
    return [as_float64(y)]


def relative_error(outputs: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> float:
    """max |out - ref| / (|ref| + max|ref|) over every output (inf on a shape or count mismatch
    or a non-finite value): at most MODEL_TOLERANCE is exactly the allclose of MODEL_TOLERANCE.
    """
    if len(outputs) != len(reference):
        return float("inf")
    worst = 0.0
    for out, ref in zip(outputs, reference):
        out = np.asarray(out, dtype=np.float64)
        if out.shape != ref.shape or not np.all(np.isfinite(out)):
            return float("inf")
        if ref.size:
            scale = max(float(np.max(np.abs(ref))), np.finfo(np.float64).tiny)
            worst = max(worst, float(np.max(np.abs(out - ref) / (np.abs(ref) + scale))))
    return worst


# ----------------------------------------------------------------------------- inputs
def _first_embedding_dim(layer: Any) -> int | None:
    """The `input_dim` of `layer` if it is an Embedding, or of a nested model's first one."""
    if isinstance(layer, Embedding):
        return int(layer.input_dim)
    if isinstance(layer, Sequential):
        return _first_embedding_dim(layer.layers[0]) if layer.layers else None
    if isinstance(layer, Model):
        return _embedding_dims(layer)[0]
    return None


def _embedding_dims(model: Any) -> list[int | None]:
    """Per model input, the input_dim of the first Embedding reading it, following the graph
    breadth first from the input (a layer between them, e.g. a Reshape, is looked through)."""
    if isinstance(model, Sequential):
        return [_first_embedding_dim(model.layers[0]) if model.layers else None]
    readers: dict[int, list[Any]] = {}
    for node in model._nodes:
        for tensor in node.inputs:
            readers.setdefault(id(tensor), []).append(node)
    dims: list[int | None] = []
    for tensor in model.inputs:
        found, queue, seen = None, deque([tensor]), set()
        while queue and found is None:
            for node in readers.get(id(queue.popleft()), []):
                if id(node) in seen:
                    continue
                seen.add(id(node))
                found = _first_embedding_dim(node.layer)
                if found is not None:
                    break
                queue.extend(flatten(node.outputs))
        dims.append(found)
    return dims


def input_specs(model: Any) -> tuple[InputSpec, ...]:
    """The inputs of an rnnkit Model or Sequential (a Sequential needs a known input shape)."""
    if isinstance(model, Sequential):
        shape = model.input_shape
        if shape is None:
            raise ValueError("the Sequential model has no input shape (no InputLayer and not "
                             "built): its inputs cannot be made")
        layer = model.input_layer
        names = [layer.name if layer is not None else "input"]
        shapes = [tuple(shape)]
        dtypes = [layer.input_dtype if layer is not None else "float32"]
    else:
        names = list(model.input_names)
        shapes = [tuple(t.shape) for t in model.inputs]
        dtypes = [str(t.dtype) for t in model.inputs]
    specs = []
    for name, shape, dtype, vocab in zip(names, shapes, dtypes, _embedding_dims(model)):
        ids = np.issubdtype(np.dtype(dtype), np.integer) or vocab is not None
        specs.append(InputSpec(name, shape, dtype, ids, vocab))
    return tuple(specs)


def model_spec(name: str, path: str | os.PathLike[str], padding: bool = False) -> ModelSpec:
    """Load `path` with `rnnkit.load_keras` and describe its inputs."""
    path = os.path.abspath(os.fspath(path))  # the Keras workers open it too
    return ModelSpec(name, path, input_specs(load_keras(path)), padding)


def make_model_case(spec: ModelSpec, batch: int, steps: int, seed: int = 0) -> ModelCase:
    """Deterministic random inputs for `spec` at `batch` rows and `steps` for free sizes."""
    rng = np.random.default_rng([seed, zlib.crc32(f"{spec.name}/b{batch}/t{steps}".encode())])
    arrays = []
    for s in spec.inputs:
        shape = tuple(batch if k == 0 else steps if d is None else d
                      for k, d in enumerate(s.shape))
        if not s.ids:
            arrays.append(rng.standard_normal(shape).astype(s.dtype))
            continue
        low, high = (1, s.vocab) if s.vocab is not None else (0, DEFAULT_VOCAB)
        ids = rng.integers(low, max(high, low + 1), shape)
        if spec.padding and len(shape) >= 2:  # trailing padding: row lengths in [T/2, T]
            lengths = rng.integers(max(1, shape[1] // 2), shape[1] + 1, shape[0])
            ids[np.arange(shape[1])[None, :] >= lengths[:, None]] = 0  # (B, T) of (B, T, ...)
        arrays.append(ids.astype(s.dtype))
    return ModelCase(spec, batch, steps, tuple(arrays))
