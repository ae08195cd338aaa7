"""BatchNormalization, LayerNormalization and UnitNormalization against live Keras 3.

Each case builds the Keras layer (NumPy backend, float32 or float64), gives it random weights
(moving variances positive), copies them into the rnnkit layer with `set_weights(get_weights())`
and compares outputs and handed-on masks; then shapes, config and pickle round trips, the
Keras-config constructor path, and the errors.
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
SHAPE = (4, 5, 3)  # batch, time, features: 3-D, as between recurrent layers


def random_weights_for(layer, rng, dtype):
    """Random weights for a Keras layer: variances and standard deviations positive."""
    values = []
    for w in layer.weights:
        name = w.path.split("/")[-1]
        if "variance" in name or "stddev" in name:
            values.append(rng.uniform(0.2, 2.0, w.shape).astype(dtype))
        else:
            values.append(rng.uniform(-1.5, 1.5, w.shape).astype(dtype))
    return values


def make_pair(keras_cls, rk_cls, kwargs, shape, dtype, rng, keras_kwargs=None):
    kl = keras_cls(dtype=dtype, **(kwargs if keras_kwargs is None else keras_kwargs))
    kl.build(shape)
    kl.set_weights(random_weights_for(kl, rng, dtype))
    rk = rk_cls(dtype=dtype, **kwargs)
    rk.build(shape)
    rk.set_weights(kl.get_weights())
    assert [w.dtype for w in rk.get_weights()] == [np.dtype(dtype)] * len(kl.get_weights())
    return kl, rk


def keras_output_mask(layer, x, mask):
    """The mask Keras's Layer.__call__ attaches to the output (None unless supported)."""
    return layer.compute_mask(x, mask) if layer.supports_masking else None


def compare(kl, rk, x, mask, dtype, keras_takes_mask):
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


def assert_refuses(layer, shape, mask=None):
    """A bad input is a ValueError naming the layer and the shape received."""
    with pytest.raises(ValueError) as error:
        layer(np.zeros(shape, layer.dtype), mask=mask)
    assert layer.name in str(error.value) and str(tuple(shape)) in str(error.value)


def inputs(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


# ---------------------------------------------------------------------------------------
# BatchNormalization
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("center,scale", [(True, True), (True, False), (False, True),
                                          (False, False)])
@pytest.mark.parametrize("axis", [-1, 2, 1, -2, 0])
def test_batch_normalization_matches_keras(axis, center, scale, dtype, rng):
    kwargs = {"axis": axis, "center": center, "scale": scale}
    kl, rk = make_pair(K.BatchNormalization, R.BatchNormalization, kwargs, SHAPE, dtype, rng)
    x = inputs(rng, SHAPE, dtype)
    mask = random_mask(rng, SHAPE[0], SHAPE[1])
    for m in (None, mask):
        compare(kl, rk, x, m, dtype, keras_takes_mask=True)
    check_round_trips(rk, x, mask)
    names = [w.path.split("/")[-1] for w in kl.weights]
    assert rk._weight_labels() == names


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "kwargs",
    [
        {"epsilon": 0.5, "momentum": 0.5},
        {"epsilon": 1e-5},
        {"renorm": True},
        {"renorm": True, "renorm_clipping": {"rmax": 3.0, "rmin": 0.5, "dmax": 2.0},
         "renorm_momentum": 0.9, "center": False},
    ],
)
def test_batch_normalization_options(kwargs, dtype, rng):
    kl, rk = make_pair(K.BatchNormalization, R.BatchNormalization, kwargs, SHAPE, dtype, rng)
    assert len(rk.get_weights()) == (7 if kwargs.get("renorm") else 4) - (
        0 if kwargs.get("center", True) else 1
    )
    x = inputs(rng, SHAPE, dtype)
    compare(kl, rk, x, random_mask(rng, SHAPE[0], SHAPE[1]), dtype, keras_takes_mask=True)
    check_round_trips(rk, x, None)


@pytest.mark.parametrize("shape,axis", [((6, 3), -1), ((6, 3), 0), ((2, 3, 4, 5), 1),
                                        ((2, 3, 4, 5), -1)])
def test_batch_normalization_other_ranks(shape, axis, rng):
    kl, rk = make_pair(K.BatchNormalization, R.BatchNormalization, {"axis": axis}, shape,
                       "float32", rng)
    compare(kl, rk, inputs(rng, shape, "float32"), None, "float32", keras_takes_mask=True)


def test_batch_normalization_synchronized_and_list_axis(rng):
    """synchronized only changes training (Keras's NumPy backend refuses it): the inference
    is the same; tf.keras 2's one-element axis list is read as Keras 3's legacy loader does."""
    kl, rk = make_pair(K.BatchNormalization, R.BatchNormalization,
                       {"synchronized": True, "axis": [2]}, SHAPE, "float32", rng,
                       keras_kwargs={"axis": 2})
    assert rk.axis == 2 and rk.get_config()["synchronized"] is True
    compare(kl, rk, inputs(rng, SHAPE, "float32"), None, "float32", keras_takes_mask=True)


def test_batch_normalization_from_keras_config(rng):
    """As the importer builds it: Keras's config with initializers as "zeros", then weights."""
    kl = K.BatchNormalization(axis=1, epsilon=0.01, center=False, renorm=True)
    kl.build(SHAPE)
    kl.set_weights(random_weights_for(kl, rng, "float32"))
    config = kl.get_config()
    config.pop("dtype")
    for key in [k for k in config if k.endswith("_initializer")]:
        config[key] = "zeros"
    rk = R.BatchNormalization(**config)
    rk.build(SHAPE)
    rk.set_weights(kl.get_weights())
    compare(kl, rk, inputs(rng, SHAPE, "float32"), None, "float32", keras_takes_mask=True)


@pytest.mark.parametrize("shape", [(None, 5, 3), (None, None, 3), (2, 5, 3)])
def test_normalization_output_shapes(shape):
    for kcls, rcls, kwargs in [
        (K.BatchNormalization, R.BatchNormalization, {"axis": 2}),
        (K.LayerNormalization, R.LayerNormalization, {"axis": [1, 2]}),
        (K.UnitNormalization, R.UnitNormalization, {"axis": -1}),
    ]:
        assert rcls(**kwargs).compute_output_shape(shape) == tuple(
            kcls(**kwargs).compute_output_shape(shape)
        )


def test_batch_normalization_errors(rng):
    with pytest.raises(ValueError, match="axis"):
        R.BatchNormalization(axis=[1, 2])
    with pytest.raises(ValueError, match="renorm_clipping"):
        R.BatchNormalization(renorm=True, renorm_clipping={"rmaxx": 1.0})
    with pytest.raises(ValueError, match="rmax"):
        R.BatchNormalization(renorm=True, renorm_clipping={"rmax": 1.0, "rmin": 2.0})
    with pytest.raises(ValueError, match="dmax"):
        R.BatchNormalization(renorm=True, renorm_clipping={"dmax": -1.0})
    with pytest.raises(ValueError, match="out of bounds"):
        R.BatchNormalization(axis=3).build(SHAPE)
    with pytest.raises(ValueError, match="out of bounds"):
        R.BatchNormalization(axis=-4).compute_output_shape(SHAPE)
    layer = R.BatchNormalization()
    layer(inputs(rng, SHAPE, "float32"))
    for bad in [(4, 5, 2), (4, 3), (4, 5, 3, 1)]:
        assert_refuses(layer, bad)
    # A mask of the wrong rank: Keras's call refuses it, even at inference.
    x = inputs(rng, SHAPE, "float32")
    bad_mask = np.ones(SHAPE, bool)
    with pytest.raises(ValueError, match="one dimension less"):
        K.BatchNormalization()(x, mask=bad_mask)
    with pytest.raises(ValueError, match="one dimension less"):
        layer(x, mask=bad_mask)
    with pytest.raises(ValueError, match="training"):
        layer(x, training=True)
    frozen = R.BatchNormalization(trainable=False)
    assert frozen(x, training=True).shape == SHAPE  # frozen: inference, as in Keras


# ---------------------------------------------------------------------------------------
# LayerNormalization
# ---------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rms_scaling", [False, True])
@pytest.mark.parametrize("center,scale", [(True, True), (True, False), (False, True),
                                          (False, False)])
@pytest.mark.parametrize("axis", [-1, 2, 1, -2, [1, 2], [2, 1], [-1, 1], (0, 2), [0, 1, 2]])
def test_layer_normalization_matches_keras(axis, center, scale, rms_scaling, dtype, rng):
    kwargs = {"axis": axis, "center": center, "scale": scale, "rms_scaling": rms_scaling}
    kl, rk = make_pair(K.LayerNormalization, R.LayerNormalization, kwargs, SHAPE, dtype, rng)
    x = inputs(rng, SHAPE, dtype)
    mask = random_mask(rng, SHAPE[0], SHAPE[1])
    for m in (None, mask):
        compare(kl, rk, x, m, dtype, keras_takes_mask=False)
    check_round_trips(rk, x, mask)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("epsilon", [1e-6, 1e-3, 0.7])
@pytest.mark.parametrize("shape,axis", [((6, 4), -1), ((6, 4), [0, 1]), ((2, 3, 4, 5), [1, 3]),
                                        ((2, 3, 4, 5), -2)])
def test_layer_normalization_epsilon_and_ranks(shape, axis, epsilon, dtype, rng):
    kwargs = {"axis": axis, "epsilon": epsilon}
    kl, rk = make_pair(K.LayerNormalization, R.LayerNormalization, kwargs, shape, dtype, rng)
    compare(kl, rk, inputs(rng, shape, dtype), None, dtype, keras_takes_mask=False)


def test_layer_normalization_variance_is_accurate(rng):
    """Far from zero mean, float32 keeps 1e-5 against the float64 result (the two-pass
    variance; E[x^2] - E[x]^2 would lose about 3 digits here)."""
    x64 = inputs(rng, SHAPE, "float64") + 300.0
    kl, rk = make_pair(K.LayerNormalization, R.LayerNormalization, {}, SHAPE, "float64", rng)
    rk32 = R.LayerNormalization()
    rk32.build(SHAPE)
    rk32.set_weights(kl.get_weights())
    got = rk32(x64.astype("float32"))
    want = np.asarray(kl(x64.astype("float32").astype("float64")))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_layer_normalization_errors(rng):
    with pytest.raises(TypeError, match="axis"):
        R.LayerNormalization(axis="last")
    with pytest.raises(TypeError, match="axis"):
        R.LayerNormalization(axis=[1.5])
    with pytest.raises(ValueError, match="axis"):
        R.LayerNormalization(axis=[])
    with pytest.raises(ValueError, match="out of bounds"):
        R.LayerNormalization(axis=3).build(SHAPE)
    with pytest.raises(ValueError, match="twice"):
        R.LayerNormalization(axis=[2, -1]).build(SHAPE)
    with pytest.raises(ValueError, match="out of bounds"):
        R.LayerNormalization(axis=[1, 5]).compute_output_shape(SHAPE)
    layer = R.LayerNormalization(axis=[1, 2])
    layer(inputs(rng, SHAPE, "float32"))
    for bad in [(4, 5, 2), (4, 6, 3), (4, 5)]:
        assert_refuses(layer, bad)
    # Without weights any input with the axes in range works, as in Keras.
    bare = R.LayerNormalization(center=False, scale=False)
    assert bare(np.ones((2, 7), "float32")).shape == (2, 7)


# ---------------------------------------------------------------------------------------
# UnitNormalization
# ---------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # Keras's rsqrt(0)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [-1, 1, 2, [1, 2], (-1, 0), [0, 1, 2]])
def test_unit_normalization_matches_keras(axis, dtype, rng):
    kl = K.UnitNormalization(axis=axis, dtype=dtype)
    rk = R.UnitNormalization(axis=axis, dtype=dtype)
    x = inputs(rng, SHAPE, dtype)
    x[0] = 0.0  # zero vectors: Keras caps 1/norm at 1e12 and returns zeros
    x[1, 2] = 0.0
    x[2, :, 1] = 1e-20  # tiny norms: the cap matters
    mask = random_mask(rng, SHAPE[0], SHAPE[1])
    for m in (None, mask):
        compare(kl, rk, x, m, dtype, keras_takes_mask=False)
    check_round_trips(rk, x, mask)


def test_unit_normalization_errors():
    with pytest.raises(TypeError, match="axis"):
        R.UnitNormalization(axis=None)
    with pytest.raises(ValueError, match="out of bounds"):
        R.UnitNormalization(axis=3)(np.ones(SHAPE, "float32"))
    with pytest.raises(ValueError, match="out of bounds"):
        R.UnitNormalization(axis=[-4]).compute_output_shape(SHAPE)
    with pytest.raises(ValueError, match="twice"):
        R.UnitNormalization(axis=[1, -2])(np.ones(SHAPE, "float32"))
