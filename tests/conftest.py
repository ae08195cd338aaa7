"""Shared helpers for the rnnkit correctness tests.

Nothing here imports Keras or rnnkit at module level: ``tests/make_golden.py`` imports this
module with Keras only, ``tests/test_golden.py`` runs with rnnkit only.

Layers are described by small JSON-able *specs* so that the very same description builds a
Keras layer (``build_layer(keras.layers, spec, ...)``) and the matching rnnkit layer
(``build_layer(rnnkit, spec, ...)``); the golden file stores the spec as JSON.

Spec forms::

    {"layer": "LSTM", "units": 4, "kwargs": {...}}            # SimpleRNN / LSTM / GRU
    {"layer": "RNN", "cells": [{"cell": "GRUCell", "units": 3, "kwargs": {...}}, ...],
     "wrap": "cell" | "list" | "stacked", "kwargs": {...}}     # RNN(cell) / RNN([..]) /
                                                               # RNN(StackedRNNCells([..]))
    {"layer": "Bidirectional", "inner": <spec>, "backward": <spec> | None,
     "merge_mode": "concat"}
"""

import copy
import os
import zlib

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "numpy")

# float32: every comparison in this suite is on short sequences (T <= 7) except the
# long-sequence case (see there); 1e-5 leaves ~2 decimal digits of headroom over float32's
# 6e-8 unit roundoff times the handful of accumulated steps and matrix products.
# float64: same reasoning with 1.1e-16 roundoff.
TOLERANCES = {
    "float32": {"rtol": 1e-5, "atol": 1e-5},
    "float64": {"rtol": 1e-10, "atol": 1e-10},
}

# rnnkit against rnnkit (another execution path, the NumPy loop) or against a float64 NumPy
# statement of the same formulas: only the order of operations differs, so float64 agrees to
# 1e-12 (Keras computes some terms differently, hence TOLERANCES' 1e-10 against it).
PATH_TOLERANCES = {
    "float32": {"rtol": 1e-5, "atol": 1e-5},
    "float64": {"rtol": 1e-12, "atol": 1e-12},
}

DTYPES = ("float32", "float64")

# Every activation name rnnkit takes for `activation`, Keras 3's (None means linear).
ACTIVATIONS = (
    "tanh",
    "sigmoid",
    "hard_sigmoid",
    "relu",
    "linear",
    None,
    "elu",
    "selu",
    "softsign",
    "softplus",
    "swish",
    "silu",
    "gelu",
    "exponential",
    "hard_silu",
)

# The four recurrent cells of the parity grid: name -> single-layer spec.
CELL_SPECS = {
    "simple_rnn": {"layer": "SimpleRNN", "units": 4, "kwargs": {}},
    "lstm": {"layer": "LSTM", "units": 4, "kwargs": {}},
    "gru_reset_after": {"layer": "GRU", "units": 4, "kwargs": {"reset_after": True}},
    "gru_reset_before": {"layer": "GRU", "units": 4, "kwargs": {"reset_after": False}},
}

CELL_CLASS_FOR_LAYER = {"SimpleRNN": "SimpleRNNCell", "LSTM": "LSTMCell", "GRU": "GRUCell"}

# ---------------------------------------------------------------------------------------
# rnnkit's built-in recurrent layers, for the tests that run every one of them
# ---------------------------------------------------------------------------------------

# Arguments of a built-in layer that select other kernel code than its defaults, by test
# name: (layer class name, keyword arguments). builtin_layers() lists them after the cells.
KERNEL_VARIANTS = {"gru_reset_before": ("GRU", {"reset_after": False})}


def builtin_layers(variants=False):
    """Every built-in recurrent layer of rnnkit: test name -> (layer class name, keyword
    arguments).

    One entry per cell of rnnkit's registry, named by the cell's C++ table name ("simple_rnn",
    "lstm", "gru", ...) with its default arguments, then with ``variants`` the
    ``KERNEL_VARIANTS``. A new built-in cell is in every test that loops over these without
    a test file edited. Tables of a test module can add their own entries of the same form.
    """
    from rnnkit.layers.recurrent import registry

    layers = {
        cell.CORE_NAME: (registry.layer_of(cell).__name__, {})
        for cell in registry.cell_classes().values()
    }
    if variants:
        layers.update(KERNEL_VARIANTS)
    return layers


def _layer_entry(kind):
    return builtin_layers(variants=True)[kind] if isinstance(kind, str) else kind


def recurrent_layer(kind, *args, **kwargs):
    """The rnnkit layer of ``kind``: a name of ``builtin_layers(variants=True)`` or a
    ``(layer class name, keyword arguments)`` entry; ``kwargs`` add to (or override) the
    entry's arguments."""
    from rnnkit.layers.recurrent import registry

    class_name, preset = _layer_entry(kind)
    return registry.layer_classes()[class_name](*args, **{**preset, **kwargs})


def recurrent_cell_class(kind):
    """The cell class of the layer ``recurrent_layer(kind, ...)`` makes."""
    from rnnkit.layers.recurrent import registry

    return registry.layer_classes()[_layer_entry(kind)[0]].CELL_CLASS


def recurrent_cell(kind, *args, **kwargs):
    """The rnnkit cell of the layer ``recurrent_layer(kind, ...)`` would make."""
    preset = _layer_entry(kind)[1]
    return recurrent_cell_class(kind)(*args, **{**preset, **kwargs})


def state_sizes(kind, units):
    """The sizes of the states of a ``kind`` cell of ``units`` units (LSTM: [units, units])."""
    size = recurrent_cell(kind, units).state_size
    return list(size) if isinstance(size, (list, tuple)) else [size]
CELL_ONLY_KWARGS = (
    "activation",
    "recurrent_activation",
    "use_bias",
    "kernel_initializer",
    "recurrent_initializer",
    "bias_initializer",
    "unit_forget_bias",
    "reset_after",
    "dropout",
    "recurrent_dropout",
    "seed",
)


def import_keras():
    """Import Keras 3 with the NumPy backend, computing float64 in float64.

    Keras's type promotion on every backend but TensorFlow demotes 64-bit results to 32
    bits to mimic JAX's default (``BIT64_TO_BIT32_DTYPE`` in
    keras/src/backend/common/dtypes.py): with the NumPy backend, ``ops.matmul`` and
    ``ops.tanh`` of float64 arrays return float32, so a ``dtype="float64"`` layer computes
    in float32 and casts at the end (errors ~1e-7). TensorFlow-backend Keras keeps float64,
    and so must rnnkit, so the reference disables the demotion of float64 (float32 runs are
    unaffected). ``test_keras_reference_computes_in_float64`` checks that this holds.
    """
    os.environ.setdefault("KERAS_BACKEND", "numpy")
    import keras
    from keras.src.backend.common import dtypes

    assert keras.backend.backend() == "numpy", keras.backend.backend()
    dtypes.BIT64_TO_BIT32_DTYPE["float64"] = "float64"
    return keras


# ---------------------------------------------------------------------------------------
# seeds, inputs, masks
# ---------------------------------------------------------------------------------------


def seed_for(*parts):
    """A fixed seed derived from a case description (stable across runs and machines)."""
    return zlib.crc32(repr(parts).encode())


@pytest.fixture
def rng(request):
    """A generator seeded from the test's node id: a fixed seed per test case."""
    return np.random.default_rng(seed_for(request.node.nodeid))


def random_inputs(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def random_mask(rng, batch, timesteps):
    """A boolean (batch, timesteps) mask with the hard rows built in.

    Row 0 is fully masked; rows 1 and 3 have their first step masked, rows 2 and 3 their
    last step; other steps are random (70% kept), and every row but row 0 keeps its middle
    step. With batch 1 the single row has its first and last steps masked.
    """
    mask = rng.random((batch, timesteps)) < 0.7
    mask[:, timesteps // 2] = True
    if batch == 1:
        mask[0, [0, -1]] = False
        return mask
    mask[0, :] = False
    for row, step in ((1, 0), (2, -1), (3, 0), (3, -1)):
        if row < batch:
            mask[row, step] = False
    return mask


# ---------------------------------------------------------------------------------------
# comparisons
# ---------------------------------------------------------------------------------------


def flatten(value):
    """Flatten nested lists/tuples of arrays, depth first (Keras tree order)."""
    if isinstance(value, (list, tuple)):
        return [leaf for item in value for leaf in flatten(item)]
    return [value]


def structure(value):
    """The nesting of a result, ignoring the list/tuple distinction."""
    if isinstance(value, (list, tuple)):
        return [structure(item) for item in value]
    return "array"


def assert_results_close(
    actual, expected, dtype, label="", check_structure=True, tolerances=TOLERANCES
):
    """Compare every returned array of a layer call: nesting (unless ``check_structure`` is
    False: then the arrays in depth-first order), type, dtype, shape, values within the
    dtype's ``tolerances``."""
    if check_structure:
        assert structure(actual) == structure(expected), (
            f"{label}: result structure {structure(actual)} != expected {structure(expected)}"
        )
    actual_leaves, expected_leaves = flatten(actual), flatten(expected)
    assert len(actual_leaves) == len(expected_leaves), label
    for i, (got, want) in enumerate(zip(actual_leaves, expected_leaves)):
        assert isinstance(got, np.ndarray), f"{label} [{i}]: got {type(got).__name__}"
        want = np.asarray(want)
        assert got.dtype == np.dtype(dtype), f"{label} [{i}]: dtype {got.dtype} != {dtype}"
        assert got.shape == want.shape, f"{label} [{i}]: shape {got.shape} != {want.shape}"
        np.testing.assert_allclose(
            got, want, **tolerances[dtype], err_msg=f"{label} [returned array {i}]"
        )


def assert_arrays_equal(actual, expected, label=""):
    """Every array of two results (nested lists/tuples, compared depth first) is the same:
    type, dtype, shape and every value (NaN where the other has NaN)."""
    actual_leaves, expected_leaves = flatten(actual), flatten(expected)
    assert len(actual_leaves) == len(expected_leaves), (
        f"{label}: {len(actual_leaves)} arrays, expected {len(expected_leaves)}"
    )
    for i, (got, want) in enumerate(zip(actual_leaves, expected_leaves)):
        assert isinstance(got, np.ndarray), f"{label} [{i}]: got {type(got).__name__}"
        want = np.asarray(want)
        assert got.dtype == want.dtype and got.shape == want.shape, (
            f"{label} [{i}]: {got.dtype}{got.shape} != {want.dtype}{want.shape}"
        )
        np.testing.assert_array_equal(got, want, err_msg=f"{label} [{i}]")


# ---------------------------------------------------------------------------------------
# building layers from specs
# ---------------------------------------------------------------------------------------


def with_kwargs(spec, **kwargs):
    """A copy of a layer spec with extra layer keyword arguments."""
    spec = copy.deepcopy(spec)
    spec.setdefault("kwargs", {}).update(kwargs)
    return spec


def layer_spec_as_rnn(spec, wrap="cell"):
    """SimpleRNN/LSTM/GRU spec -> the equivalent RNN(cell) spec."""
    kwargs = dict(spec.get("kwargs", {}))
    cell_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in CELL_ONLY_KWARGS}
    cell = {"cell": CELL_CLASS_FOR_LAYER[spec["layer"]], "units": spec["units"]}
    cell["kwargs"] = cell_kwargs
    return {"layer": "RNN", "cells": [cell], "wrap": wrap, "kwargs": kwargs}


def build_layer(lib, spec, dtype="float32", is_keras=False):
    """Build the layer a spec describes from ``lib`` (``keras.layers`` or ``rnnkit``)."""
    kind = spec["layer"]
    kwargs = dict(spec.get("kwargs", {}))
    if kind == "Bidirectional":
        inner = build_layer(lib, spec["inner"], dtype, is_keras)
        backward = spec.get("backward")
        if backward is not None:
            backward = build_layer(lib, backward, dtype, is_keras)
        # Keras casts the merged output to the wrapper's own dtype, so the Keras wrapper
        # needs it too; rnnkit's Bidirectional takes its dtype from the wrapped layer.
        extra = {"dtype": dtype} if is_keras else {}
        return lib.Bidirectional(
            inner,
            merge_mode=spec.get("merge_mode", "concat"),
            backward_layer=backward,
            **extra,
        )
    if kind == "RNN":
        cells = [
            getattr(lib, c["cell"])(c["units"], dtype=dtype, **c.get("kwargs", {}))
            for c in spec["cells"]
        ]
        wrap = spec.get("wrap", "cell" if len(cells) == 1 else "list")
        if wrap == "cell":
            (cell,) = cells
        elif wrap == "list" and not is_keras:
            cell = cells
        elif is_keras:
            # Keras's RNN([...]) is RNN(StackedRNNCells([...])), and a StackedRNNCells
            # without a dtype autocasts each step's input to float32: give it the dtype.
            # rnnkit's takes its dtype from its cells.
            cell = lib.StackedRNNCells(cells, dtype=dtype)
        else:
            cell = lib.StackedRNNCells(cells)
        return lib.RNN(cell, dtype=dtype, **kwargs)
    return getattr(lib, kind)(spec["units"], dtype=dtype, **kwargs)


def random_weights(rng, shapes, dtype, scale=0.5):
    """Uniform(-scale, scale) weights: every bias nonzero so that every term is tested."""
    return [rng.uniform(-scale, scale, size=shape).astype(dtype) for shape in shapes]


def make_keras_layer(spec, input_shape, dtype, rng, scale=0.5):
    """The Keras layer for ``spec``, built for ``input_shape``, with random weights.

    Random weights rather than Keras's initializers: its default zero biases would leave
    every bias path untested. They go in through ``set_weights`` in the layer's dtype
    (Keras 3.15's NumPy backend otherwise keeps float32 initializer values inside float64
    variables).
    """
    keras = import_keras()
    layer = build_layer(keras.layers, spec, dtype, is_keras=True)
    layer.build(tuple(input_shape))
    shapes = [w.shape for w in layer.get_weights()]
    layer.set_weights(random_weights(rng, shapes, dtype, scale))
    return layer


def make_rnnkit_layer(spec, input_shape, dtype, weights):
    """The rnnkit layer for ``spec``, built for ``input_shape``, with ``weights`` set
    (checked to read back unchanged through ``get_weights``)."""
    import rnnkit

    layer = build_layer(rnnkit, spec, dtype)
    layer.build(tuple(input_shape))
    layer.set_weights(weights)
    round_trip = layer.get_weights()
    assert len(round_trip) == len(weights)
    for got, want in zip(round_trip, weights):
        assert isinstance(got, np.ndarray) and got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, want)
    return layer


def make_layer_pair(spec, input_shape, dtype, rng, keras_spec=None, scale=0.5):
    """A Keras layer and the matching rnnkit layer with the same weights.

    The weights are copied as a user migrating a model would:
    ``rk_layer.set_weights(keras_layer.get_weights())``. ``keras_spec`` lets the Keras
    reference differ in a setting that does not change the numbers (see
    ``keras_reference_unroll``).
    """
    keras_layer = make_keras_layer(keras_spec or spec, input_shape, dtype, rng, scale)
    rk_layer = make_rnnkit_layer(spec, input_shape, dtype, keras_layer.get_weights())
    return keras_layer, rk_layer


# The ways rnnkit can run a layer; all must give Keras's numbers.
PATHS = ("scan", "unrolled", "chunk1", "chunk3", "python_loop")


def execution_path(path):
    """``(unroll, context manager)`` for one of ``PATHS``: the C++ loop with
    ``unroll=False`` (default chunking, or forced chunks of 1 or 3 steps), with
    ``unroll=True``, or the NumPy reference loop."""
    import contextlib

    import rnnkit.testing

    if path == "python_loop":
        return False, rnnkit.testing.python_loop()
    if path.startswith("chunk"):
        return False, rnnkit.testing.chunk_steps(int(path[len("chunk") :]))
    return path == "unrolled", contextlib.nullcontext()


def keras_reference_unroll(masked, zero_output_for_mask, unroll):
    """Which Keras `unroll` branch to use as the reference.

    The semantics rnnkit implements (those of Keras's TensorFlow backend,
    keras/src/backend/tensorflow/rnn.py): a masked step repeats the previous output, or
    outputs zeros with zero_output_for_mask, and a masked first step outputs zeros; `unroll`
    never changes the numbers. The NumPy
    backend of Keras 3.15 (keras/src/backend/numpy/rnn.py), which these tests run, has one
    quirk in each branch when a mask is given:

    * unroll=True never reads zero_output_for_mask (always repeats the previous output);
    * unroll=False repeats ``states[0]`` at a masked step, so a masked *first* step outputs
      the initial state h0 rather than zeros (visible with initial_state / stateful).

    So with a mask the reference is the branch that implements the case correctly: the
    unrolled one when masked outputs repeat, the scan when they are zeroed. Without a mask
    both branches agree and the reference uses the same `unroll` as the layer under test.
    """
    if not masked:
        return unroll
    return not zero_output_for_mask


def with_unroll(spec, unroll):
    """A copy of a spec with ``unroll`` set on every RNN layer in it."""
    spec = copy.deepcopy(spec)
    if spec["layer"] == "Bidirectional":
        spec["inner"] = with_unroll(spec["inner"], unroll)
        if spec.get("backward") is not None:
            spec["backward"] = with_unroll(spec["backward"], unroll)
    else:
        spec.setdefault("kwargs", {})["unroll"] = unroll
    return spec


def zero_output_for_mask_of(spec):
    """The effective zero_output_for_mask (Keras's Bidirectional forces it to
    return_sequences on both wrapped layers)."""
    if spec["layer"] == "Bidirectional":
        return bool(spec["inner"].get("kwargs", {}).get("return_sequences", False))
    return bool(spec.get("kwargs", {}).get("zero_output_for_mask", False))


def keras_reference_spec(spec, masked):
    """The spec of the Keras reference layer for ``spec`` (see keras_reference_unroll)."""
    unroll = spec.get("kwargs", {}).get("unroll", False)
    if spec["layer"] == "Bidirectional":
        unroll = spec["inner"].get("kwargs", {}).get("unroll", False)
    reference = keras_reference_unroll(masked, zero_output_for_mask_of(spec), unroll)
    return with_unroll(spec, reference)


def random_initial_state(keras_layer, batch, rng, dtype, scale=0.8):
    """Random initial states in the form Keras takes them for ``keras_layer``.

    A list with one array per state; for stacked cells one such list per cell (Keras 3's
    nested form ``[[h1, c1], [h2]]``); for Bidirectional the forward layer's states then
    the backward layer's, flat.
    """

    def arrays(state_size):
        sizes = state_size if isinstance(state_size, (list, tuple)) else [state_size]
        return [rng.uniform(-scale, scale, (batch, n)).astype(dtype) for n in sizes]

    if hasattr(keras_layer, "forward_layer"):
        forward = random_initial_state(keras_layer.forward_layer, batch, rng, dtype, scale)
        backward = random_initial_state(keras_layer.backward_layer, batch, rng, dtype, scale)
        return flatten(forward) + flatten(backward)
    cell = keras_layer.cell
    if hasattr(cell, "cells"):
        return [arrays(c.state_size) for c in cell.cells]
    return arrays(cell.state_size)


def keras_call(layer, x, initial_state=None, mask=None):
    kwargs = {}
    if initial_state is not None:
        kwargs["initial_state"] = initial_state
    if mask is not None:
        kwargs["mask"] = mask
    return layer(x, **kwargs)


def rnnkit_call(layer, x, initial_state=None, mask=None):
    return layer(x, initial_state=initial_state, mask=mask)


def keras_states(layer):
    """The stateful states of a Keras RNN layer as NumPy arrays (flat, tree order)."""
    return [np.asarray(v.numpy()) for v in flatten(layer.states)]


def keras_set_states(layer, states):
    """Keras 3's reset_state() takes no values; assign them as reset_states(states) would."""
    for variable, value in zip(flatten(layer.states), flatten(states)):
        variable.assign(value)


def keras_reset_states(layer):
    """``layer.reset_states()``, also for stacked cells, whose nested states Keras 3.15's
    RNN.reset_state cannot zero (it calls ``.assign`` on each per-cell list)."""
    keras_set_states(layer, [np.zeros(v.shape, v.dtype) for v in flatten(layer.states)])


def unflatten(struct, leaves):
    """Inverse of ``flatten`` for a ``structure`` description (lists for every level)."""
    leaves = iter(leaves)

    def build(node):
        if isinstance(node, list):
            return [build(item) for item in node]
        return next(leaves)

    return build(struct)
