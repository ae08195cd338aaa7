"""Tests for rnnkit.ops: values against keras.ops (NumPy backend) and dtype preservation."""

import os
import warnings

import numpy as np
import pytest

from rnnkit import ops

os.environ.setdefault("KERAS_BACKEND", "numpy")


@pytest.fixture(scope="module")
def keras():
    """Keras 3 (NumPy backend) for the parity checks; skipped when it cannot be imported."""
    try:
        import keras
    except ImportError as exc:  # not installed, or its backend is missing
        pytest.skip(f"keras is not importable: {exc}")
    return keras


def _data(dtype):
    rng = np.random.default_rng(0)
    return {
        "x": rng.standard_normal((3, 4)).astype(dtype),
        "y": rng.standard_normal((3, 4)).astype(dtype),
        "pos": rng.uniform(0.5, 2.0, (3, 4)).astype(dtype),
        "w": rng.standard_normal((4, 5)).astype(dtype),
        "b": rng.standard_normal((4,)).astype(dtype),
        "x3": rng.standard_normal((2, 3, 4)).astype(dtype),
        "w3": rng.standard_normal((2, 4, 5)).astype(dtype),
        "big": (30 * rng.standard_normal((3, 4))).astype(dtype),
    }


# name -> function(d) returning the positional args; the same args go to keras.ops.<name>.
CASES = {
    "add": lambda d: (d["x"], d["y"]),
    "add_broadcast": lambda d: (d["x"], d["b"]),
    "add_scalar": lambda d: (d["x"], 1.5),
    "subtract": lambda d: (d["x"], d["y"]),
    "subtract_scalar": lambda d: (2, d["x"]),
    "multiply": lambda d: (d["x"], d["y"]),
    "multiply_scalar": lambda d: (d["x"], 0.5),
    "divide": lambda d: (d["x"], d["pos"]),
    "divide_scalar": lambda d: (d["x"], 4.0),
    "dot": lambda d: (d["x"], d["w"]),
    "dot_3d": lambda d: (d["x3"], d["w"]),
    "dot_vec": lambda d: (d["b"], d["b"]),
    "matmul": lambda d: (d["x"], d["w"]),
    "matmul_batched": lambda d: (d["x3"], d["w3"]),
    "tanh": lambda d: (d["x"],),
    "sigmoid": lambda d: (d["big"],),
    "relu": lambda d: (d["x"],),
    "exp": lambda d: (d["x"],),
    "softmax": lambda d: (d["big"],),
    "softmax_axis0": lambda d: (d["x"], 0),
    "concatenate": lambda d: ([d["x"], d["y"], d["pos"]], -1),
    "concatenate_axis0": lambda d: ([d["x"], d["y"]], 0),
    "stack": lambda d: ([d["x"], d["y"]],),
    "stack_axis1": lambda d: ([d["x"], d["y"]], 1),
    "zeros_like": lambda d: (d["x"],),
    "ones_like": lambda d: (d["x"],),
    "transpose": lambda d: (d["x"],),
    "transpose_axes": lambda d: (d["x3"], (1, 0, 2)),
    "reshape": lambda d: (d["x"], (2, 6)),
    "reshape_minus1": lambda d: (d["x3"], (-1, 4)),
    "expand_dims": lambda d: (d["x"], 1),
    "expand_dims_last": lambda d: (d["x"], -1),
    "squeeze": lambda d: (d["x"][:, :1],),
    "squeeze_axis": lambda d: (d["x"][:1], 0),
    "sum": lambda d: (d["x"],),
    "sum_axis": lambda d: (d["x3"], 1),
    "sum_keepdims": lambda d: (d["x3"], (0, 2), True),
    "mean": lambda d: (d["x"],),
    "mean_axis": lambda d: (d["x3"], -1, True),
    "maximum": lambda d: (d["x"], d["y"]),
    "maximum_scalar": lambda d: (d["x"], 0.0),
    "minimum": lambda d: (d["x"], d["y"]),
    "clip": lambda d: (d["x"], -0.5, 0.5),
    "where": lambda d: (d["x"] > 0, d["x"], d["y"]),
    "where_scalar": lambda d: (d["x"] > 0, d["x"], 0.0),
    "cast": lambda d: (d["x"], "float64"),
    "convert_to_tensor": lambda d: (d["x"],),
    "shape": lambda d: (d["x3"],),
}


def _op_name(case):
    name = case
    while name not in ops.__all__:
        name = name.rsplit("_", 1)[0]
    return name


def test_every_public_op_has_a_case():
    covered = {_op_name(case) for case in CASES}
    # split, zeros and bias_add have their own tests below (keras.ops has no bias_add)
    assert covered | {"split", "zeros", "bias_add"} == set(ops.__all__)


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_keras_ops_float32(keras, case):
    name = _op_name(case)
    args = CASES[case](_data("float32"))
    got = getattr(ops, name)(*args)
    want = getattr(keras.ops, name)(*args)
    if name == "shape":
        assert got == tuple(want)
        return
    want = np.asarray(want)
    assert isinstance(got, np.ndarray)
    assert got.shape == want.shape
    assert got.dtype == want.dtype == np.float32 or name == "cast"
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("case", sorted(CASES))
def test_float64_stays_float64(keras, case):
    # Keras 3.15's NumPy backend returns float32 for most float64 inputs; rnnkit keeps float64
    # (rnnkit computes in float64 end to end), so only the values are compared.
    name = _op_name(case)
    args = CASES[case](_data("float64"))
    got = getattr(ops, name)(*args)
    if name == "shape":
        return
    assert got.dtype == np.float64
    want = np.asarray(getattr(keras.ops, name)(*args), dtype=np.float64)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_split_and_zeros(keras):
    x = _data("float32")["x3"]
    for sections, axis in ((2, 0), (3, 1), ([1, 3], -1), (4, 2)):
        got = ops.split(x, sections, axis)
        want = keras.ops.split(x, sections, axis)
        assert isinstance(got, list) and len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, np.asarray(w))
            assert g.dtype == np.float32
    z = ops.zeros((2, 3))
    assert z.dtype == np.float32 and z.shape == (2, 3) and not z.any()
    assert ops.zeros((2,), dtype="float64").dtype == np.float64
    assert np.asarray(keras.ops.zeros((2, 3))).dtype == z.dtype


@pytest.mark.parametrize(
    "kwargs",
    (
        {},
        {"negative_slope": 0.1},
        {"max_value": 0.5},
        {"max_value": 6.0},
        {"threshold": 0.3},
        {"threshold": -0.3},
        {"negative_slope": 0.2, "threshold": 0.3},
        {"negative_slope": 0.2, "max_value": 1.0},
        {"negative_slope": 0.2, "threshold": 0.3, "max_value": 1.0},
    ),
)
@pytest.mark.parametrize("dtype", ("float32", "float64"))
def test_relu_options_match_keras_activations(keras, kwargs, dtype):
    x = 3 * _data(dtype)["x"]
    got = ops.relu(x, **kwargs)
    want = np.asarray(keras.activations.relu(x, **kwargs), dtype=np.float64)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_relu_tf_keras_2_alpha():
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0], np.float32)
    np.testing.assert_allclose(ops.relu(x, alpha=0.1), [-0.2, -0.05, 0.0, 0.5, 2.0])
    np.testing.assert_allclose(ops.relu(x, 0.1), ops.relu(x, alpha=0.1))
    assert ops.relu(x, alpha=0.1, max_value=1.0).max() == 1.0


# --------------------------------------------------------------------------- bias_add


def test_bias_add():
    d = _data("float32")
    got = ops.bias_add(d["x"], d["b"])
    np.testing.assert_array_equal(got, d["x"] + d["b"])
    assert got.dtype == np.float32
    np.testing.assert_array_equal(ops.bias_add(d["x3"], d["b"], "channels_last"), d["x3"] + d["b"])
    # channels_first: the bias goes along axis 1
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    bias = np.array([10.0, 20.0, 30.0], np.float32)
    np.testing.assert_array_equal(
        ops.bias_add(x, bias, data_format="channels_first"), x + bias[None, :, None]
    )
    # a bias with the shape of x without its batch axis
    np.testing.assert_array_equal(ops.bias_add(d["x3"], d["x3"][0]), d["x3"] + d["x3"][0])


def test_bias_add_errors():
    d = _data("float32")
    with pytest.raises(ValueError, match="bias"):
        ops.bias_add(d["x"], np.ones(5, np.float32))
    with pytest.raises(ValueError, match="bias"):
        ops.bias_add(d["x"], np.ones((2, 2), np.float32))
    with pytest.raises(ValueError, match="data_format"):
        ops.bias_add(d["x"], d["b"], data_format="channels_middle")


# --------------------------------------------------------------------------- dtype policy


@pytest.mark.parametrize("scalar", (0.5, 2, np.float64(0.5), np.float32(0.5), np.int64(2)))
@pytest.mark.parametrize(
    "name", ("add", "subtract", "multiply", "divide", "maximum", "minimum", "dot")
)
def test_scalars_do_not_widen_float32(name, scalar):
    x = _data("float32")["x"]
    fn = getattr(ops, name)
    assert fn(x, scalar).dtype == np.float32
    assert fn(scalar, x).dtype == np.float32
    np.testing.assert_allclose(fn(x, scalar), getattr(np, name)(x, np.float32(scalar)), rtol=1e-6)


def test_float32_preserved_across_ops():
    d = _data("float32")
    x, w = d["x"], d["w"]
    mask = (x > 0).astype(np.int64)
    checks = {
        "int mask * float32": ops.multiply(mask, x),
        "bool mask * float32": ops.multiply(x > 0, x),
        "where with float64 scalar": ops.where(x > 0, x, np.float64(0.0)),
        "clip with float64 bounds": ops.clip(x, np.float64(-0.5), np.float64(0.5)),
        "concatenate with an int array": ops.concatenate([x, mask], axis=-1),
        "stack with a python list": ops.stack([x[0], [1.0, 2.0, 3.0, 4.0]]),
        "sum": ops.sum(x),
        "mean": ops.mean(x, axis=0),
        "softmax": ops.softmax(x),
        "sigmoid": ops.sigmoid(x),
        "tanh": ops.tanh(x),
        "exp": ops.exp(x),
        "relu": ops.relu(x),
        "bias_add": ops.bias_add(x, d["b"]),
        "dot": ops.dot(x, w),
        "matmul with an int matrix": ops.matmul(x, np.ones((4, 2), np.int32)),
        "divide by int": ops.divide(x, 3),
    }
    for label, value in checks.items():
        assert value.dtype == np.float32, label


def test_mixed_float_widths_promote():
    x32 = np.ones(3, np.float32)
    x64 = np.ones(3, np.float64)
    assert ops.add(x32, x64).dtype == np.float64
    assert ops.concatenate([x32, x64]).dtype == np.float64


def test_integer_and_python_inputs(keras):
    i = np.arange(6, dtype=np.int32).reshape(2, 3)
    for name in ("exp", "tanh", "sigmoid", "softmax"):
        got = getattr(ops, name)(i)
        assert got.dtype == np.float32, name
        np.testing.assert_allclose(got, np.asarray(getattr(keras.ops, name)(i)), rtol=1e-6)
    assert ops.mean(i).dtype == np.float32
    assert ops.divide(i, 2).dtype == np.float32
    assert ops.add(i, 1).dtype == np.int32
    assert ops.add(i, 1.5).dtype == np.float32
    flags = np.ones(3, bool)
    assert ops.sum(flags).dtype == np.int32 == np.asarray(keras.ops.sum(flags)).dtype
    assert ops.sum(i).dtype == np.int32
    assert ops.relu(i).dtype == np.int32
    assert ops.clip(i, 1, 3).dtype == np.int32
    # Python data converts as in Keras: floats to float32, ints to int32
    for value in (1.5, [1.0, 2.0], [[1, 2.5]], 3, [1, 2], True, []):
        got = ops.convert_to_tensor(value)
        want = np.asarray(keras.ops.convert_to_tensor(value))
        assert got.dtype == want.dtype, value
        np.testing.assert_array_equal(got, want)
    assert ops.convert_to_tensor([1, 2], dtype="float64").dtype == np.float64
    assert ops.zeros_like([1.0, 2.0]).dtype == np.float32


def test_convert_to_tensor_does_not_copy_arrays():
    x = np.ones((2, 2), np.float32)
    assert ops.convert_to_tensor(x) is x
    assert ops.cast(x, "float32") is x
    with pytest.raises(ValueError, match="sparse"):
        ops.convert_to_tensor(x, sparse=True)


# --------------------------------------------------------------------------- numerics


def test_sigmoid_and_softmax_are_stable():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = ops.sigmoid(x)
        sm = ops.softmax(np.stack([x, -x]))
    np.testing.assert_allclose(s, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-20)
    np.testing.assert_allclose(sm.sum(axis=-1), 1.0, rtol=1e-6)
    assert np.all(np.isfinite(sm))


def test_nan_propagates():
    x = np.array([np.nan, 1.0, -1.0], np.float32)
    for name in ("tanh", "sigmoid", "exp", "relu"):
        assert np.isnan(getattr(ops, name)(x)[0]), name
    assert np.isnan(ops.relu(x, negative_slope=0.1)[0])
    assert np.isnan(ops.relu(x, max_value=0.5)[0])
    assert np.isnan(ops.maximum(x, 0.0)[0])
    assert np.isnan(ops.add(x, 1.0)[0])
    assert np.all(np.isnan(ops.softmax(x)))


def test_where_needs_both_branches():
    x = np.array([1.0, -1.0], np.float32)
    (idx,) = ops.where(x > 0)
    np.testing.assert_array_equal(idx, [0])
    with pytest.raises(ValueError, match="x2"):
        ops.where(x > 0, x)


# --------------------------------------------------------------------------- tf.keras 2 (K) style


def test_k_style_defaults():
    K = ops
    a = np.ones((2, 3), np.float32)
    b = np.zeros((2, 2), np.float32)
    assert K.concatenate([a, b]).shape == (2, 5)  # K.concatenate joins the last axis
    assert K.expand_dims(a).shape == (2, 3, 1)  # K.expand_dims defaults to the last axis
    assert K.squeeze(K.expand_dims(a), -1).shape == (2, 3)
    assert K.dot(a, np.ones((3, 4), np.float32)).shape == (2, 4)
    assert K.shape(a) == (2, 3)
    assert K.cast(a, "int32").dtype == np.int32
    assert K.clip(a * 5, 0.0, 2.0).max() == 2.0


def test_all_ops_have_docstrings():
    for name in ops.__all__:
        doc = getattr(ops, name).__doc__
        assert doc and doc.strip(), name


# ------------------------------------------------------------ the tf.keras 2 docstring's cell


class _MinimalRNNCell:
    """The MinimalRNNCell of Keras's RNN docstring, with its weights given directly."""

    def __init__(self, backend_ops, kernel, recurrent_kernel):
        self.ops = backend_ops
        self.kernel = kernel
        self.recurrent_kernel = recurrent_kernel
        self.state_size = kernel.shape[1]

    def call(self, inputs, states):
        ops = self.ops
        prev_output = states[0]
        h = ops.matmul(inputs, self.kernel)
        output = h + ops.matmul(prev_output, self.recurrent_kernel)
        return output, [output]


@pytest.mark.parametrize("dtype", ("float32", "float64"))
def test_minimal_rnn_cell_matches_keras_ops(keras, dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 3)).astype(dtype)
    kernel = rng.uniform(-0.05, 0.05, (3, 4)).astype(dtype)
    recurrent = rng.uniform(-0.05, 0.05, (4, 4)).astype(dtype)
    ours = _MinimalRNNCell(ops, kernel, recurrent)
    theirs = _MinimalRNNCell(keras.ops, kernel, recurrent)
    state_ours = [ops.zeros((2, 4), dtype=dtype)]
    state_theirs = [np.zeros((2, 4), dtype)]
    for t in range(x.shape[1]):
        out_ours, state_ours = ours.call(x[:, t], state_ours)
        out_theirs, state_theirs = theirs.call(x[:, t], state_theirs)
        assert out_ours.dtype == np.dtype(dtype)
        np.testing.assert_allclose(out_ours, np.asarray(out_theirs), rtol=1e-5, atol=1e-7)
