"""rnnkit's pooling layers against live Keras 3: Max/AveragePooling1D/2D over pool sizes,
strides, padding and data formats, and the global poolings over data formats and keepdims, in
float32 and float64; masks as Keras uses and hands them on (GlobalAveragePooling1D averages the
unmasked steps, NaN for a fully masked row; the others ignore a mask; none hands one on); output
shapes, configs (Keras's own config builds the rnnkit layer), pickling and errors.

Keras's NumPy backend pools with JAX, which computes float64 in float32 unless 64-bit mode is
on: the Keras references run inside `jax.enable_x64(True)`.
"""

import pickle
import warnings

import jax
import numpy as np
import pytest

import rnnkit
from conftest import import_keras, random_mask

keras = import_keras()

TOL = {"float32": {"rtol": 1e-5, "atol": 1e-5}, "float64": {"rtol": 1e-12, "atol": 1e-12}}
BATCH, STEPS, CHANNELS = 4, 7, 3
GLOBAL = ["GlobalMaxPooling1D", "GlobalAveragePooling1D", "GlobalMaxPooling2D",
          "GlobalAveragePooling2D"]


def keras_call(layer, x, **kwargs):
    with jax.enable_x64(True), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 0 / 0 of fully masked rows; masks Keras drops
        return np.asarray(layer(x, **kwargs))


def inputs(rng, rank, data_format, dtype):
    spatial = (STEPS,) if rank == 1 else (STEPS, 6)
    shape = ((BATCH, *spatial, CHANNELS) if data_format == "channels_last"
             else (BATCH, CHANNELS, *spatial))
    return rng.standard_normal(shape).astype(dtype)


def make_mask(kind, rng, batch=BATCH, steps=STEPS):
    """Masks with fully masked rows and leading masked steps (and the trivial ones)."""
    if kind == "random":  # row 0 fully masked, rows 1 and 3 start masked, holes
        return random_mask(rng, batch, steps)
    if kind == "leading":  # row i starts with i masked steps: the last row fully masked
        return np.arange(steps)[None, :] >= np.linspace(0, steps, batch).astype(int)[:, None]
    if kind == "uniform":
        return rng.random((batch, steps)) < 0.5
    return np.full((batch, steps), kind == "all_kept")


def check_against_keras(name, kwargs, x, rng, mask=None):
    dtype = x.dtype.name
    keras_layer = getattr(keras.layers, name)(dtype=dtype, **kwargs)
    layer = getattr(rnnkit, name)(dtype=dtype, **kwargs)
    reads_mask = name == "GlobalAveragePooling1D" and mask is not None
    expected = keras_call(keras_layer, x, **({"mask": mask} if reads_mask else {}))
    got, got_mask = layer._run(x, mask, False)
    assert got.dtype == np.dtype(dtype) and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, **TOL[dtype])
    # No pooling layer hands a mask on: GlobalAveragePooling1D's compute_mask returns None,
    # the others define none (supports_masking False: Keras drops the mask).
    assert got_mask is None
    if name == "GlobalAveragePooling1D":
        assert keras_layer.compute_mask(x, mask) is None
    else:
        assert keras_layer.supports_masking is False
    if mask is not None and not reads_mask:  # the mask changes nothing
        np.testing.assert_array_equal(got, layer(x))
    shapes = [x.shape, (None, *x.shape[1:])]
    if name.startswith("Global") or kwargs.get("padding") == "same":
        spatial = range(1, x.ndim - 1) if layer.data_format == "channels_last" else range(2, x.ndim)
        shapes.append(tuple(None if i in spatial else d for i, d in enumerate(x.shape)))
    for shape in shapes:
        assert layer.compute_output_shape(shape) == keras_layer.compute_output_shape(shape)
    return keras_layer, layer


def check_round_trips(keras_layer, layer, x):
    expected = layer(x)
    config = dict(keras_layer.get_config(), dtype=layer.dtype)
    imported = type(layer)(**config)
    np.testing.assert_array_equal(imported(x), expected)
    own = layer.get_config()
    for key, value in keras_layer.get_config().items():
        if key not in ("name", "dtype"):
            assert own[key] == value, key
    np.testing.assert_array_equal(type(layer).from_config(own)(x), expected)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(layer))(x), expected)


# --------------------------------------------------------------------------- window pooling
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("pool_size, strides", [(1, None), (2, None), (3, None), (2, 1),
                                                (3, 2), (2, 3), (4, 3)])
@pytest.mark.parametrize("name", ["MaxPooling1D", "AveragePooling1D"])
def test_pooling_1d(name, pool_size, strides, padding, data_format, dtype, rng):
    x = inputs(rng, 1, data_format, dtype)
    kwargs = dict(pool_size=pool_size, strides=strides, padding=padding,
                  data_format=data_format)
    keras_layer, layer = check_against_keras(name, kwargs, x, rng, make_mask("random", rng))
    if pool_size == 3 and strides is None:
        check_round_trips(keras_layer, layer, x)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("pool_size, strides", [((2, 2), None), ((3, 2), None), (2, (1, 2)),
                                                ((3, 2), (2, 3))])
@pytest.mark.parametrize("name", ["MaxPooling2D", "AveragePooling2D"])
def test_pooling_2d(name, pool_size, strides, padding, data_format, dtype, rng):
    x = inputs(rng, 2, data_format, dtype)
    kwargs = dict(pool_size=pool_size, strides=strides, padding=padding,
                  data_format=data_format)
    keras_layer, layer = check_against_keras(name, kwargs, x, rng)
    if strides is None and pool_size == (3, 2):
        check_round_trips(keras_layer, layer, x)


def test_max_pooling_defaults(rng):
    for name, rank in (("MaxPooling1D", 1), ("MaxPooling2D", 2)):
        x = inputs(rng, rank, "channels_last", "float32")
        check_against_keras(name, {}, x, rng)


@pytest.mark.parametrize("name", ["AveragePooling1D", "AveragePooling2D"])
def test_same_average_counts_only_input_elements(name):
    """padding="same": a border window averages its input elements, not the zero padding."""
    layer = getattr(rnnkit, name)(3, strides=2, padding="same")
    x = np.ones((1, 6, 6, 2)[: 3 if name.endswith("1D") else 4], "float32")
    np.testing.assert_array_equal(layer(x), np.ones(layer.compute_output_shape(x.shape)))


# --------------------------------------------------------------------------- global pooling
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("name", GLOBAL)
def test_global_pooling(name, data_format, keepdims, dtype, rng):
    x = inputs(rng, 2 if name.endswith("2D") else 1, data_format, dtype)
    kwargs = dict(data_format=data_format, keepdims=keepdims)
    keras_layer, layer = check_against_keras(name, kwargs, x, rng)
    if not keepdims:
        check_round_trips(keras_layer, layer, x)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("mask_kind", ["random", "leading", "uniform", "all_kept", "all_masked"])
@pytest.mark.parametrize("name", ["GlobalAveragePooling1D", "GlobalMaxPooling1D"])
def test_global_pooling_1d_masks(name, mask_kind, data_format, keepdims, dtype, rng):
    x = inputs(rng, 1, data_format, dtype)
    mask = make_mask(mask_kind, rng)
    kwargs = dict(data_format=data_format, keepdims=keepdims)
    _, layer = check_against_keras(name, kwargs, x, rng, mask)
    y = layer(x, mask=mask)
    empty = ~mask.any(axis=1)
    if name == "GlobalAveragePooling1D":
        assert np.isnan(y[empty]).all() and not np.isnan(y[~empty]).any()
        # The mask may be any 0/1 array (Keras casts it to bool).
        np.testing.assert_array_equal(layer(x, mask=mask.astype(dtype)), y)
    else:
        assert not np.isnan(y).any()


def padded_sequences(rng):
    """Zero (masked by Masking) steps: row 0 fully, row 1 at the start, row 2 at the end."""
    x = rng.standard_normal((BATCH, STEPS, CHANNELS)).astype("float32")
    x[0] = 0
    x[1, :3] = 0
    x[2, 4:] = 0
    x[3, [0, 2]] = 0
    return x


@pytest.mark.parametrize(
    "middle",
    [[], [("MaxPooling1D", {"pool_size": 2, "padding": "same"})],
     [("AveragePooling1D", {"pool_size": 1})], [("GlobalMaxPooling1D", {})]],
)
def test_masks_in_a_keras_model(middle, rng):
    """Masking -> [pooling] -> GlobalAveragePooling1D (unless a global pooling ends it): only
    a mask straight from Masking reaches GlobalAveragePooling1D; window poolings drop it and
    GlobalMaxPooling1D ignores it, in Keras as in rnnkit."""
    x = padded_sequences(rng)
    tail = [] if middle and middle[0][0].startswith("Global") else [
        ("GlobalAveragePooling1D", {})]
    specs = [("Masking", {}), *middle, *tail]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras: the pooling "will destroy the mask"
        model = keras.Sequential([keras.Input(x.shape[1:]),
                                  *(getattr(keras.layers, n)(**k) for n, k in specs)])
    expected = keras_call(model, x)
    y, mask = x, None
    for name, kwargs in specs:
        y, mask = getattr(rnnkit, name)(**kwargs)._run(y, mask, False)
    np.testing.assert_allclose(y, expected, **TOL["float32"])
    assert mask is None
    assert np.isnan(y[0]).all() == (not middle)  # the fully masked row: 0 / 0 without pooling


# --------------------------------------------------------------------------- errors
BAD_ARGUMENTS = [
    ("MaxPooling1D", dict(pool_size=0), r"pool_size"),
    ("MaxPooling1D", dict(pool_size=(2, 2)), r"pool_size"),
    ("AveragePooling2D", dict(pool_size=(2, -1)), r"pool_size"),
    ("AveragePooling1D", dict(pool_size=2, strides=-1), r"strides"),
    ("MaxPooling2D", dict(pool_size=2, strides=(1, 2, 3)), r"strides"),
    ("MaxPooling1D", dict(pool_size=2, data_format="nwc"), r"data_format"),
    ("GlobalAveragePooling1D", dict(data_format="nwc"), r"data_format"),
    ("GlobalMaxPooling2D", dict(data_format="channels"), r"data_format"),
]


@pytest.mark.parametrize("name, kwargs, message", BAD_ARGUMENTS)
def test_bad_arguments_raise_as_keras(name, kwargs, message):
    with pytest.raises(ValueError):
        getattr(keras.layers, name)(**kwargs)
    with pytest.raises(ValueError, match=message):
        getattr(rnnkit, name)(**kwargs)


@pytest.mark.parametrize("name", ["MaxPooling1D", "AveragePooling2D"])
def test_bad_padding_and_zero_strides_raise_at_construction(name, rng):
    """Keras accepts these at construction and fails later (padding: ValueError in
    compute_output_shape and the op; strides 0: TypeError from JAX on the first call)."""
    keras_layer = getattr(keras.layers, name)(2, padding="causal")
    with pytest.raises(ValueError, match="padding"):
        keras_layer.compute_output_shape((2, 6, 6, 3)[: 3 if name.endswith("1D") else 4])
    with pytest.raises(ValueError, match=r"padding.*causal"):
        getattr(rnnkit, name)(2, padding="causal")
    with pytest.raises(ValueError, match=r"strides.*value > 0"):
        getattr(rnnkit, name)(2, strides=0)
    # Case-insensitive, as Keras's op.
    assert getattr(rnnkit, name)(2, padding="SAME").padding == "same"


@pytest.mark.parametrize("name", ["MaxPooling1D", "AveragePooling2D", *GLOBAL])
def test_bad_inputs_raise(name):
    rank = 2 if name.endswith("2D") else 1
    layer = getattr(rnnkit, name)() if name.startswith(("Global", "Max")) else getattr(
        rnnkit, name)(2)
    shape = (2, 6, 6, 3)[: rank + 2]
    layer(np.zeros(shape))
    wrong = [(2, 6, 6, 3, 1)[: rank + 1], (2, 6, 6, 3, 1)[: rank + 3]]
    if not name.startswith("Global"):
        wrong.append((2, *(1,) * rank, 3))  # shorter than the pool with padding="valid"
    for bad in wrong:
        with pytest.raises(ValueError, match=rf"{layer.name}.*shape \({bad[0]}, {bad[1]}"):
            layer(np.zeros(bad))
        if len(bad) != len(shape) or not name.startswith("Global"):
            with pytest.raises(ValueError, match=layer.name):
                layer.compute_output_shape(bad)


def test_global_average_pooling_1d_bad_mask():
    layer = rnnkit.GlobalAveragePooling1D()
    x = np.zeros((2, 5, 3), "float32")
    for mask in (np.ones((2, 4), bool), np.ones((5,), bool), np.ones((2, 5, 3), bool)):
        with pytest.raises(ValueError, match=rf"{layer.name}.*\(batch, steps\) = \(2, 5\)"):
            layer(x, mask=mask)
    channels_first = rnnkit.GlobalAveragePooling1D(data_format="channels_first")
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        channels_first(x, mask=np.ones((2, 5), bool))
