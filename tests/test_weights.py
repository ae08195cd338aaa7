"""Weights of built-in, stacked and custom cells: Keras's order and shapes,
copies out of get_weights, read-only weight arrays that set_weights updates in place, the
compiled C++ path following set_weights, and seeded initialization.
"""

import contextlib

import numpy as np
import pytest

import rnnkit
import rnnkit.testing
from conftest import DTYPES, PATH_TOLERANCES, builtin_layers, flatten, recurrent_layer
from rnnkit.layers.recurrent import registry

B, T, F, U = 3, 5, 3, 4  # batch, timesteps, input_dim, units

# Keras's weight shapes: (cell class, cell kwargs) -> get_weights() shapes for input_dim F, units U.
CELL_SHAPES = {
    "SimpleRNNCell": (rnnkit.SimpleRNNCell, {}, [(F, U), (U, U), (U,)]),
    "LSTMCell": (rnnkit.LSTMCell, {}, [(F, 4 * U), (U, 4 * U), (4 * U,)]),
    "GRUCell_reset_after": (
        rnnkit.GRUCell, {"reset_after": True}, [(F, 3 * U), (U, 3 * U), (2, 3 * U)]
    ),
    "GRUCell_default": (rnnkit.GRUCell, {}, [(F, 3 * U), (U, 3 * U), (2, 3 * U)]),
    "GRUCell_reset_before": (
        rnnkit.GRUCell, {"reset_after": False}, [(F, 3 * U), (U, 3 * U), (3 * U,)]
    ),
    "PeepholeLSTMCell": (
        rnnkit.PeepholeLSTMCell, {}, [(F, 4 * U), (U, 4 * U), (4 * U,), (U,), (U,), (U,)]
    ),
    "PeepholeLSTMCell_no_bias": (
        rnnkit.PeepholeLSTMCell, {"use_bias": False}, [(F, 4 * U), (U, 4 * U), (U,), (U,), (U,)]
    ),
    "SimpleRNNCell_no_bias": (rnnkit.SimpleRNNCell, {"use_bias": False}, [(F, U), (U, U)]),
    "LSTMCell_no_bias": (rnnkit.LSTMCell, {"use_bias": False}, [(F, 4 * U), (U, 4 * U)]),
    "GRUCell_no_bias": (rnnkit.GRUCell, {"use_bias": False}, [(F, 3 * U), (U, 3 * U)]),
    "GRUCell_reset_before_no_bias": (
        rnnkit.GRUCell, {"use_bias": False, "reset_after": False}, [(F, 3 * U), (U, 3 * U)]
    ),
}


def _shapes(arrays):
    return [tuple(a.shape) for a in arrays]


def _inputs(dtype="float32", seed=1):
    return np.random.default_rng(seed).standard_normal((B, T, F)).astype(dtype)


def _random_like(weights, seed, dtype=None):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-0.5, 0.5, w.shape).astype(dtype or w.dtype) for w in weights]


def _path(path):
    return rnnkit.testing.python_loop() if path == "python_loop" else contextlib.nullcontext()


# ---------------------------------------------------------------------------------------
# order and shapes
# ---------------------------------------------------------------------------------------


def test_every_builtin_cell_has_its_weight_shapes_stated():
    stated = {cell_class for cell_class, _, _ in CELL_SHAPES.values()}
    missing = set(registry.cell_classes().values()) - stated
    assert not missing, f"state the get_weights() shapes of {missing} in CELL_SHAPES"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CELL_SHAPES)
def test_get_weights_order_and_shapes_match_spec_table_for_cells(case, dtype):
    cell_class, kwargs, shapes = CELL_SHAPES[case]
    cell = cell_class(U, dtype=dtype, **kwargs)
    assert cell.get_weights() == [] and not cell.built
    cell.build((B, F))
    weights = cell.get_weights()
    assert _shapes(weights) == shapes
    assert all(w.dtype == np.dtype(dtype) for w in weights)
    # The named attributes are the weights, in order: kernel, recurrent_kernel[, bias], then
    # a cell's extra weights (PeepholeLSTMCell's peepholes), each under its own name.
    names = cell._weight_labels()
    assert names[:2] == ["kernel", "recurrent_kernel"]
    assert ("bias" in names) == kwargs.get("use_bias", True)
    assert all(getattr(cell, name) is w for name, w in zip(names, cell.weights))
    if "bias" not in names:
        assert cell.bias is None


@pytest.mark.parametrize("wrapper", ["layer", "rnn"])
@pytest.mark.parametrize("case", CELL_SHAPES)
def test_get_weights_order_and_shapes_match_spec_table_for_layers(case, wrapper):
    cell_class, kwargs, shapes = CELL_SHAPES[case]
    if wrapper == "layer":
        layer = registry.layer_of(cell_class)(U, **kwargs)
    else:
        layer = rnnkit.RNN(cell_class(U, **kwargs))
    assert layer.get_weights() == []
    layer(_inputs())  # built on first use from the input's last dimension
    assert _shapes(layer.get_weights()) == shapes
    assert all(a is b for a, b in zip(layer.weights, layer.cell.weights))


@pytest.mark.parametrize("case", ["SimpleRNNCell", "LSTMCell", "GRUCell_reset_after",
                                  "GRUCell_reset_before"])
def test_default_bias_is_zeros_except_lstm_forget_gate(case):
    cell_class, kwargs, _ = CELL_SHAPES[case]
    cell = cell_class(U, **kwargs)
    cell.build((B, F))
    expected = np.zeros(cell.bias.shape, "float32")
    if cell_class is rnnkit.LSTMCell:
        expected[U:2 * U] = 1.0
    assert np.array_equal(cell.bias, expected)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, [0.0, 1.0, 0.0, 0.0]),
        ({"unit_forget_bias": True}, [0.0, 1.0, 0.0, 0.0]),
        ({"unit_forget_bias": False}, [0.0, 0.0, 0.0, 0.0]),
        ({"bias_initializer": "ones"}, [1.0, 1.0, 1.0, 1.0]),
        ({"bias_initializer": "ones", "unit_forget_bias": False}, [1.0, 1.0, 1.0, 1.0]),
        ({"bias_initializer": rnnkit.initializers.Constant(0.25)}, [0.25, 1.0, 0.25, 0.25]),
    ],
    ids=["default", "unit_forget_bias", "no_unit_forget_bias", "ones", "ones_no_forget",
         "constant"],
)
@pytest.mark.parametrize("dtype", DTYPES)
def test_lstm_unit_forget_bias_puts_ones_in_forget_gate_slice(kwargs, expected, dtype):
    layer = rnnkit.LSTM(U, dtype=dtype, **kwargs)
    layer(_inputs())
    bias = layer.get_weights()[2]
    gates = [bias[k * U:(k + 1) * U] for k in range(4)]  # i, f, c, o
    for gate, value in zip(gates, expected):
        assert gate.dtype == np.dtype(dtype) and np.array_equal(gate, np.full(U, value, dtype))


@pytest.mark.parametrize("seed", [None, 5], ids=["unseeded", "seeded"])
def test_lstm_unit_forget_bias_keeps_initializer_values_for_other_gates(seed):
    cell = rnnkit.LSTMCell(U, bias_initializer="random_uniform", seed=seed)
    cell.build((B, F))
    i, f, c, o = np.split(cell.bias, 4)
    assert np.array_equal(f, np.ones(U, "float32"))
    assert len(np.unique(np.concatenate([i, o]))) == 2 * U and np.all(np.abs(i) <= 0.05)
    # As Keras 3: the bias is concat(init((units,)), ones, init((2 * units,))), and one
    # initializer instance returns the same stream on every call, so c starts like i.
    assert np.array_equal(c, i)


STACKS = {
    "lstm_gru": lambda: [rnnkit.LSTMCell(4), rnnkit.GRUCell(3)],
    "simple_gru_before_lstm": lambda: [
        rnnkit.SimpleRNNCell(2), rnnkit.GRUCell(5, reset_after=False), rnnkit.LSTMCell(3)
    ],
    "no_bias_then_bias": lambda: [rnnkit.GRUCell(4, use_bias=False), rnnkit.SimpleRNNCell(2)],
}
STACK_SHAPES = {
    "lstm_gru": [(F, 16), (4, 16), (16,), (4, 9), (3, 9), (2, 9)],
    "simple_gru_before_lstm": [(F, 2), (2, 2), (2,), (2, 15), (5, 15), (15,), (5, 12),
                               (3, 12), (12,)],
    "no_bias_then_bias": [(F, 12), (4, 12), (4, 2), (2, 2), (2,)],
}


@pytest.mark.parametrize("wrap", ["list", "stacked_cells"])
@pytest.mark.parametrize("stack", STACKS)
def test_stacked_weights_concatenate_in_cell_order(stack, wrap):
    cells = STACKS[stack]()
    layer = rnnkit.RNN(cells if wrap == "list" else rnnkit.StackedRNNCells(cells))
    layer(_inputs())
    assert _shapes(layer.get_weights()) == STACK_SHAPES[stack]
    in_cell_order = [w for cell in cells for w in cell.weights]
    assert len(layer.weights) == len(in_cell_order)
    assert all(a is b for a, b in zip(layer.weights, in_cell_order))
    for got, want in zip(layer.get_weights(), [w for c in cells for w in c.get_weights()]):
        assert np.array_equal(got, want)


@pytest.mark.parametrize("stack", STACKS)
def test_stacked_set_weights_distributes_in_cell_order(stack):
    cells = STACKS[stack]()
    layer = rnnkit.RNN(cells)
    layer(_inputs())
    new = _random_like(layer.get_weights(), seed=7)
    layer.set_weights(new)
    it = iter(new)
    for cell in cells:
        for weight in cell.get_weights():
            assert np.array_equal(weight, next(it))


@pytest.mark.parametrize("backward", ["copy", "given"])
@pytest.mark.parametrize("inner", ["lstm", "gru_reset_before", "stacked"])
def test_bidirectional_weights_are_forward_then_backward(inner, backward):
    def make(**kwargs):
        if inner == "lstm":
            return rnnkit.LSTM(U, **kwargs)
        if inner == "gru_reset_before":
            return rnnkit.GRU(U, reset_after=False, **kwargs)
        return rnnkit.RNN([rnnkit.LSTMCell(4), rnnkit.GRUCell(3)], **kwargs)

    layer = rnnkit.Bidirectional(
        make(), backward_layer=make(go_backwards=True) if backward == "given" else None
    )
    layer(_inputs())
    forward, backward_layer = layer.forward_layer, layer.backward_layer
    assert len(layer.weights) == len(forward.weights) + len(backward_layer.weights)
    assert all(a is b for a, b in zip(layer.weights, forward.weights + backward_layer.weights))
    new = _random_like(layer.get_weights(), seed=8)
    layer.set_weights(new)
    half = len(forward.weights)
    for got, want in zip(forward.get_weights() + backward_layer.get_weights(), new):
        assert np.array_equal(got, want)
    assert _shapes(new[:half]) == _shapes(new[half:])


# ---------------------------------------------------------------------------------------
# copies out, read-only arrays, in-place set_weights
# ---------------------------------------------------------------------------------------

def _builtin(kind, **preset):
    return lambda dtype, **kw: recurrent_layer(kind, U, dtype=dtype, **preset, **kw)


LAYERS = {
    **{kind: _builtin(kind) for kind in builtin_layers(variants=True)},
    **{f"{kind}_no_bias": _builtin(kind, use_bias=False) for kind in builtin_layers()},
    "stacked": lambda dtype, **kw: rnnkit.RNN(
        [rnnkit.LSTMCell(4, dtype=dtype), rnnkit.GRUCell(3, dtype=dtype)], **kw
    ),
    "bidirectional": lambda dtype, **kw: rnnkit.Bidirectional(rnnkit.GRU(U, dtype=dtype, **kw)),
}


def _built(kind, dtype="float32", **kwargs):
    layer = LAYERS[kind](dtype, return_sequences=True, return_state=True, **kwargs)
    layer(_inputs(dtype))
    return layer


def _call(layer, dtype="float32", seed=1):
    """Every array a call returns (output sequence and states), flat."""
    return flatten(layer(_inputs(dtype, seed)))


@pytest.mark.parametrize("kind", LAYERS)
def test_get_weights_returns_writable_copies(kind):
    layer = _built(kind)
    before = layer.get_weights()
    outputs = _call(layer)
    copies = layer.get_weights()
    for copy, weight in zip(copies, layer.weights):
        assert copy.flags.writeable and not np.shares_memory(copy, weight)
        copy[...] = 7.0  # mutating a copy changes nothing in the layer
    for got, want in zip(layer.get_weights(), before):
        assert np.array_equal(got, want)
    for got, want in zip(_call(layer), outputs):
        assert np.array_equal(got, want)


@pytest.mark.parametrize("kind", LAYERS)
def test_weight_arrays_are_read_only(kind):
    layer = _built(kind)
    before = layer.get_weights()
    for weight in layer.weights:
        assert not weight.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            weight[...] = 0.0
        with pytest.raises(ValueError, match="read-only"):
            weight += 1.0
        with pytest.raises(ValueError, match="read-only"):
            np.copyto(weight, np.zeros_like(weight))
    for got, want in zip(layer.get_weights(), before):
        assert np.array_equal(got, want)


@pytest.mark.parametrize("cell", registry.cell_classes())
def test_cell_attributes_are_read_only(cell):
    instance = registry.cell_classes()[cell](U)
    instance.build((B, F))
    for name in ("kernel", "recurrent_kernel", "bias"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(instance, name)[0] = 1.0


@pytest.mark.parametrize("source_dtype", ["float32", "float64", "int64"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", LAYERS)
def test_set_weights_updates_the_same_arrays_in_place(kind, dtype, source_dtype):
    layer = _built(kind, dtype)
    arrays = layer.weights
    cells = [layer.cell] if hasattr(layer, "cell") else [layer.forward_layer.cell,
                                                          layer.backward_layer.cell]
    cells = [c for cell in cells for c in getattr(cell, "cells", [cell])]
    attributes = [(c, name, getattr(c, name)) for c in cells
                  for name in ("kernel", "recurrent_kernel", "bias")]
    new = _random_like(arrays, seed=11, dtype="float64")
    if source_dtype == "int64":
        new = [np.round(4 * w).astype("int64") for w in new]
    else:
        new = [w.astype(source_dtype) for w in new]
    layer.set_weights(new)
    assert all(a is b for a, b in zip(layer.weights, arrays)) and len(layer.weights) == len(arrays)
    for cell, name, array in attributes:
        assert getattr(cell, name) is array
    for weight, value in zip(layer.weights, new):
        assert weight.dtype == np.dtype(dtype) and not weight.flags.writeable
        assert np.array_equal(weight, value.astype(dtype))


@pytest.mark.parametrize("unroll", [False, True], ids=["scan", "unrolled"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", LAYERS)
def test_set_weights_reaches_compiled_path(kind, dtype, unroll):
    layer = _built(kind, dtype, unroll=unroll)
    old = _call(layer, dtype)  # compiles the kernels for the initial weights
    new = _random_like(layer.get_weights(), seed=12)
    layer.set_weights(new)
    compiled = _call(layer, dtype)
    with rnnkit.testing.python_loop():
        reference = _call(layer, dtype)
    for got, want, before in zip(compiled, reference, old):
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got, want, **PATH_TOLERANCES[dtype])
        assert not np.allclose(got, before, **PATH_TOLERANCES[dtype]), "output did not change"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", [*builtin_layers(), "stacked"])
def test_set_weights_on_cell_reaches_compiled_path_of_layer(kind, dtype):
    layer = _built(kind, dtype)
    _call(layer, dtype)
    cells = getattr(layer.cell, "cells", [layer.cell])
    target = cells[-1]  # the top cell of a stack, set on its own
    target.set_weights(_random_like(target.get_weights(), seed=13))
    compiled = _call(layer, dtype)
    with rnnkit.testing.python_loop():
        reference = _call(layer, dtype)
    for got, want in zip(compiled, reference):
        np.testing.assert_allclose(got, want, **PATH_TOLERANCES[dtype])


@pytest.mark.parametrize("kind", LAYERS)
def test_set_weights_round_trip_restores_outputs(kind):
    layer = _built(kind)
    original = layer.get_weights()
    first = _call(layer)
    for seed in (20, 21):  # change twice, calling in between, then restore
        layer.set_weights(_random_like(original, seed=seed))
        changed = _call(layer)
        assert not all(np.array_equal(a, b) for a, b in zip(changed, first))
    layer.set_weights(original)
    for got, want in zip(_call(layer), first):
        assert np.array_equal(got, want)


def test_set_weights_transfers_between_layers():
    source = _built("stacked")
    target = rnnkit.RNN([rnnkit.LSTMCell(4), rnnkit.GRUCell(3)], return_sequences=True,
                        return_state=True)
    target.build((B, T, F))
    target.set_weights(tuple(source.get_weights()))
    for got, want in zip(_call(target), _call(source)):
        assert np.array_equal(got, want)


# ---------------------------------------------------------------------------------------
# seeds
# ---------------------------------------------------------------------------------------

SEEDED = {
    **{
        name: lambda seed, cell_class=cell_class: cell_class(U, seed=seed)
        for name, cell_class in registry.cell_classes().items()
    },
    "GRUCell_random_bias": lambda seed: rnnkit.GRUCell(
        U, seed=seed, bias_initializer="random_normal"
    ),
    "LSTM": lambda seed: rnnkit.LSTM(U, seed=seed),
    "stacked": lambda seed: rnnkit.RNN(
        [rnnkit.LSTMCell(4, seed=seed), rnnkit.GRUCell(3, seed=seed)]
    ),
}


def _seeded_weights(kind, seed):
    layer = SEEDED[kind](seed)
    layer.build((B, T, F) if hasattr(layer, "cell") else (B, F))
    return layer.get_weights()


@pytest.mark.parametrize("kind", SEEDED)
def test_seeded_cells_are_reproducible(kind):
    first = _seeded_weights(kind, 3)
    np.random.seed(12345)  # the global NumPy state plays no part
    np.random.random(10)
    _seeded_weights(kind, 4)  # nor does building another seeded cell in between
    second = _seeded_weights(kind, 3)
    assert len(first) == len(second)
    for a, b in zip(first, second):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("kind", SEEDED)
def test_different_seeds_give_different_weights(kind):
    three, four = _seeded_weights(kind, 3), _seeded_weights(kind, 4)
    assert len(three) == len(four)
    for i, (a, b) in enumerate(zip(three, four)):
        # Only a bias from a constant initializer (zeros, forget-gate ones) may not depend on
        # the seed; kernels (glorot_uniform, orthogonal) and random biases must.
        assert not np.array_equal(a, b) or set(np.unique(a)) <= {0.0, 1.0}, f"weight {i}"


@pytest.mark.parametrize("kind", ["LSTM", "stacked"])
def test_seeded_layers_give_identical_outputs(kind):
    first, second = SEEDED[kind](3), SEEDED[kind](3)
    x = _inputs()
    assert np.array_equal(first(x), second(x))
