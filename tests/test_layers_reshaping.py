"""Permute, Cropping1D, ZeroPadding1D, UpSampling1D and Identity against live Keras 3.

Outputs and handed-on masks (Keras's Layer.__call__ attaches `compute_mask` only for layers
that support masking: only Identity here), output shapes with unknown dimensions, config and
pickle round trips, the Keras-config constructor path and the errors.
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
SHAPE = (4, 6, 3)


def keras_output_mask(layer, x, mask):
    """The mask Keras's Layer.__call__ attaches to the output (None unless supported)."""
    return layer.compute_mask(x, mask) if layer.supports_masking else None


def compare(kl, rk, x, mask, dtype):
    want = kl(x)
    got, got_mask = rk._run(x, mask, False)
    assert_results_close(got, np.asarray(want), dtype, tolerances=TOL)
    assert got.flags.c_contiguous
    want_mask = keras_output_mask(kl, x, mask)
    if want_mask is None:
        assert got_mask is None
    else:
        np.testing.assert_array_equal(got_mask, want_mask)


def check_round_trips(rk, x, mask):
    want, want_mask = rk._run(x, mask, False)
    for other in (type(rk).from_config(rk.get_config()), pickle.loads(pickle.dumps(rk))):
        got, got_mask = other._run(x, mask, False)
        assert_arrays_equal(got, want)
        if want_mask is None:
            assert got_mask is None
        else:
            np.testing.assert_array_equal(got_mask, want_mask)


def from_keras_config(kl):
    """The rnnkit layer as the Keras importer builds it from the Keras layer's config."""
    config = kl.get_config()
    dtype = config.pop("dtype")["config"]["name"]
    return getattr(R, type(kl).__name__)(dtype=dtype, **config)


def run_case(keras_cls, rk_cls, kwargs, shape, dtype, rng):
    kl, rk = keras_cls(dtype=dtype, **kwargs), rk_cls(dtype=dtype, **kwargs)
    x = rng.standard_normal(shape).astype(dtype)
    mask = random_mask(rng, shape[0], shape[1])
    for m in (None, mask):
        compare(kl, rk, x, m, dtype)
    check_round_trips(rk, x, mask)
    compare(kl, from_keras_config(kl), x, mask, dtype)
    assert rk.supports_masking == kl.supports_masking
    for known in [shape, (None, *shape[1:]), (None, None, *shape[2:])]:
        assert rk.compute_output_shape(known) == tuple(kl.compute_output_shape(known))


def assert_refuses(layer, shape):
    """A bad input is a ValueError naming the layer and the shape received."""
    with pytest.raises(ValueError) as error:
        layer(np.zeros(shape, layer.dtype))
    assert layer.name in str(error.value) and str(tuple(shape)) in str(error.value)


# ---------------------------------------------------------------------------------------
# Permute
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape,dims",
    [((4, 6), (1,)), (SHAPE, (1, 2)), (SHAPE, (2, 1)), (SHAPE, [2, 1]),
     ((2, 3, 4, 5), (3, 1, 2)), ((2, 3, 4, 5), (2, 3, 1)), ((2, 3, 4, 5), (1, 3, 2))],
)
def test_permute_matches_keras(shape, dims, dtype, rng):
    run_case(K.Permute, R.Permute, {"dims": dims}, shape, dtype, rng)


def test_permute_errors():
    for dims in [(0, 1), (1, 3), (2, 2), "12", 3, (1.0, 2.0)]:
        with pytest.raises(ValueError, match="dims"):
            R.Permute(dims)
    assert_refuses(R.Permute((2, 1)), (4, 6))
    assert_refuses(R.Permute((2, 1)), (4, 6, 3, 1))
    with pytest.raises(ValueError, match="rank"):
        R.Permute((2, 1)).compute_output_shape((None, 3))


# ---------------------------------------------------------------------------------------
# Cropping1D, ZeroPadding1D, UpSampling1D
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cropping", [0, 1, 2, (1, 0), (0, 2), (2, 1), [1, 3], (0, 0)])
def test_cropping1d_matches_keras(cropping, dtype, rng):
    run_case(K.Cropping1D, R.Cropping1D, {"cropping": cropping}, SHAPE, dtype, rng)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("data_format", [None, "channels_last", "channels_first"])
@pytest.mark.parametrize("padding", [0, 1, 3, (2, 0), (0, 3), [1, 2]])
def test_zero_padding1d_matches_keras(padding, data_format, dtype, rng):
    kwargs = {"padding": padding, "data_format": data_format}
    run_case(K.ZeroPadding1D, R.ZeroPadding1D, kwargs, SHAPE, dtype, rng)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [1, 2, 3])
def test_up_sampling1d_matches_keras(size, dtype, rng):
    run_case(K.UpSampling1D, R.UpSampling1D, {"size": size}, SHAPE, dtype, rng)


def test_time_axis_layers_errors():
    for cropping in [-1, (1, -1), (1, 2, 3), "a", (1.5, 1), None]:
        with pytest.raises(ValueError, match="cropping"):
            R.Cropping1D(cropping)
    for padding in [-2, (0, -1), (1,), "ab"]:
        with pytest.raises(ValueError, match="padding"):
            R.ZeroPadding1D(padding)
    with pytest.raises(ValueError, match="data_format"):
        R.ZeroPadding1D(data_format="channels_middle")
    with pytest.raises(TypeError, match="size"):
        R.UpSampling1D(2.0)
    for size in (0, -1):
        with pytest.raises(ValueError, match="size"):
            R.UpSampling1D(size)
    # Cropping away every step: Keras refuses, in the call and in the output shape.
    with pytest.raises(ValueError, match="cropping"):
        K.Cropping1D((3, 3))(np.zeros(SHAPE, "float32"))
    assert_refuses(R.Cropping1D((3, 3)), SHAPE)
    with pytest.raises(ValueError, match="cropping"):
        R.Cropping1D((3, 3)).compute_output_shape((None, 6, 3))
    for layer in (R.Cropping1D(), R.ZeroPadding1D(), R.UpSampling1D()):
        assert_refuses(layer, (4, 6))
        assert_refuses(layer, (4, 6, 3, 1))
        with pytest.raises(ValueError, match="input_shape"):
            layer.compute_output_shape((None, 6))


# ---------------------------------------------------------------------------------------
# Identity
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [SHAPE, (4, 6), (2, 3, 4, 5)])
def test_identity_matches_keras(shape, dtype, rng):
    run_case(K.Identity, R.Identity, {}, shape, dtype, rng)


def test_identity_dtypes():
    """As Keras: floats are cast to the layer's dtype, integers (token ids) pass unchanged."""
    ids = np.arange(6, dtype="int32").reshape(2, 3)
    assert np.asarray(K.Identity()(ids)).dtype == R.Identity()(ids).dtype == np.int32
    floats = np.ones((2, 3), "float32")
    assert R.Identity(dtype="float64")(floats).dtype == np.float64
    assert np.asarray(K.Identity(dtype="float64")(floats)).dtype == np.float64
