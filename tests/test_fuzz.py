"""Property-based fuzzing of the public API (hypothesis; docs/reliability.md, "Hostile input").

Every call either succeeds with the result of the NumPy loop on the same values given as plain
C-contiguous arrays of the layer's dtype, or raises ValueError/TypeError (MemoryError for sizes
past the machine) whose message names the offending argument and what came; a failed call
changes nothing (weights, carried states, built shape) and never writes into the caller's
arrays. A crash, a hang or another exception type fails the test.

Fuzzed: shapes (zero batch, zero timesteps, zero features, wrong ranks, huge broadcast dims),
dtypes (float16/32/64, ints, uints, bool, byte-swapped, complex, object, str, datetime),
layouts (C, Fortran, strided, negative strides, read-only, broadcast, unaligned, nested lists),
every layer option, masks and initial states of any form (valid, wrong count, wrong shape,
wrong dtype, junk), constants, training; stateful layers through sequences of calls,
reset_states and set_weights; constructors; one-step cell calls.

Runtime: the default profile ("rnnkit-ci": derandomized, so CI sees the same inputs every run)
tries a few hundred inputs per test in well under a minute in total. More:
RNNKIT_FUZZ_EXAMPLES=N runs N inputs per test with fresh random seeds (profile "rnnkit-long").
The number of inputs tried is printed at the end of the module.
"""

import collections
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

import rnnkit
import rnnkit.testing
from conftest import (
    builtin_layers,
    flatten,
    recurrent_cell,
    recurrent_cell_class,
    state_sizes,
)
from rnnkit.examples import MinimalRNNCell  # Keras's documented custom cell
from rnnkit.layers.recurrent import registry

# ------------------------------------------------------------------------------- settings
_EXAMPLES = int(os.environ.get("RNNKIT_FUZZ_EXAMPLES") or 0)
settings.register_profile(
    "rnnkit-ci",
    max_examples=1000,
    deadline=None,  # the first call of a layer compiles nothing, but the NumPy loop varies
    database=None,  # no .hypothesis/ directory in the work tree
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
settings.register_profile(
    "rnnkit-long",
    parent=settings.get_profile("rnnkit-ci"),
    max_examples=max(_EXAMPLES, 1),
    derandomize=False,
)
PROFILE = settings.get_profile("rnnkit-long" if _EXAMPLES else "rnnkit-ci")


def fuzz(share=1.0):
    """The profile, with `share` of its examples (some properties cost more per input)."""
    return settings(PROFILE, max_examples=max(1, int(PROFILE.max_examples * share)))


TRIED = collections.Counter()  # inputs tried per test, printed when the module finishes


@pytest.fixture(scope="module", autouse=True)
def _report_inputs_tried(request):
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and TRIED:
        counts = ", ".join(f"{name} {n}" for name, n in sorted(TRIED.items()))
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\ntest_fuzz: {sum(TRIED.values())} inputs tried ({counts})")


# ------------------------------------------------------------------------------- layers

# "exponential" is left out here: it overflows within a few steps, where the last bit of the
# summation order decides between a huge number and inf (test_numerics covers it).
ACTIVATIONS = (
    "tanh", "sigmoid", "hard_sigmoid", "relu", "linear", None, "elu", "selu", "softsign",
    "softplus", "swish", "silu", "gelu", "hard_silu",
)
CELL_KINDS = (*builtin_layers(variants=True), "custom")
OPTIONS = (
    "return_sequences", "return_state", "go_backwards", "time_major", "zero_output_for_mask",
    "unroll",
)


@st.composite
def cell_specs(draw, dtype):
    kind = draw(st.sampled_from(CELL_KINDS))
    spec = {"kind": kind, "units": draw(st.integers(1, 4))}
    if kind != "custom":
        spec["activation"] = draw(st.sampled_from(ACTIVATIONS))
        spec["recurrent_activation"] = draw(st.sampled_from(ACTIVATIONS))
        spec["use_bias"] = draw(st.booleans())
        spec["dropout"] = draw(st.sampled_from([0.0, 0.0, 0.25]))
        if dtype == "float32" and draw(st.integers(0, 5)) == 0:
            spec["precision"] = "bfloat16"
    return spec


@st.composite
def layer_specs(draw, stateful=False):
    dtype = draw(st.sampled_from(["float32", "float64"]))
    structure = draw(st.sampled_from(["cell", "cell", "stacked", "bidirectional"]))
    if stateful and structure == "bidirectional":
        structure = "cell"
    count = 2 if structure == "stacked" else 1
    return {
        "dtype": dtype,
        "structure": structure,
        "cells": [draw(cell_specs(dtype)) for _ in range(count)],
        "options": {name: draw(st.booleans()) for name in OPTIONS},
        "merge_mode": draw(st.sampled_from(["concat", "sum", "mul", "ave", None])),
        "stateful": stateful,
        "built": draw(st.booleans()),  # False: the fuzzed call is the layer's first
        "features": draw(st.integers(1, 4)),
        "seed": draw(st.integers(0, 2**16)),
    }


def make_cell(spec, dtype):
    if spec["kind"] == "custom":
        return MinimalRNNCell(spec["units"], dtype=dtype)
    arguments = recurrent_cell_class(spec["kind"]).ARGUMENTS  # SimpleRNN: no recurrent_activation
    kwargs = {k: v for k, v in spec.items() if k in arguments and k != "units"}
    return recurrent_cell(spec["kind"], spec["units"], dtype=dtype, seed=1, **kwargs)


def make_layer(spec, **overrides):
    dtype = spec["dtype"]
    options = {**spec["options"], "stateful": spec["stateful"], **overrides}
    cells = [make_cell(c, dtype) for c in spec["cells"]]
    if spec["structure"] == "stacked":
        return rnnkit.RNN(cells, **options)
    if spec["structure"] == "bidirectional":  # as Keras 3: the wrapped layer goes forwards
        layer = rnnkit.RNN(cells[0], **{**options, "go_backwards": False})
        return rnnkit.Bidirectional(layer, merge_mode=spec["merge_mode"])
    return rnnkit.RNN(cells[0], **options)


def random_weights(layer, rng):
    return [rng.uniform(-0.5, 0.5, w.shape).astype(w.dtype) for w in layer.get_weights()]


def build(layer, spec, rng):
    layer.build((2, 3, spec["features"]))
    layer.set_weights(random_weights(layer, rng))


def state_groups(layer):
    """State sizes nested per cell, as the flat initial_state lists them (Bidirectional:
    forward's groups then backward's)."""
    if isinstance(layer, rnnkit.Bidirectional):
        return state_groups(layer.forward_layer) + state_groups(layer.backward_layer)
    return layer._groups()


def has_dropout(spec):
    return any(c.get("dropout", 0) for c in spec["cells"])


# ------------------------------------------------------------------------------- arrays
VALID_DTYPES = (
    "float32", "float64", "float16", "int8", "int32", "int64", "uint8", "uint64", "bool",
    ">f4", ">f8", "<i2",
)
INVALID_DTYPES = ("complex64", "complex128", "object", "U3", "datetime64[s]", "timedelta64[s]")
LAYOUTS = (
    "C", "F", "strided", "reversed", "readonly", "broadcast", "list", "unaligned", "byteswapped",
)


def values(rng, shape, dtype, scale=2.0):
    """Moderate values of any dtype (floats in [-scale, scale], ints in [-3, 3], bools)."""
    kind = np.dtype(dtype).kind if dtype not in INVALID_DTYPES else None
    if kind == "b":
        return rng.random(shape) < 0.5
    if kind in ("i", "u"):
        low = 0 if kind == "u" else -3
        return rng.integers(low, 4, shape).astype(dtype)
    if kind == "f":
        return rng.uniform(-scale, scale, shape).astype(dtype)
    floats = rng.uniform(-2, 2, shape)
    if dtype.startswith("complex"):
        return (floats + 1j).astype(dtype)
    if dtype == "object":
        return floats.astype(object)
    if dtype == "U3":
        return floats.astype("U3")
    return floats.astype("int64").astype(dtype)  # datetime64 / timedelta64


def arrange(array, layout):
    """`array`'s values in `layout`; returns (the value to pass, its logical array)."""
    if array.ndim == 0:
        return (array.tolist() if layout == "list" else array.copy()), array
    if layout == "F":
        return np.asfortranarray(array), array
    if layout == "strided":
        big = np.zeros(tuple(2 * n for n in array.shape), array.dtype)
        view = big[tuple(slice(None, None, 2) for _ in array.shape)]
        view[...] = array
        return view, array
    if layout == "reversed":
        flipped = array[tuple(slice(None, None, -1) for _ in array.shape)].copy()
        return flipped[tuple(slice(None, None, -1) for _ in array.shape)], array
    if layout == "readonly":
        copy = array.copy()
        copy.flags.writeable = False
        return copy, array
    if layout == "broadcast" and array.ndim >= 1:
        view = np.broadcast_to(array[:1], array.shape)
        return view, np.array(view)
    if layout == "list":
        return array.tolist(), array
    if layout == "unaligned" and array.dtype.itemsize > 1 and array.dtype != object:
        buffer = np.zeros(array.nbytes + array.dtype.itemsize, np.uint8)
        view = buffer[1 : 1 + array.nbytes].view(array.dtype).reshape(array.shape)
        view[...] = array
        return view, array
    if layout == "byteswapped" and array.dtype.kind in "biuf" and array.dtype.itemsize > 1:
        return array.astype(array.dtype.newbyteorder("S")), array
    return np.ascontiguousarray(array), array


def lost_by_tolist(array):
    """tolist() of an array with a zero dimension loses the dimensions after it."""
    return np.shape(array.tolist()) != array.shape


WEIGHT_DTYPES = ("float32", "float64", "float16", ">f4", ">f8", "bool")


@st.composite
def hostile_array(draw, rng, shape, valid=True, dtypes=VALID_DTYPES, scale=2.0, lists=True):
    """(value to pass, logical array, still valid?). `lists=False`: no nested-list layout
    where it would not be valid (a zero dimension)."""
    dtype = draw(st.sampled_from(dtypes if valid else INVALID_DTYPES))
    array = values(rng, shape, dtype, scale)
    layouts = LAYOUTS if valid else ("C", "F", "strided")
    if not lists:
        layouts = tuple(name for name in layouts if name != "list")
    layout = draw(st.sampled_from(layouts))
    value, logical = arrange(array, layout)
    if layout == "list" and lost_by_tolist(array):
        valid = False
    return value, logical, valid


# ------------------------------------------------------------------------------- call cases
NAMES = {
    "inputs": ("inputs", "Input 0", "input sequences"),
    "mask": ("mask",),
    "initial_state": ("initial_state",),
    "constants": ("constants",),
    "training": ("training",),
}


@st.composite
def call_cases(draw, layer, spec, batch=None):
    """Arguments of one call, their canonical forms and the set of invalid argument names."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    time_major = spec["options"]["time_major"]
    invalid = set()
    clean = draw(st.booleans())  # half the cases: every argument valid, in any valid form
    features = spec["features"]
    built = getattr(layer, "built", False)
    if batch is None:
        batch = draw(st.integers(0, 3))
    steps = draw(st.integers(1, 4))
    problem = "none" if clean else draw(
        st.sampled_from(
            ["none"] * 6
            + ["zero_steps", "zero_features", "wrong_features", "rank", "dtype", "ragged"]
        )
    )
    if problem == "zero_steps":
        steps = 0
    if problem == "zero_features":
        features = 0
    if problem == "wrong_features" and built:
        features += draw(st.integers(1, 2))
    shape = (steps, batch, features) if time_major else (batch, steps, features)
    if problem == "rank":
        shape = draw(st.sampled_from([(), (batch,), (batch, steps), (batch, steps, features, 1)]))
    x, x_logical, x_valid = draw(
        hostile_array(rng, shape, valid=problem != "dtype", lists=not clean or 0 not in shape)
    )
    if problem == "ragged":
        x = [[[0.0] * features] * steps, [[0.0] * (features + 1)]]
    if problem not in ("none", "wrong_features") or (problem == "wrong_features" and built):
        invalid.add("inputs")
    if not x_valid:
        invalid.add("inputs")

    kwargs, canonical = {"inputs": x}, {"inputs": None}
    if "inputs" not in invalid:
        canonical["inputs"] = np.array(x_logical, dtype=spec["dtype"])

    mask_shape = (steps, batch) if time_major else (batch, steps)
    mask_kinds = ["none", "valid"] if clean else ["none", "valid", "shape", "dtype", "ragged"]
    mask_kind = draw(st.sampled_from(mask_kinds))
    if mask_kind != "none":
        if mask_kind == "shape":
            wrong = [(batch + 1, steps), (batch, steps + 1), (batch * steps,), (*mask_shape, 1)]
            if batch != steps:
                wrong.append(mask_shape[::-1])
            m_shape = draw(st.sampled_from(wrong))
        else:
            m_shape = mask_shape
        m_valid = mask_kind in ("valid", "shape")
        m_dtype = draw(st.sampled_from(["bool", "bool", "int8", "int64", "float32", "uint8"]))
        m_array = rng.random(m_shape) < 0.7 if m_valid else values(rng, m_shape, "complex64")
        if m_valid and m_dtype != "bool":
            m_array = m_array.astype(m_dtype) * draw(st.sampled_from([1, 2]))
        if mask_kind == "dtype":
            m_array = values(rng, m_shape, draw(st.sampled_from(INVALID_DTYPES)))
        layouts = LAYOUTS if m_valid else ("C", "F")
        if clean and 0 in m_shape:
            layouts = tuple(name for name in layouts if name != "list")
        layout = draw(st.sampled_from(layouts))
        mask, m_logical = arrange(m_array, layout)
        if mask_kind == "ragged":
            mask = [[True] * steps, [True] * (steps + 1)]
        if mask_kind != "valid" or (layout == "list" and lost_by_tolist(m_array)):
            invalid.add("mask")
        kwargs["mask"] = mask
        canonical["mask"] = np.array(m_logical).astype(bool) if "mask" not in invalid else None

    state_kinds = ["none", "valid"]
    if not clean:
        state_kinds += ["count", "shape", "dtype", "junk", "nested_lists"]
    state_kind = draw(st.sampled_from(state_kinds))
    if state_kind != "none":
        groups = state_groups(layer)
        arrays, logical, lists = [], [], False
        for group in groups:
            for size in group:
                value, array, ok = draw(
                    hostile_array(rng, (batch, size), lists=state_kind == "nested_lists")
                )
                # A state given as nested Python lists reads as the nested per-cell form:
                # initial_state takes arrays (the error names it).
                lists = lists or not ok or isinstance(value, list)
                arrays.append(value)
                logical.append(np.array(array, dtype=spec["dtype"]))
        if state_kind == "nested_lists" and not lists:
            state_kind = "valid"
        position = draw(st.integers(0, len(arrays) - 1))
        if state_kind == "count":
            if draw(st.booleans()) or len(arrays) == 1:
                arrays.append(arrays[0])
            else:
                del arrays[position]
        elif state_kind == "shape":
            size = logical[position].shape[1]
            wrong = [(batch + 1, size), (batch, size + 1), (size,), (1, batch, size)]
            arrays[position] = np.zeros(draw(st.sampled_from(wrong)))
        elif state_kind == "dtype":
            arrays[position] = values(rng, (batch, 1), draw(st.sampled_from(INVALID_DTYPES)))
        elif state_kind == "junk":
            arrays[position] = draw(st.sampled_from([None, "abc", {}, [], 1.5]))
        form = draw(st.sampled_from(["flat", "nested", "bare"]))
        value = arrays
        if form == "nested" and spec["structure"] == "stacked" and state_kind == "valid":
            value, start = [], 0
            for group in groups:
                value.append(arrays[start : start + len(group)])
                start += len(group)
        if form == "bare" and len(arrays) == 1 and not isinstance(arrays[0], list):
            value = arrays[0]
            if spec["structure"] == "bidirectional":
                invalid.add("initial_state")
        if state_kind != "valid":
            invalid.add("initial_state")
        kwargs["initial_state"] = value
        canonical["initial_state"] = logical

    if not clean and draw(st.integers(0, 7)) == 0:  # no cell here takes constants
        kwargs["constants"] = [np.zeros((batch, 2))]
        invalid.add("constants")
    trainings = [False] * 6 + [None, 0] + ([] if has_dropout(spec) else [True, "yes"])
    if not clean:
        trainings += [True, "yes", np.array([1, 0])]
    training = draw(st.sampled_from(trainings))
    if training is not False:
        kwargs["training"] = training
        if isinstance(training, np.ndarray) or (training and has_dropout(spec)):
            invalid.add("training")
    canonical["training"] = False
    return kwargs, canonical, invalid


# ------------------------------------------------------------------------------- checks
def assert_same_result(got, want, dtype):
    got, want = flatten(got), flatten(want)
    assert len(got) == len(want)
    tol = 2e-4 if dtype == "float32" else 1e-9
    for g, w in zip(got, want):
        assert isinstance(g, np.ndarray) and g.dtype == np.dtype(dtype), (type(g), g.dtype)
        assert g.shape == w.shape
        # Rounding errors scale with the largest values summed (cancellation), so the absolute
        # tolerance does too.
        finite = np.abs(w[np.isfinite(w)])
        scale = max(1.0, float(finite.max())) if finite.size else 1.0
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol * scale)


def snapshot(layer):
    """Everything a failed call must leave as it was."""
    states = layer.states if getattr(layer, "stateful", False) else None
    rnn = layer.forward_layer if isinstance(layer, rnnkit.Bidirectional) else layer
    return {
        "weights": [w.copy() for w in layer.get_weights()],
        "states": None if states is None else [s.copy() for s in flatten(states)],
        "built": layer.built,
        "input_dim": rnn._expected_input_dim(),
    }


def assert_unchanged(layer, before):
    after = snapshot(layer)
    assert after["built"] == before["built"]
    assert after["input_dim"] == before["input_dim"]
    assert len(after["weights"]) == len(before["weights"])
    for a, b in zip(after["weights"], before["weights"]):
        np.testing.assert_array_equal(a, b)
    if before["states"] is None:
        assert after["states"] is None
    else:
        for a, b in zip(after["states"], before["states"]):
            np.testing.assert_array_equal(a, b)


def assert_names_argument(error, invalid):
    message = str(error)
    named = [name for name in invalid if any(token in message for token in NAMES[name])]
    assert named, f"{type(error).__name__} names none of {sorted(invalid)}: {message}"
    if set(named) & {"inputs", "mask", "initial_state"}:
        assert "receiv" in message.lower(), f"message does not say what came: {message}"


def copies_of(kwargs):
    """Snapshots of the caller's writeable arrays, to check that no call writes into them."""
    return [
        (leaf, np.array(leaf, copy=True))
        for leaf in flatten(list(kwargs.values()))
        if isinstance(leaf, np.ndarray) and leaf.flags.writeable and leaf.dtype.kind in "biuf"
    ]


def assert_not_written(copies):
    for array, copy in copies:
        np.testing.assert_array_equal(array, copy)


# ------------------------------------------------------------------------------- properties
@fuzz()
@given(st.data())
def test_any_call_matches_the_numpy_loop_or_raises_a_clear_error(data):
    TRIED["call"] += 1
    spec = data.draw(layer_specs(), label="layer")
    layer = make_layer(spec)
    rng = np.random.default_rng(spec["seed"])
    if spec["built"]:
        build(layer, spec, rng)
    kwargs, canonical, invalid = data.draw(call_cases(layer, spec), label="call")
    note(f"invalid arguments: {sorted(invalid)}")
    event(f"{spec['structure']}: " + ("valid" if not invalid else " + ".join(sorted(invalid))))
    before = snapshot(layer)
    copies = copies_of(kwargs)
    if invalid:
        with pytest.raises((ValueError, TypeError)) as info:
            layer(**kwargs)
        assert_names_argument(info.value, invalid)
        assert_unchanged(layer, before)
    else:
        got = layer(**kwargs)
        with rnnkit.testing.python_loop():
            want = layer(**canonical)
        assert_same_result(got, want, spec["dtype"])
        again = layer(**kwargs)  # the fast path, once a plan exists, agrees too
        assert_same_result(again, want, spec["dtype"])
        for a, b in zip(layer.get_weights(), before["weights"] if before["built"] else []):
            np.testing.assert_array_equal(a, b)
    assert_not_written(copies)


@st.composite
def weight_lists(draw, layer, rng):
    """(weights to pass, canonical list or None, valid?)."""
    targets = layer.get_weights()
    kind = draw(st.sampled_from(["valid"] * 4 + ["count", "shape", "dtype", "junk", "type"]))
    weights = []
    for target in targets:
        value, logical, ok = draw(
            hostile_array(rng, target.shape, dtypes=WEIGHT_DTYPES, scale=0.5)
        )
        if not ok:
            kind = "lost_by_tolist"
        weights.append((value, np.array(logical, dtype=target.dtype)))
    passed = [w for w, _ in weights]
    canonical = [c for _, c in weights]
    position = draw(st.integers(0, max(len(passed) - 1, 0)))
    if kind == "count":
        passed = passed[:-1] if draw(st.booleans()) and passed else [*passed, passed[0]]
    elif kind == "shape" and passed:
        passed[position] = np.zeros((*np.shape(canonical[position]), 1))
    elif kind == "dtype" and passed:
        shape = canonical[position].shape
        passed[position] = values(rng, shape, draw(st.sampled_from(INVALID_DTYPES)))
    elif kind == "junk" and passed:
        passed[position] = draw(st.sampled_from([None, "abc", {}, [[1], [1, 2]]]))
    elif kind == "type":
        passed = draw(st.sampled_from([np.zeros(3), 5, "weights", None, (w for w in passed)]))
    return passed, canonical, kind == "valid"


@st.composite
def stateful_operations(draw):
    ops = []
    for _ in range(draw(st.integers(1, 6))):
        ops.append(draw(st.sampled_from(
            ["call", "call", "call", "bad_batch", "reset", "reset_to", "set_weights"]
        )))
    return ops


@fuzz(share=0.5)
@given(st.data())
def test_stateful_sequences_match_the_numpy_loop_and_failures_change_nothing(data):
    TRIED["stateful"] += 1
    spec = data.draw(layer_specs(stateful=True), label="layer")
    layer = make_layer(spec)
    rng = np.random.default_rng(spec["seed"])
    build(layer, spec, rng)
    # The reference: the same layer, not stateful, given the carried states explicitly.
    twin = make_layer(spec, stateful=False, return_state=True)
    build(twin, spec, rng)
    twin.set_weights(layer.get_weights())
    carried = None  # what layer.states must be (flat)
    batch = None
    for op in data.draw(stateful_operations(), label="operations"):
        TRIED["stateful_ops"] += 1
        note(f"{op}; batch {batch}")
        before = snapshot(layer)
        if op in ("call", "bad_batch"):
            wrong = op == "bad_batch" and batch is not None
            call_batch = batch if not wrong else batch + data.draw(st.integers(1, 2))
            kwargs, canonical, invalid = data.draw(call_cases(layer, spec, batch=call_batch))
            if wrong:
                invalid.add("inputs")
            if invalid:
                with pytest.raises((ValueError, TypeError)) as info:
                    layer(**kwargs)
                assert_names_argument(info.value, invalid)
                assert_unchanged(layer, before)
                continue
            got = layer(**kwargs)
            reference = dict(canonical)
            if reference.get("initial_state") is None and carried is not None:
                reference["initial_state"] = carried
            with rnnkit.testing.python_loop():
                want = twin(**reference)
            want_output, want_states = want[0], flatten(want[1:])
            got_output = got[0] if spec["options"]["return_state"] else got
            assert_same_result(got_output, want_output, spec["dtype"])
            assert_same_result(flatten(layer.states), want_states, spec["dtype"])
            carried = [s.copy() for s in flatten(layer.states)]
            batch = carried[0].shape[0]
        elif op == "reset":
            layer.reset_states()
            if carried is not None:
                carried = [np.zeros_like(s) for s in carried]
                assert_same_result(flatten(layer.states), carried, spec["dtype"])
        elif op == "reset_to":
            kwargs, canonical, invalid = data.draw(
                call_cases(layer, spec, batch=batch if batch is not None else 2)
            )
            states = kwargs.get("initial_state")
            if states is None or (batch is None and "initial_state" in invalid):
                continue  # before the first call any batch size is valid: not modelled here
            if "initial_state" in invalid:
                with pytest.raises((ValueError, TypeError)) as info:
                    layer.reset_states(states)
                assert "states" in str(info.value)
                assert_unchanged(layer, before)
                continue
            layer.reset_states(states)
            carried = canonical["initial_state"]
            batch = carried[0].shape[0]
            assert_same_result(flatten(layer.states), carried, spec["dtype"])
        else:
            weights, canonical_weights, valid = data.draw(weight_lists(layer, rng))
            if not valid:
                with pytest.raises((ValueError, TypeError)) as info:
                    layer.set_weights(weights)
                assert "eight" in str(info.value)  # "weights" / "Weight `kernel` ..."
                assert_unchanged(layer, before)
                continue
            layer.set_weights(weights)
            twin.set_weights(canonical_weights)
            for got, want in zip(layer.get_weights(), canonical_weights):
                np.testing.assert_array_equal(got, want)


CONSTRUCTOR_ARGUMENTS = {
    "units": (
        [1, 3, np.int64(2), np.uint8(4)],
        [0, -1, 2.0, True, "3", None, 2**40, [3]],
    ),
    "activation": (
        ["tanh", "relu", None, "linear", "gelu", np.tanh],
        ["nope", 5, ["tanh"], ""],
    ),
    "dropout": ([0.0, 0.5, 1, "0.25"], [-0.1, 1.5, float("nan"), "x", None]),
    "dtype": (
        [None, "float32", "float64", np.float64, np.dtype("float32")],
        ["int32", "float16", "bogus", 3, object],
    ),
    "use_bias": ([True, False], []),
    "seed": ([None, 0, 12345], [1.5, "seed"]),
}


@fuzz(share=0.5)
@given(st.data())
def test_constructors_accept_valid_arguments_and_name_invalid_ones(data):
    TRIED["constructor"] += 1
    layer_class = data.draw(
        st.sampled_from([*registry.layer_classes().values(), rnnkit.LSTMCell])
    )
    kwargs, invalid = {}, set()
    for name, (good, bad) in CONSTRUCTOR_ARGUMENTS.items():
        if name != "units" and data.draw(st.booleans()):
            continue  # left at its default
        use_bad = bool(bad) and data.draw(st.integers(0, 4)) == 0
        kwargs[name] = data.draw(st.sampled_from(bad if use_bad else good))
        if use_bad:
            invalid.add(name)
    note(f"invalid: {sorted(invalid)}")
    if invalid:
        with pytest.raises((ValueError, TypeError)) as info:
            layer_class(**kwargs)
        message = str(info.value)
        assert any(name in message for name in invalid), message
        return
    layer = layer_class(**kwargs)
    if isinstance(layer, rnnkit.RNN):
        x = np.ones((2, 3, 2), "float32")
        output = layer(x)
        assert output.shape == (2, int(kwargs["units"]))
        assert output.dtype == np.dtype(layer.dtype)


@fuzz(share=0.5)
@given(st.data())
def test_one_step_cell_calls_match_call_or_raise_a_clear_error(data):
    TRIED["cell_step"] += 1
    dtype = data.draw(st.sampled_from(["float32", "float64"]))
    spec = data.draw(cell_specs(dtype).filter(lambda s: s["kind"] != "custom"))
    cell = make_cell(spec, dtype)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    features = 3
    if data.draw(st.booleans()):
        cell.build((2, features))
    batch = data.draw(st.integers(0, 3))
    problem = data.draw(st.sampled_from(["none"] * 5 + ["rank", "features", "count", "shape"]))
    x_shape = (batch, features)
    if problem == "rank":
        x_shape = data.draw(st.sampled_from([(batch,), (batch, 2, features)]))
    if problem == "features" and cell.built:
        x_shape = (batch, features + 1)
    x, x_logical, x_valid = data.draw(hostile_array(rng, x_shape))
    sizes = state_sizes(spec["kind"], cell.units)
    states = [np.array(rng.uniform(-1, 1, (batch, s)), dtype=dtype) for s in sizes]
    passed = list(states)
    if problem == "count":
        passed = passed[:-1]
    if problem == "shape":
        passed[0] = np.zeros((batch, cell.units + 1))
    invalid = (problem != "none" and not (problem == "features" and not cell.built)) or (
        not x_valid
    )
    if invalid:
        with pytest.raises((ValueError, TypeError)) as info:
            cell(x, passed)
        assert "inputs" in str(info.value) or "states" in str(info.value), str(info.value)
        return
    output, new_states = cell(x, passed)
    want_output, want_states = cell.call(np.array(x_logical, dtype=dtype), states)
    assert_same_result([output, *new_states], [want_output, *want_states], dtype)


def _allocation_fails_cleanly():
    """Whether a request larger than the machine fails at allocation (not at first touch):
    not with vm.overcommit_memory=1, nor under ASan unless allocator_may_return_null=1."""
    try:
        with open("/proc/sys/vm/overcommit_memory") as mode:
            if mode.read().strip() == "1":
                return False
    except OSError:
        pass
    asan_options = os.environ.get("ASAN_OPTIONS", "")
    return not os.environ.get("RNNKIT_SANITIZE") or "allocator_may_return_null=1" in asan_options


@pytest.mark.skipif(not _allocation_fails_cleanly(), reason="huge allocations would not fail")
@fuzz(share=0.25)
@given(
    st.sampled_from(list(registry.layer_classes().values())),
    st.booleans(),
    st.lists(st.sampled_from([1, 3, 2**20, 2**31, 2**40]), min_size=3, max_size=3),
    st.sampled_from(["float32", "bool", "int8"]),
)
def test_huge_inputs_raise_memory_error_or_a_clear_error(layer_class, time_major, shape, dtype):
    TRIED["huge"] += 1
    if np.prod(shape, dtype=float) < 2**38:  # only what cannot be allocated (> 256 GB)
        shape = [2**20, 2**20, shape[2]]
    layer = layer_class(2, time_major=time_major)
    small = np.ones((2, 3, 3), "float32")
    before = layer(small)
    try:
        x = np.broadcast_to(np.zeros((), dtype), tuple(shape))
    except ValueError:  # NumPy itself cannot describe this array: nothing to call
        return
    with pytest.raises((MemoryError, ValueError)) as info:
        layer(x)
    if isinstance(info.value, ValueError):
        assert "nput" in str(info.value), str(info.value)
    np.testing.assert_array_equal(layer(small), before)


class FailingCell(MinimalRNNCell):
    """Raises at its `fail_at`-th step: an error from inside a run, after some steps ran."""

    def __init__(self, units, fail_at, **kwargs):
        super().__init__(units, **kwargs)
        self.fail_at, self.steps = fail_at, 0

    def call(self, inputs, states):
        self.steps += 1
        if self.steps == self.fail_at:
            raise RuntimeError("cell failed")
        return super().call(inputs, states)


@pytest.mark.parametrize("stacked", [False, True])
def test_an_error_inside_a_stateful_run_changes_nothing(stacked):
    """A cell that raises after some steps ran (the user's own error, passed through as is):
    carried states and weights stay as they were, and the next call continues from them."""
    x = np.random.default_rng(0).standard_normal((2, 5, 3)).astype("float32")

    def make(cell):
        cells = [rnnkit.LSTMCell(3, seed=1), cell] if stacked else cell
        return rnnkit.RNN(cells, stateful=True, return_sequences=True)

    layer = make(FailingCell(4, fail_at=8))  # the second call fails at its third step
    twin = make(MinimalRNNCell(4))
    twin.build(x.shape)
    layer.build(x.shape)
    twin.set_weights(layer.get_weights())
    np.testing.assert_array_equal(layer(x), twin(x))
    weights, states = layer.get_weights(), layer.states
    with pytest.raises(RuntimeError, match="cell failed"):
        layer(x)
    for got, want in zip(flatten(layer.states), flatten(states)):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(layer.get_weights(), weights):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(layer(x), twin(x))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_unaligned_inputs_equal_their_aligned_copy(dtype):
    """A view at an odd byte offset (NumPy allows it) is copied, never read in place: the
    kernels read whole elements (UBSan reported a misaligned read before this was so)."""
    rng = np.random.default_rng(0)
    x, _ = arrange(rng.standard_normal((3, 5, 4)).astype(dtype), "unaligned")
    assert not x.flags.aligned
    layer = rnnkit.LSTM(6, dtype=dtype, return_sequences=True)
    want = layer(np.array(x))
    for _ in range(3):  # the validating path, then the fast path's plan
        np.testing.assert_array_equal(layer(x), want)
    kernel = layer.cell.compiled_kernel()
    states = [np.zeros((3, 6), dtype) for _ in range(2)]
    with pytest.raises(ValueError, match="aligned"):
        kernel.run(x, False, states, None, None, np.zeros((3, 6), dtype), False, False, False, 0)
