"""Bad input: the error type and message, and failure atomicity (docs/reliability.md, "Hostile
input").

Every bad call must raise a ``ValueError`` (``TypeError`` for a wrong type) whose message
names the argument, what was expected and what came; and it must change nothing: weights,
stateful states, built status and the numbers of the next valid call are exactly those of a
*twin* layer (same seeds, same history) that never saw the bad call.

Layers under test come in three stages: ``fresh`` (never called, so a bad first call must
not build it), ``built`` (called once) and ``stateful`` (stateful, called once with random
initial states so the carried states are nonzero).
"""

import numpy as np
import pytest

import rnnkit
from conftest import (
    assert_arrays_equal,
    builtin_layers,
    flatten,
    recurrent_cell,
    recurrent_layer,
    state_sizes,
)
from rnnkit.layers.recurrent import registry

B, T, F = 2, 5, 3  # batch, timesteps, features of the valid calls

# The activations rnnkit takes by name, Keras 3's (an unknown name is a ValueError naming them).
SPEC_ACTIVATIONS = (
    "tanh", "sigmoid", "hard_sigmoid", "relu", "linear", "elu", "selu", "softsign",
    "softplus", "swish", "silu", "gelu", "exponential", "hard_silu",
)


class MinimalRNNCell(rnnkit.Layer):
    """Keras's documented custom cell, with a deterministic initializer (runs the NumPy loop)."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        def init(seed):
            return lambda shape, dtype: np.random.default_rng(seed).uniform(-0.5, 0.5, shape)

        self.kernel = self.add_weight((input_shape[-1], self.units), init(11), name="kernel")
        self.recurrent_kernel = self.add_weight(
            (self.units, self.units), init(12), name="recurrent_kernel"
        )
        self.built = True

    def call(self, inputs, states):
        output = inputs @ self.kernel + states[0] @ self.recurrent_kernel
        return output, [output]


# Every layer returns its whole sequence and its states, so that comparing two calls
# compares every number a call produces.
FULL = {"return_sequences": True, "return_state": True}


def _builtin(kind):
    return lambda **kw: recurrent_layer(kind, 4, seed=1, **FULL, **kw)


LAYERS = {
    **{kind: _builtin(kind) for kind in builtin_layers()},
    "stacked": lambda **kw: rnnkit.RNN(
        [rnnkit.LSTMCell(4, seed=1), rnnkit.GRUCell(3, seed=2)], **FULL, **kw
    ),
    "bidirectional": lambda **kw: rnnkit.Bidirectional(rnnkit.LSTM(4, seed=1, **FULL, **kw)),
    "custom": lambda **kw: rnnkit.RNN(MinimalRNNCell(4), **FULL, **kw),
}
# State sizes of each layer, nested per cell (Bidirectional: forward cell, backward cell).
STATE_SIZES = {
    **{kind: [state_sizes(kind, 4)] for kind in builtin_layers()},
    "stacked": [[4, 4], [3]],
    "bidirectional": [[4, 4], [4, 4]],
    "custom": [[4]],
}
STAGES = ("fresh", "built", "stateful")


def _inputs(batch=B, steps=T, features=F, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, steps, features)).astype("float32")


def _nested_states(kind, batch=B, seed=0):
    rng = np.random.default_rng(seed)
    return [
        [rng.uniform(-0.8, 0.8, (batch, n)).astype("float32") for n in group]
        for group in STATE_SIZES[kind]
    ]


def _call_form(kind, nested):
    """`initial_state` as the layer documents it: flat for one cell and for Bidirectional
    (forward states then backward states), nested per cell for a stack."""
    return nested if kind == "stacked" else flatten(nested)


def _parts(layer):
    """The layer and everything inside it that has a `built` flag."""
    if isinstance(layer, rnnkit.Bidirectional):
        return [layer, *_parts(layer.forward_layer), *_parts(layer.backward_layer)]
    return [layer, layer.cell, *getattr(layer.cell, "cells", [])]


def _make(kind, stage, **kwargs):
    """The layer of `kind` at `stage`; called twice it gives two identical layers."""
    stateful = stage == "stateful"
    layer = LAYERS[kind](stateful=stateful, **kwargs)
    if stage == "built":
        layer(_inputs(seed=1))
    elif stateful:
        layer(_inputs(seed=1), initial_state=_call_form(kind, _nested_states(kind, seed=2)))
    return layer


def _snapshot(layer):
    states = getattr(layer, "states", None)
    return {
        "built": [bool(getattr(part, "built", False)) for part in _parts(layer)],
        "weights": layer.get_weights(),
        "states": None if states is None else flatten(states),
    }


def _assert_same_snapshot(actual, expected):
    assert actual["built"] == expected["built"], "built status changed"
    assert_arrays_equal(actual["weights"], expected["weights"], "weights")
    assert (actual["states"] is None) == (expected["states"] is None), "states appeared/vanished"
    if expected["states"] is not None:
        assert_arrays_equal(actual["states"], expected["states"], "states")


def assert_raises_atomically(layer, twin, bad_call, error, match):
    """`bad_call(layer)` raises `error` matching `match` and leaves `layer` exactly as its
    `twin` (which never saw the bad call): same snapshot, same numbers on the next calls."""
    before = _snapshot(layer)
    _assert_same_snapshot(before, _snapshot(twin))
    with pytest.raises(error, match=match):
        bad_call(layer)
    _assert_same_snapshot(_snapshot(layer), before)
    for seed in (3, 4):  # twice: a stateful layer must also carry the same states on
        x = _inputs(seed=seed)
        assert_arrays_equal(layer(x), twin(x), "next valid call")
    _assert_same_snapshot(_snapshot(layer), _snapshot(twin))


def _mark_xfail(request, reason):
    request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


# ---------------------------------------------------------------------------------------
# bad inputs, masks, constants, stateful batch size
# ---------------------------------------------------------------------------------------

# id -> (bad call, stages it applies to, error, message regex)
CALL_ERRORS = {
    "rank2_inputs": (
        lambda layer: layer(_inputs()[0]),
        STAGES, ValueError, r"expected rank 3.*inputs with shape \(5, 3\)",
    ),
    "rank4_inputs": (
        lambda layer: layer(_inputs()[..., None]),
        STAGES, ValueError, r"expected rank 3.*inputs with shape \(2, 5, 3, 1\)",
    ),
    "feature_size_differs_from_built": (
        lambda layer: layer(_inputs(features=F + 2)),
        ("built", "stateful"), ValueError, r"built for 3 features.*shape \(2, 5, 5\)",
    ),
    "zero_timesteps": (
        lambda layer: layer(np.zeros((B, 0, F), "float32")),
        STAGES, ValueError, r"`inputs`.*at least one timestep.*shape \(2, 0, 3\)",
    ),
    "zero_features": (
        lambda layer: layer(np.zeros((B, T, 0), "float32")),
        STAGES, ValueError, r"`inputs`.*at least one feature.*shape \(2, 5, 0\)",
    ),
    "complex_inputs": (
        lambda layer: layer(_inputs().astype("complex64")),
        STAGES, TypeError, r"`inputs`.*real numbers.*received an array of dtype complex64",
    ),
    "object_inputs": (
        lambda layer: layer(_inputs().astype(object)),
        STAGES, TypeError, r"`inputs`.*real numbers.*received an array of dtype object",
    ),
    "string_inputs": (
        lambda layer: layer(_inputs().astype(str)),
        STAGES, TypeError, r"`inputs`.*real numbers.*received an array of dtype <U",
    ),
    "ragged_list_inputs": (
        lambda layer: layer([[[1.0, 2.0, 3.0]], [[1.0, 2.0]]]),
        STAGES, TypeError, r"`inputs` must be an array of numbers\. Received: list",
    ),
    "mask_wrong_shape": (
        lambda layer: layer(_inputs(), mask=np.ones((B, T - 1), bool)),
        STAGES, ValueError, r"`mask` must have shape \(2, 5\)\. Received: array of shape \(2, 4\)",
    ),
    "mask_transposed": (
        lambda layer: layer(_inputs(), mask=np.ones((T, B), bool)),
        STAGES, ValueError, r"`mask` must have shape \(2, 5\)\. Received: array of shape \(5, 2\)",
    ),
    "mask_wrong_rank": (
        lambda layer: layer(_inputs(), mask=np.ones((B, T, 1), bool)),
        STAGES, ValueError,
        r"`mask` must have shape \(2, 5\)\. Received: array of shape \(2, 5, 1\)",
    ),
    "mask_complex": (
        lambda layer: layer(_inputs(), mask=np.ones((B, T), complex)),
        STAGES, TypeError, r"`mask` must be a boolean array; received dtype complex128",
    ),
    "constants_to_cell_without_constants": (
        lambda layer: layer(_inputs(), constants=[np.ones((B, 2), "float32")]),
        STAGES, ValueError, r"`constants` were given, but no cell .* takes them",
    ),
    "stateful_batch_size_change": (
        lambda layer: layer(_inputs(batch=B + 1)),
        ("stateful",), ValueError, r"stateful.*Expected batch size: 2\. Received batch size: 3\.",
    ),
}


@pytest.mark.parametrize(
    ("case", "stage", "kind"),
    [
        (case, stage, kind)
        for case, (_, stages, _, _) in CALL_ERRORS.items()
        for stage in stages
        for kind in LAYERS
    ],
)
def test_call_raises_atomically_with_bad_input(case, stage, kind):
    bad_call, _, error, match = CALL_ERRORS[case]
    assert_raises_atomically(_make(kind, stage), _make(kind, stage), bad_call, error, match)


def test_error_message_names_time_major_layout():
    layer = rnnkit.SimpleRNN(4, time_major=True)
    with pytest.raises(ValueError, match=r"expected rank 3, \(timesteps, batch, features\)"):
        layer(np.zeros((T, F), "float32"))
    x = np.zeros((T, B, F), "float32")
    with pytest.raises(ValueError, match=r"`mask` must have shape \(5, 2\).*shape \(2, 5\)"):
        layer(x, mask=np.ones((B, T), bool))
    assert not layer.built
    assert layer(x, mask=np.ones((T, B), bool)).shape == (B, 4)


@pytest.mark.parametrize("kind", [*builtin_layers(), "stacked"])
def test_call_returns_empty_outputs_with_zero_batch(kind):
    layer = LAYERS[kind]()
    output, *states = layer(np.zeros((0, T, F), "float32"))
    assert output.shape == (0, T, {"stacked": 3}.get(kind, 4))
    assert all(s.shape[0] == 0 for s in flatten(states))


# ---------------------------------------------------------------------------------------
# initial_state
# ---------------------------------------------------------------------------------------


def _replace_last(nested, value):
    nested = [list(group) for group in nested]
    nested[-1][-1] = value
    return nested


def _last_size(kind):
    return STATE_SIZES[kind][-1][-1]


# id -> (nested states -> bad initial_state (in the layer's documented form), error, regex)
# `{n}` in a regex is the size of the last state.
STATE_ERRORS = {
    "missing_state": (
        lambda kind, s: flatten(s)[:-1], ValueError,
        r"`initial_state` of \S+ expected \d state array\(s\) of shapes \[.*\]"
        r".*; received \[",
    ),
    "extra_state": (
        lambda kind, s: [*flatten(s), flatten(s)[-1]], ValueError,
        r"`initial_state` of \S+ expected \d state array\(s\) of shapes \[.*\].*; received \[",
    ),
    "wrong_units": (
        lambda kind, s: _call_form(
            kind, _replace_last(s, np.zeros((B, _last_size(kind) + 1), "float32"))
        ),
        ValueError,
        r"`initial_state` of \S+ expected state arrays of shapes \[.*\(2, {n}\)\]; "
        r"received \[.*array of shape \(2, {n1}\)",
    ),
    "wrong_batch": (
        lambda kind, s: _call_form(
            kind, _replace_last(s, np.zeros((B + 1, _last_size(kind)), "float32"))
        ),
        ValueError,
        r"`initial_state` of \S+ expected state arrays of shapes \[.*\(2, {n}\)\]; "
        r"received \[.*array of shape \(3, {n}\)",
    ),
    "wrong_rank": (
        lambda kind, s: _call_form(kind, _replace_last(s, np.zeros(_last_size(kind), "float32"))),
        ValueError,
        r"`initial_state` of \S+ expected state arrays of shapes \[.*\(2, {n}\)\]; "
        r"received \[.*array of shape \({n},\)",
    ),
    "complex_state": (
        lambda kind, s: _call_form(
            kind, _replace_last(s, np.zeros((B, _last_size(kind)), "complex64"))
        ),
        TypeError, r"`initial_state` must be an array of real numbers.*complex64",
    ),
}

@pytest.mark.parametrize("kind", LAYERS)
@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("case", STATE_ERRORS)
def test_call_raises_atomically_with_bad_initial_state(case, stage, kind, request):
    make_bad, error, match = STATE_ERRORS[case]
    n = _last_size(kind)
    match = match.format(n=n, n1=n + 1)
    bad = make_bad(kind, _nested_states(kind))
    assert_raises_atomically(
        _make(kind, stage), _make(kind, stage), lambda layer: layer(_inputs(), bad), error, match
    )


def _stacked_states():
    (h1, c1), (h2,) = _nested_states("stacked")
    return h1, c1, h2


# Stacked cells: the nested form [[h1, c1], [h2]] and the flat form [h1, c1, h2].
STACKED_STATE_ERRORS = {
    "nested_missing_state_in_group": lambda h1, c1, h2: [[h1], [h2]],
    "nested_extra_state_in_group": lambda h1, c1, h2: [[h1, c1], [h2, h2]],
    "nested_missing_group": lambda h1, c1, h2: [[h1, c1]],
    "nested_extra_group": lambda h1, c1, h2: [[h1, c1], [h2], [h2]],
    "flat_missing_state": lambda h1, c1, h2: [h1, c1],
    "flat_extra_state": lambda h1, c1, h2: [h1, c1, h2, h2],
    "nested_group_count_as_flat": lambda h1, c1, h2: [h1, [c1, h2]],
}
STACKED_SHAPE_ERRORS = {
    "nested_wrong_units_first_cell": lambda h1, c1, h2: [[h1, c1[:, :3]], [h2]],
    "nested_wrong_units_second_cell": lambda h1, c1, h2: [[h1, c1], [c1]],
    "nested_wrong_batch": lambda h1, c1, h2: [[h1, c1], [h2[:1]]],
    "flat_wrong_units": lambda h1, c1, h2: [h1, c1, c1],
    "flat_wrong_batch": lambda h1, c1, h2: [h1[:1], c1, h2],
    "flat_swapped_order": lambda h1, c1, h2: [h2, h1, c1],
}


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("case", STACKED_STATE_ERRORS)
def test_stacked_call_raises_atomically_with_wrong_state_count(case, stage):
    bad = STACKED_STATE_ERRORS[case](*_stacked_states())
    assert_raises_atomically(
        _make("stacked", stage), _make("stacked", stage),
        lambda layer: layer(_inputs(), bad), ValueError,
        r"`initial_state` of \S+ expected 3 state array\(s\) of shapes "
        r"\[\(2, 4\), \(2, 4\), \(2, 3\)\] for StackedRNNCells.*received \[",
    )


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("case", STACKED_SHAPE_ERRORS)
def test_stacked_call_raises_atomically_with_wrong_state_shape(case, stage):
    bad = STACKED_SHAPE_ERRORS[case](*_stacked_states())
    assert_raises_atomically(
        _make("stacked", stage), _make("stacked", stage),
        lambda layer: layer(_inputs(), bad), ValueError,
        r"`initial_state` of \S+ expected state arrays of shapes "
        r"\[\(2, 4\), \(2, 4\), \(2, 3\)\]; received \[",
    )


@pytest.mark.parametrize("form", ["nested", "flat", "nested_bare_array"])
def test_stacked_call_accepts_nested_and_flat_initial_state(form):
    h1, c1, h2 = _stacked_states()
    states = {
        "nested": [[h1, c1], [h2]],
        "flat": [h1, c1, h2],
        "nested_bare_array": [[h1, c1], h2],
    }[form]
    layer, reference = _make("stacked", "built"), _make("stacked", "built")
    expected = reference(_inputs(), [[h1, c1], [h2]])
    assert_arrays_equal(layer(_inputs(), states), expected, form)


@pytest.mark.parametrize("stage", STAGES)
def test_bidirectional_call_raises_with_initial_state_not_a_list(stage):
    h = _nested_states("bidirectional")[0][0]
    assert_raises_atomically(
        _make("bidirectional", stage), _make("bidirectional", stage),
        lambda layer: layer(_inputs(), h), ValueError,
        r"`initial_state` of Bidirectional must be a list.*Received: ndarray",
    )


# ---------------------------------------------------------------------------------------
# training and dropout
# ---------------------------------------------------------------------------------------

DROPOUT_LAYERS = {
    **{kind: _builtin(kind) for kind in builtin_layers()},
    "stacked_second_cell": lambda **kw: rnnkit.RNN(
        [rnnkit.LSTMCell(4, seed=1), rnnkit.GRUCell(3, seed=2, **kw)], **FULL
    ),
    "bidirectional": lambda **kw: rnnkit.Bidirectional(rnnkit.LSTM(4, seed=1, **FULL, **kw)),
}


@pytest.mark.parametrize("rate", [{"dropout": 0.5}, {"recurrent_dropout": 0.25}],
                         ids=["dropout", "recurrent_dropout"])
@pytest.mark.parametrize("built", [False, True], ids=["fresh", "built"])
@pytest.mark.parametrize("kind", DROPOUT_LAYERS)
def test_call_raises_atomically_with_training_and_dropout(kind, built, rate):
    layer, twin = DROPOUT_LAYERS[kind](**rate), DROPOUT_LAYERS[kind](**rate)
    if built:
        layer(_inputs(seed=1))
        twin(_inputs(seed=1))
    ((name, value),) = rate.items()
    assert_raises_atomically(
        layer, twin, lambda layer: layer(_inputs(), training=True), ValueError,
        rf"`training=True` with {name}={value}: rnnkit is inference-only",
    )


@pytest.mark.parametrize("kind", DROPOUT_LAYERS)
def test_call_with_training_and_zero_dropout_equals_inference(kind):
    layer = DROPOUT_LAYERS[kind](dropout=0.0, recurrent_dropout=0.0)
    x = _inputs()
    assert_arrays_equal(layer(x, training=True), layer(x, training=False), "training=True")


def test_dropout_is_stored_and_ignored_at_inference():
    with_dropout = rnnkit.LSTM(4, seed=1, dropout=0.5, recurrent_dropout=0.25)
    without = rnnkit.LSTM(4, seed=1)
    assert (with_dropout.dropout, with_dropout.recurrent_dropout) == (0.5, 0.25)
    x = _inputs()
    assert np.array_equal(with_dropout(x), without(x))


# ---------------------------------------------------------------------------------------
# stateful states: reset_states
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", LAYERS)
def test_reset_states_without_states_is_a_no_op_on_non_stateful_layer(kind):
    """As Keras 3: a layer that carries no states has nothing to reset."""
    layer, twin = _make(kind, "built"), _make(kind, "built")
    layer.reset_states()
    assert layer.states is None
    x = _inputs()
    assert_arrays_equal(layer(x), twin(x), "call after reset_states")


@pytest.mark.parametrize("kind", LAYERS)
def test_reset_states_with_states_raises_on_non_stateful_layer(kind):
    layer = _make(kind, "built")
    with pytest.raises(ValueError, match=r"not stateful.*stateful=True"):
        layer.reset_states(_call_form(kind, _nested_states(kind)))
    assert layer.states is None


# id -> (nested states -> bad `states`, error, regex)
RESET_ERRORS = {
    "missing_state": (lambda kind, s: flatten(s)[:-1], ValueError,
                      r"`states` of \S+ expected \d state array\(s\) of shapes"),
    "wrong_units": (
        lambda kind, s: _call_form(
            kind, _replace_last(s, np.zeros((B, _last_size(kind) + 1), "float32"))
        ),
        ValueError, r"`states` of \S+ expected state arrays of shapes \[.*\]; received",
    ),
    "wrong_batch": (
        lambda kind, s: _call_form(
            kind, _replace_last(s, np.zeros((B + 1, _last_size(kind)), "float32"))
        ),
        ValueError, r"`states` of \S+ expected state arrays of shapes \[.*\(2, \d\)\]; "
                    r"received \[.*\(3, \d\)",
    ),
    "all_wrong_batch": (
        lambda kind, s: _call_form(kind, _nested_states(kind, batch=B + 1)),
        ValueError, r"`states` of \S+ expected state arrays of shapes \[\(2, \d\).*\]; "
                    r"received \[+array of shape \(3, \d\)",
    ),
    "complex_state": (
        lambda kind, s: _call_form(
            kind, _replace_last(s, np.zeros((B, _last_size(kind)), "complex128"))
        ),
        TypeError, r"`states` must be an array of real numbers.*complex128",
    ),
}


@pytest.mark.parametrize("kind", LAYERS)
@pytest.mark.parametrize("case", RESET_ERRORS)
def test_reset_states_raises_atomically_with_bad_states(case, kind):
    make_bad, error, match = RESET_ERRORS[case]
    bad = make_bad(kind, _nested_states(kind, seed=5))
    assert_raises_atomically(
        _make(kind, "stateful"), _make(kind, "stateful"),
        lambda layer: layer.reset_states(bad), error, match,
    )


@pytest.mark.parametrize("kind", LAYERS)
def test_reset_states_sets_and_zeroes_states(kind):
    layer = _make(kind, "stateful")
    states = _nested_states(kind, seed=7)
    layer.reset_states(_call_form(kind, states))
    assert_arrays_equal(layer.states, states, "states after reset_states(states)")
    layer.reset_states()
    for state in flatten(layer.states):
        assert state.shape[0] == B and not state.any()


# ---------------------------------------------------------------------------------------
# set_weights
# ---------------------------------------------------------------------------------------


def _new_weights(layer, seed=9):
    """Random weights of the right shapes, all different from the current ones."""
    rng = np.random.default_rng(seed)
    return [rng.uniform(-0.5, 0.5, w.shape).astype(w.dtype) for w in layer.get_weights()]


def _last_label(kind):
    composites = {
        "stacked": r"cells\[1\]\.bias", "bidirectional": r"backward\.bias",
        "custom": "recurrent_kernel",
    }
    if kind in composites:
        return composites[kind]
    cell = recurrent_cell(kind, 2)  # a built-in cell: its last weight (bias, or an extra one)
    cell.build((None, 2))
    return cell._weight_labels()[-1]


def _first_label(kind):
    return {"stacked": r"cells\[0\]\.kernel", "bidirectional": r"forward\.kernel"}.get(
        kind, "kernel"
    )


def _shape_text(shape):
    return str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")


def _bigger(array):
    return np.zeros(tuple(d + 1 for d in array.shape), array.dtype)


def _reshaped(array):
    """The same numbers in another shape: flattened, or a row for a 1-D array."""
    return array.reshape(-1) if array.ndim > 1 else array[None]


def _shape_mismatch(kind, weights, bad):
    return (
        rf"Weight `{_last_label(kind)}` of \S+ expected shape {_shape_text(weights[-1].shape)}, "
        rf"received {_shape_text(np.shape(bad[-1]))}\."
    )


def _count_mismatch(given):
    return lambda kind, w, bad: (
        rf"expects {len(w)} weight arrays \(.*\).*but `weights` has {given(len(w))}\."
    )


def _not_real(label, dtype):
    return lambda kind, w, bad: (
        rf"Weight `{label(kind)}` of \S+ must be real numbers.*dtype {dtype}"
    )


SET_WEIGHTS_ERRORS = {
    "too_few": (lambda w: w[:-1], ValueError, _count_mismatch(lambda n: n - 1)),
    "too_many": (lambda w: [*w, w[-1]], ValueError, _count_mismatch(lambda n: n + 1)),
    "empty": (lambda w: [], ValueError, _count_mismatch(lambda n: 0)),
    "wrong_shape_last": (lambda w: [*w[:-1], _bigger(w[-1])], ValueError, _shape_mismatch),
    "reshaped_last": (lambda w: [*w[:-1], _reshaped(w[-1])], ValueError, _shape_mismatch),
    "complex_first": (
        lambda w: [w[0].astype(complex), *w[1:]], TypeError, _not_real(_first_label, "complex128")
    ),
    "complex_last": (
        lambda w: [*w[:-1], w[-1].astype("complex64")], TypeError,
        _not_real(_last_label, "complex64"),
    ),
    "string_last": (
        lambda w: [*w[:-1], w[-1].astype(str)], TypeError, _not_real(_last_label, "<U")
    ),
    "object_last": (
        lambda w: [*w[:-1], w[-1].astype(object)], TypeError, _not_real(_last_label, "object")
    ),
    "array_not_list": (
        lambda w: w[0], TypeError,
        lambda kind, w, bad: r"`weights` must be a list of arrays\. Received: array of shape",
    ),
    "ragged_last": (
        lambda w: [*w[:-1], [list(w[-1].ravel()), [0.0]]], (ValueError, TypeError),
        lambda kind, w, bad: rf"Weight `{_last_label(kind)}`",
    ),
}


@pytest.mark.parametrize("stage", ["built", "stateful"])
@pytest.mark.parametrize("kind", LAYERS)
@pytest.mark.parametrize("case", SET_WEIGHTS_ERRORS)
def test_set_weights_raises_atomically_with_bad_weights(case, kind, stage, request):
    make_bad, error, match = SET_WEIGHTS_ERRORS[case]
    layer, twin = _make(kind, stage), _make(kind, stage)
    # Every valid entry differs from the current weight, so a partial write would show.
    weights = _new_weights(layer)
    bad = make_bad(weights)
    assert_raises_atomically(
        layer, twin, lambda layer: layer.set_weights(bad), error, match(kind, weights, bad)
    )


@pytest.mark.parametrize("kind", LAYERS)
def test_set_weights_raises_on_fresh_layer_naming_build(kind):
    layer, built = _make(kind, "fresh"), _make(kind, "built")
    with pytest.raises(ValueError, match=r"expects 0 weight arrays \(none; build the layer first"):
        layer.set_weights(built.get_weights())
    assert not layer.built and layer.get_weights() == []


# ---------------------------------------------------------------------------------------
# constructor arguments
# ---------------------------------------------------------------------------------------

CONSTRUCTORS = {**registry.cell_classes(), **registry.layer_classes()}
GATED = [name for name, c in CONSTRUCTORS.items() if "recurrent_activation" in c.ARGUMENTS]

# id -> (kwargs, error, regex)
CONSTRUCTOR_ERRORS = {
    "units_zero": (
        {"units": 0}, ValueError,
        r"invalid value for argument `units`, expected a positive integer\. Received: units=0",
    ),
    "units_negative": (
        {"units": -1}, ValueError, r"argument `units`, expected a positive integer.*units=-1",
    ),
    "units_float": (
        {"units": 2.5}, ValueError, r"argument `units`, expected a positive integer.*units=2\.5",
    ),
    "units_bool": (
        {"units": True}, ValueError, r"argument `units`, expected a positive integer.*units=True",
    ),
    "units_none": (
        {"units": None}, ValueError, r"argument `units`, expected a positive integer.*units=None",
    ),
    "unknown_activation": (
        {"units": 4, "activation": "tanhh"}, ValueError,
        r"Unknown `activation`: 'tanhh'\. Expected one of: .*tanh",
    ),
    "activation_not_callable": (
        {"units": 4, "activation": 3}, TypeError,
        r"`activation` must be a name, None or a callable",
    ),
    "dropout_above_one": (
        {"units": 4, "dropout": 2}, ValueError,
        r"`dropout` must be a float in \[0, 1\]\. Received: dropout=2",
    ),
    "dropout_negative": (
        {"units": 4, "dropout": -0.1}, ValueError, r"`dropout` must be a float in \[0, 1\]",
    ),
    "recurrent_dropout_above_one": (
        {"units": 4, "recurrent_dropout": 1.5}, ValueError,
        r"`recurrent_dropout` must be a float in \[0, 1\]\. Received: recurrent_dropout=1\.5",
    ),
    "dtype_int32": (
        {"units": 4, "dtype": "int32"}, ValueError,
        r"`dtype` must be 'float32' or 'float64'.*Received: dtype='int32'",
    ),
    "dtype_float16": (
        {"units": 4, "dtype": "float16"}, ValueError,
        r"`dtype` must be 'float32' or 'float64'.*Received: dtype='float16'",
    ),
    "dtype_complex": (
        {"units": 4, "dtype": np.complex64}, ValueError, r"`dtype` must be 'float32' or 'float64'",
    ),
    "dtype_not_a_dtype": (
        {"units": 4, "dtype": "floaty"}, ValueError,
        r"`dtype` must be 'float32' or 'float64'.*Received: dtype='floaty'",
    ),
    "seed_not_int": (
        {"units": 4, "seed": "3"}, TypeError, r"`seed` must be an int or None\. Received: seed='3'",
    ),
    "unknown_keyword": (
        {"units": 4, "unitz": 4}, TypeError, r"Unrecognized keyword arguments.*unitz",
    ),
}


@pytest.mark.parametrize("constructor", CONSTRUCTORS)
@pytest.mark.parametrize("case", CONSTRUCTOR_ERRORS)
def test_constructor_raises_with_invalid_argument(case, constructor):
    kwargs, error, match = CONSTRUCTOR_ERRORS[case]
    with pytest.raises(error, match=match):
        CONSTRUCTORS[constructor](**kwargs)


@pytest.mark.parametrize(
    ("argument", "constructor"),
    [("activation", name) for name in CONSTRUCTORS]
    + [("recurrent_activation", name) for name in GATED],
)
def test_constructor_unknown_activation_message_lists_every_choice(argument, constructor):
    with pytest.raises(ValueError, match=rf"Unknown `{argument}`: 'nope'") as info:
        CONSTRUCTORS[constructor](4, **{argument: "nope"})
    message = str(info.value)
    missing = [name for name in SPEC_ACTIVATIONS if f"{name}," not in message + ","]
    assert not missing, f"choices missing from {message!r}: {missing}"
    assert "None" in message


class _NoCall:
    state_size = 4


class _NoStateSize:
    def call(self, inputs, states):
        return inputs, states


class _NonCallableCall:
    state_size = 4
    call = 3


# id -> (factory, regex)
RNN_ERRORS = {
    "cell_without_call": (lambda: rnnkit.RNN(_NoCall()), r"Argument `cell` should have a `call`"),
    "cell_call_not_callable": (
        lambda: rnnkit.RNN(_NonCallableCall()), r"Argument `cell` should have a `call`",
    ),
    "cell_without_state_size": (
        lambda: rnnkit.RNN(_NoStateSize()),
        r"should have a `state_size` attribute.*Received: cell=",
    ),
    "stacked_cell_without_call": (
        lambda: rnnkit.RNN([rnnkit.LSTMCell(4), _NoCall()]),
        r"Argument `cells\[1\]` should have a `call`",
    ),
    "stacked_cell_without_state_size": (
        lambda: rnnkit.StackedRNNCells([_NoStateSize(), rnnkit.GRUCell(3)]),
        r"`state_size` attribute.*Received: cells\[0\]=",
    ),
    "stacked_empty": (lambda: rnnkit.RNN([]), r"`cells` must be a non-empty list of cells"),
    "stacked_not_a_list": (
        lambda: rnnkit.StackedRNNCells(rnnkit.LSTMCell(4)),
        r"`cells` must be a non-empty list of cells\. Received: LSTMCell\(4\)",
    ),
    "rnn_dtype_differs_from_cell": (
        lambda: rnnkit.RNN(rnnkit.LSTMCell(4), dtype="float64"),
        r"`dtype`='float64' differs from the cell's dtype 'float32'",
    ),
    "stacked_cells_of_two_dtypes": (
        lambda: rnnkit.RNN([rnnkit.LSTMCell(4), rnnkit.GRUCell(3, dtype="float64")]),
        r"All cells must have one dtype.*float32.*float64",
    ),
    "rnn_dtype_int32": (
        lambda: rnnkit.RNN(rnnkit.LSTMCell(4), dtype="int32"),
        r"`dtype` must be 'float32' or 'float64'.*int32",
    ),
    "bidirectional_invalid_merge_mode": (
        lambda: rnnkit.Bidirectional(rnnkit.LSTM(4), merge_mode="max"),
        r"Invalid merge mode\. Received: merge_mode='max'\. Merge mode should be one of",
    ),
    "bidirectional_of_a_cell": (
        lambda: rnnkit.Bidirectional(rnnkit.LSTMCell(4)),
        r"initialize `Bidirectional` with an rnnkit recurrent layer\. Received: LSTMCell\(4\)",
    ),
    "bidirectional_backward_not_a_layer": (
        lambda: rnnkit.Bidirectional(rnnkit.LSTM(4), backward_layer=rnnkit.LSTMCell(4)),
        r"`backward_layer` must be an rnnkit recurrent layer",
    ),
}


@pytest.mark.parametrize("case", RNN_ERRORS)
def test_layer_constructor_raises_with_invalid_argument(case):
    factory, match = RNN_ERRORS[case]
    with pytest.raises(ValueError, match=match):
        factory()


# id -> (forward kwargs, backward kwargs, regex); the backward layer is an LSTM(4).
BIDIRECTIONAL_MISMATCHES = {
    "same_go_backwards": (
        {}, {}, r"different `go_backwards` value.*forward_layer\.go_backwards=False, "
                r"backward_layer\.go_backwards=False",
    ),
    "return_sequences": (
        {"return_sequences": True}, {"go_backwards": True},
        r"same value for attribute 'return_sequences', got True for the forward layer "
        r"and False for the backward layer",
    ),
    "return_state": (
        {}, {"go_backwards": True, "return_state": True},
        r"attribute 'return_state', got False for the forward layer and True",
    ),
    "stateful": (
        {"stateful": True}, {"go_backwards": True}, r"attribute 'stateful', got True",
    ),
    "time_major": (
        {}, {"go_backwards": True, "time_major": True}, r"attribute 'time_major', got False",
    ),
}


@pytest.mark.parametrize("case", BIDIRECTIONAL_MISMATCHES)
def test_bidirectional_raises_with_mismatched_layers(case):
    forward, backward, match = BIDIRECTIONAL_MISMATCHES[case]
    with pytest.raises(ValueError, match=match):
        rnnkit.Bidirectional(rnnkit.LSTM(4, **forward), backward_layer=rnnkit.LSTM(4, **backward))


@pytest.mark.parametrize("merge_mode", ["sum", "mul", "ave"])
def test_bidirectional_raises_with_unmergeable_output_sizes(merge_mode):
    with pytest.raises(ValueError, match=rf"merge_mode='{merge_mode}'.*3.*4"):
        rnnkit.Bidirectional(
            rnnkit.SimpleRNN(3),
            backward_layer=rnnkit.SimpleRNN(4, go_backwards=True),
            merge_mode=merge_mode,
        )


def test_bidirectional_concat_accepts_different_output_sizes():
    layer = rnnkit.Bidirectional(
        rnnkit.SimpleRNN(3, seed=1), backward_layer=rnnkit.SimpleRNN(4, go_backwards=True, seed=2)
    )
    assert layer(_inputs()).shape == (B, 7)


def test_bidirectional_raises_with_layers_of_two_dtypes():
    with pytest.raises(ValueError, match=r"dtype.*float32.*float64"):
        rnnkit.Bidirectional(
            rnnkit.SimpleRNN(3),
            backward_layer=rnnkit.SimpleRNN(3, go_backwards=True, dtype="float64"),
        )
