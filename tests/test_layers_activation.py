"""ReLU, LeakyReLU, PReLU, ELU and Softmax against live Keras 3.

Inputs include the edge values of each function (0, the threshold, max_value) besides random
ones; PReLU's alpha is random and copied across with `set_weights(get_weights())`; Softmax is
called with masks of every broadcastable shape and kind (bool, float, int) as Keras takes them.
Then shapes, config and pickle round trips, the Keras-config constructor path and the errors.
"""

import pickle

import numpy as np
import pytest

import rnnkit
from conftest import assert_arrays_equal, assert_results_close, import_keras, random_mask

keras = import_keras()
K = keras.layers
R = rnnkit.layers
DTYPES = ("float32", "float64")
TOL = {"float32": {"rtol": 1e-5, "atol": 1e-5}, "float64": {"rtol": 1e-12, "atol": 1e-12}}
SHAPE = (4, 5, 3)


def inputs(rng, shape, dtype, scale=4.0, edges=()):
    """Random values spanning the interesting range, with the edge values written in."""
    x = (rng.standard_normal(shape) * scale).astype(dtype)
    flat = x.reshape(-1)
    for i, value in enumerate((0.0, *edges)):
        flat[i] = value
        flat[-1 - i] = -value
    return x


def keras_output_mask(layer, x, mask):
    """The mask Keras's Layer.__call__ attaches to the output (None unless supported)."""
    return layer.compute_mask(x, mask) if layer.supports_masking else None


def compare(kl, rk, x, mask, dtype, keras_takes_mask=False):
    want = kl(x, mask=mask) if keras_takes_mask and mask is not None else kl(x)
    got, got_mask = rk._run(x, mask, False)
    assert_results_close(got, np.asarray(want), dtype, tolerances=TOL)
    want_mask = keras_output_mask(kl, x, mask)
    if want_mask is None:
        assert got_mask is None
    else:
        np.testing.assert_array_equal(got_mask, want_mask)


def check_round_trips(rk, x, mask):
    want, want_mask = rk._run(x, mask, False)
    clone = type(rk).from_config(rk.get_config())
    clone.build(x.shape)
    clone.set_weights(rk.get_weights())
    unpickled = pickle.loads(pickle.dumps(rk))
    for other in (clone, unpickled):
        got, got_mask = other._run(x, mask, False)
        assert_arrays_equal(got, want)
        if mask is None:
            assert got_mask is None
        else:
            np.testing.assert_array_equal(got_mask, want_mask)


def from_keras_config(kl):
    """The rnnkit layer as the Keras importer builds it from the Keras layer's config."""
    config = kl.get_config()
    dtype = config.pop("dtype")["config"]["name"]
    for key in [k for k in config if k.endswith("_initializer")]:
        config[key] = "zeros"
    return getattr(R, type(kl).__name__)(dtype=dtype, **config)


def assert_refuses(layer, shape, mask=None):
    """A bad input is a ValueError naming the layer and the shape received."""
    with pytest.raises(ValueError) as error:
        layer(np.zeros(shape, layer.dtype), mask=mask)
    assert layer.name in str(error.value) and str(tuple(shape)) in str(error.value)


# ---------------------------------------------------------------------------------------
# ReLU, LeakyReLU, ELU
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threshold", [0.0, 0.5, 2])
@pytest.mark.parametrize("negative_slope", [0.0, 0.1, 1.0, 2.5])
@pytest.mark.parametrize("max_value", [None, 0.0, 1.0, 6.0, 6, 10.5])
def test_relu_matches_keras(max_value, negative_slope, threshold, dtype, rng):
    kwargs = {"max_value": max_value, "negative_slope": negative_slope, "threshold": threshold}
    kl, rk = K.ReLU(dtype=dtype, **kwargs), R.ReLU(dtype=dtype, **kwargs)
    edges = [threshold, 6.0] + ([] if max_value is None else [max_value])
    x = inputs(rng, SHAPE, dtype, edges=edges)
    mask = random_mask(rng, SHAPE[0], SHAPE[1])
    for m in (None, mask):
        compare(kl, rk, x, m, dtype)
    check_round_trips(rk, x, mask)
    compare(kl, from_keras_config(kl), x, mask, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("negative_slope", [0.0, 0.01, 0.3, 1.0, 2.5])
def test_leaky_relu_matches_keras(negative_slope, dtype, rng):
    kl = K.LeakyReLU(negative_slope=negative_slope, dtype=dtype)
    rk = R.LeakyReLU(negative_slope=negative_slope, dtype=dtype)
    x = inputs(rng, SHAPE, dtype)
    mask = random_mask(rng, SHAPE[0], SHAPE[1])
    for m in (None, mask):
        compare(kl, rk, x, m, dtype)
    check_round_trips(rk, x, mask)
    compare(kl, from_keras_config(kl), x, mask, dtype)


def test_leaky_relu_accepts_tf_keras_alpha(rng):
    with pytest.warns(UserWarning, match="alpha"):
        kl = K.LeakyReLU(alpha=0.15)
    with pytest.warns(UserWarning, match="alpha"):
        rk = R.LeakyReLU(alpha=0.15)
    assert rk.negative_slope == 0.15 and "alpha" not in rk.get_config()
    compare(kl, rk, inputs(rng, SHAPE, "float32"), None, "float32")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alpha", [1.0, 0.5, 2.0, 0.0, -0.5])
def test_elu_matches_keras(alpha, dtype, rng):
    kl, rk = K.ELU(alpha=alpha, dtype=dtype), R.ELU(alpha=alpha, dtype=dtype)
    x = inputs(rng, SHAPE, dtype, scale=2.0)
    mask = random_mask(rng, SHAPE[0], SHAPE[1])
    for m in (None, mask):
        compare(kl, rk, x, m, dtype)
    check_round_trips(rk, x, mask)
    compare(kl, from_keras_config(kl), x, mask, dtype)


def test_relu_family_errors():
    for kwargs in [{"max_value": -1.0}, {"negative_slope": -0.1}, {"negative_slope": None},
                   {"threshold": -1.0}, {"threshold": None}, {"max_value": "big"}]:
        with pytest.raises(ValueError, match="Received"):
            R.ReLU(**kwargs)
    for slope in (-0.5, None):
        with pytest.raises(ValueError, match="negative_slope"):
            R.LeakyReLU(negative_slope=slope)
    with pytest.raises(ValueError, match="alpha"):
        R.ELU(alpha="one")


# ---------------------------------------------------------------------------------------
# PReLU
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape,shared_axes",
    [
        (SHAPE, None), (SHAPE, 1), (SHAPE, [1]), (SHAPE, [2]), (SHAPE, (1, 2)), (SHAPE, [-1]),
        ((6, 4), None), ((6, 4), [1]), ((2, 3, 4, 5), [1, 2]), ((2, 3, 4, 5), [3]),
    ],
)
def test_prelu_matches_keras(shape, shared_axes, dtype, rng):
    kl = K.PReLU(shared_axes=shared_axes, dtype=dtype)
    kl.build(shape)
    kl.set_weights([rng.uniform(-1.0, 1.5, w.shape).astype(dtype) for w in kl.get_weights()])
    rk = R.PReLU(shared_axes=shared_axes, dtype=dtype)
    rk.build(shape)
    rk.set_weights(kl.get_weights())
    assert rk.alpha.shape == tuple(kl.alpha.shape)
    x = inputs(rng, shape, dtype)
    mask = random_mask(rng, shape[0], shape[1]) if len(shape) >= 3 else None
    for m in (None, mask):
        compare(kl, rk, x, m, dtype)
    check_round_trips(rk, x, mask)
    converted = from_keras_config(kl)
    converted.build(shape)
    converted.set_weights(kl.get_weights())
    compare(kl, converted, x, mask, dtype)


def test_prelu_errors(rng):
    with pytest.raises(ValueError, match="shared_axes"):
        R.PReLU(shared_axes="time")
    with pytest.raises(ValueError, match="shared"):
        R.PReLU(shared_axes=[4]).build(SHAPE)
    with pytest.raises(ValueError, match="build"):
        R.PReLU(shared_axes=[2]).build((None, None, 3))
    layer = R.PReLU(shared_axes=[1])
    layer(inputs(rng, SHAPE, "float32"))
    assert layer(np.ones((2, 9, 3), "float32")).shape == (2, 9, 3)  # shared: any length
    for bad in [(4, 5, 2), (4, 3), (4, 5, 3, 1)]:
        assert_refuses(layer, bad)
    unshared = R.PReLU()
    unshared(inputs(rng, SHAPE, "float32"))
    assert_refuses(unshared, (4, 1, 3))  # would broadcast alpha up: refused


# ---------------------------------------------------------------------------------------
# Softmax
# ---------------------------------------------------------------------------------------
def softmax_masks(rng, shape):
    """Masks Keras's Softmax takes for inputs of `shape`: right-aligned, each dim 1 or equal."""
    full = rng.random(shape) < 0.7
    full[0] = False  # a fully masked row: all outputs zero
    masks = {"none": None, "full": full, "last_axis": full[0, ..., :].copy() | True}
    masks["last_axis"][..., 0] = False
    if len(shape) == 2:
        masks["sequence"] = random_mask(rng, *shape)
    else:
        keys = rng.random((shape[0], 1, shape[-1])) < 0.6
        keys[1] = False
        masks["keys"] = keys
        masks["rows"] = rng.random((shape[-2], 1)) < 0.5
    masks["float"] = full.astype("float32") * 0.9
    masks["int"] = full.astype("int32")
    return masks


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape,axis",
    [
        ((4, 6), -1), ((4, 6), 1), ((4, 6), 0), ((4, 6), [0, 1]),
        (SHAPE, -1), (SHAPE, 1), (SHAPE, [-1]), (SHAPE, (1,)), (SHAPE, [1, 2]), (SHAPE, [0, -1]),
    ],
)
def test_softmax_matches_keras(shape, axis, dtype, rng):
    # Keras's NumPy backend fails on a list of several axes (its tracked list reaches scipy's
    # logsumexp): the reference takes the same axes as a tuple.
    keras_axis = tuple(axis) if isinstance(axis, list) else axis
    kl, rk = K.Softmax(axis=keras_axis, dtype=dtype), R.Softmax(axis=axis, dtype=dtype)
    x = inputs(rng, shape, dtype, scale=3.0)
    for label, mask in softmax_masks(rng, shape).items():
        try:
            compare(kl, rk, x, mask, dtype, keras_takes_mask=True)
        except AssertionError as error:
            raise AssertionError(f"mask {label}: {error}") from None
    check_round_trips(rk, x, softmax_masks(rng, shape)["full"])
    compare(kl, from_keras_config(kl), x, None, dtype)


def test_softmax_mask_rules(rng):
    """Keras and rnnkit refuse the same masks: more dimensions than the inputs, or a
    dimension neither 1 nor the input's (a (batch, time) sequence mask on 3-D scores)."""
    x = inputs(rng, SHAPE, "float32")
    rk = R.Softmax()
    for bad in [np.ones((1, *SHAPE), bool), np.ones((4, 5), bool), np.ones((4, 1, 2), bool)]:
        with pytest.raises(ValueError, match="broadcastable"):
            K.Softmax()(x, mask=bad)
        with pytest.raises(ValueError, match="broadcastable"):
            rk(x, mask=bad)
    for axis in ([], "last", [1.0], None):
        with pytest.raises(ValueError, match="axis"):
            R.Softmax(axis=axis)
    for axis in (3, [1, -2]):
        assert_refuses(R.Softmax(axis=axis), SHAPE)


@pytest.mark.parametrize("shape", [(None, 5, 3), (None, None, 3), (2, 4)])
def test_activation_output_shapes(shape):
    for name, kwargs in [("ReLU", {"max_value": 2.0}), ("LeakyReLU", {}), ("ELU", {}),
                         ("Softmax", {"axis": -1}), ("PReLU", {})]:
        assert getattr(R, name)(**kwargs).compute_output_shape(shape) == tuple(
            getattr(K, name)(**kwargs).compute_output_shape(shape)
        )
