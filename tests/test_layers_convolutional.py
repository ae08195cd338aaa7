"""rnnkit's convolution layers against live Keras 3: Conv1D, Conv2D, SeparableConv1D and
DepthwiseConv1D over a grid of their arguments (padding, strides, dilation, groups,
depth_multiplier, use_bias, data_format, activation) in float32 and float64, with Keras's
weights copied across; output shapes, configs (Keras's own config builds the rnnkit layer),
pickling, masks (dropped, as Keras's convolutions do not support masking) and errors.

Keras's NumPy backend convolves with JAX, which computes float64 in float32 unless 64-bit
mode is on: the Keras references run inside `jax.enable_x64(True)`.
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
TRAINING_ONLY = ("regularizer", "constraint")
BATCH, STEPS, CHANNELS = 3, 9, 4


def keras_call(layer, x, **kwargs):
    with jax.enable_x64(True), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "does not support masking" when given a mask
        return np.asarray(layer(x, **kwargs))


def make_pair(name, kwargs, x, rng):
    """A built Keras layer with random weights and the rnnkit layer given its weights."""
    dtype = x.dtype.name
    keras_layer = getattr(keras.layers, name)(dtype=dtype, **kwargs)
    keras_layer.build(x.shape)
    weights = [rng.uniform(-0.5, 0.5, w.shape).astype(dtype) for w in keras_layer.get_weights()]
    keras_layer.set_weights(weights)
    layer = getattr(rnnkit, name)(dtype=dtype, **kwargs)
    layer.build(x.shape)
    layer.set_weights(keras_layer.get_weights())
    return keras_layer, layer


def check_against_keras(name, kwargs, x, rng):
    """Outputs, the (dropped) mask and the output shapes of rnnkit's layer equal Keras's."""
    dtype = x.dtype.name
    keras_layer, layer = make_pair(name, kwargs, x, rng)
    expected = keras_call(keras_layer, x)
    got, mask = layer._run(x, None, False)
    assert got.dtype == np.dtype(dtype) and got.shape == expected.shape
    assert got.flags.c_contiguous
    np.testing.assert_allclose(got, expected, **TOL[dtype])
    assert mask is None
    # A mask is dropped, as by Keras (no compute_mask: supports_masking is False).
    assert keras_layer.supports_masking is False
    steps_axis = 1 if kwargs.get("data_format", "channels_last") == "channels_last" else 2
    masked = random_mask(rng, x.shape[0], x.shape[steps_axis]) if x.ndim == 3 else None
    got_masked, mask = layer._run(x, masked, False)
    assert mask is None
    np.testing.assert_array_equal(got_masked, got)
    # Output shapes, also with unknown batch and spatial sizes.
    shapes = [x.shape, (None, *x.shape[1:])]
    spatial = (1, x.ndim - 1) if steps_axis == 1 else (2, x.ndim)
    shapes.append(tuple(None if spatial[0] <= i < spatial[1] else d for i, d in
                        enumerate(x.shape)))
    for shape in shapes:
        assert layer.compute_output_shape(shape) == keras_layer.compute_output_shape(shape)
    return keras_layer, layer


def check_round_trips(keras_layer, layer, x):
    expected = layer(x)
    # Keras's config builds the rnnkit layer, as the importer does.
    config = {k: v for k, v in keras_layer.get_config().items()
              if not k.endswith(TRAINING_ONLY)}
    config.update({k: "zeros" for k in config if k.endswith("_initializer")})
    config["dtype"] = layer.dtype
    imported = type(layer)(**config)
    imported.build(x.shape)
    imported.set_weights(keras_layer.get_weights())
    np.testing.assert_array_equal(imported(x), expected)
    # rnnkit's config: Keras's values for every argument Keras has.
    own = layer.get_config()
    for key, value in keras_layer.get_config().items():
        if key.endswith((*TRAINING_ONLY, "_initializer")) or key in ("name", "dtype"):
            continue
        assert own[key] == value, key
    rebuilt = type(layer).from_config(own)
    rebuilt.build(x.shape)
    rebuilt.set_weights(layer.get_weights())
    np.testing.assert_array_equal(rebuilt(x), expected)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(layer))(x), expected)


# --------------------------------------------------------------------------- Conv1D
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("use_bias, activation", [(True, "tanh"), (False, None)])
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("dilation_rate", [1, 2])
@pytest.mark.parametrize("strides", [1, 2])
@pytest.mark.parametrize("padding", ["valid", "same", "causal"])
def test_conv1d(padding, strides, dilation_rate, groups, use_bias, activation, data_format,
                dtype, rng):
    kwargs = dict(filters=6, kernel_size=3, strides=strides, padding=padding,
                  data_format=data_format, dilation_rate=dilation_rate, groups=groups,
                  activation=activation, use_bias=use_bias)
    if strides > 1 and dilation_rate > 1:
        for make in (keras.layers.Conv1D, rnnkit.Conv1D):
            with pytest.raises(ValueError, match=r"`strides > 1` not supported.*dilation_rate"):
                make(**kwargs)
        return
    shape = (BATCH, STEPS, CHANNELS) if data_format == "channels_last" else (BATCH, CHANNELS,
                                                                           STEPS)
    x = rng.standard_normal(shape).astype(dtype)
    keras_layer, layer = check_against_keras("Conv1D", kwargs, x, rng)
    if strides == dilation_rate == 1 and activation:
        check_round_trips(keras_layer, layer, x)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "gelu", "swish", "elu", "softplus"])
@pytest.mark.parametrize("kernel_size", [1, 2, 5])
def test_conv1d_activations_and_kernel_sizes(kernel_size, activation, rng):
    x = rng.standard_normal((2, 7, 3)).astype("float32")
    kwargs = dict(filters=4, kernel_size=kernel_size, padding="same", activation=activation)
    check_against_keras("Conv1D", kwargs, x, rng)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("groups", [1, 4])
def test_conv1d_causal_output_ignores_the_future(groups, dtype, rng):
    layer = rnnkit.Conv1D(4, 3, padding="causal", dilation_rate=2, groups=groups, dtype=dtype)
    x = rng.standard_normal((2, 8, 4)).astype(dtype)
    y = layer(x)
    x[:, 5:] += 1.0
    np.testing.assert_array_equal(layer(x)[:, :5], y[:, :5])
    assert not np.allclose(layer(x)[:, 5:], y[:, 5:])


# --------------------------------------------------------------------------- Conv2D
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize(
    "strides, dilation_rate", [(1, 1), ((2, 3), 1), (1, (1, 2))]
)
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_conv2d(padding, strides, dilation_rate, groups, data_format, dtype, rng):
    use_bias = groups == 1 or padding == "same"
    kwargs = dict(filters=6, kernel_size=(3, 2), strides=strides, padding=padding,
                  data_format=data_format, dilation_rate=dilation_rate, groups=groups,
                  activation="relu", use_bias=use_bias)
    shape = (2, 7, 6, CHANNELS) if data_format == "channels_last" else (2, CHANNELS, 7, 6)
    x = rng.standard_normal(shape).astype(dtype)
    keras_layer, layer = check_against_keras("Conv2D", kwargs, x, rng)
    if strides == 1 and dilation_rate == 1:
        check_round_trips(keras_layer, layer, x)


def test_conv2d_strides_with_dilation_raise():
    for make in (keras.layers.Conv2D, rnnkit.Conv2D):
        with pytest.raises(ValueError, match=r"`strides > 1` not supported.*dilation_rate"):
            make(2, 3, strides=(1, 2), dilation_rate=(2, 1))


# --------------------------------------------------------------------------- depthwise & separable
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "data_format, use_bias", [("channels_last", True), ("channels_first", False)]
)
@pytest.mark.parametrize("depth_multiplier", [1, 2])
@pytest.mark.parametrize("strides, dilation_rate", [(1, 1), (2, 1), (1, 2), (2, 2)])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("name", ["SeparableConv1D", "DepthwiseConv1D"])
def test_depthwise_and_separable(name, padding, strides, dilation_rate, depth_multiplier,
                                 data_format, use_bias, dtype, rng):
    """Unlike Conv1D, these take strides > 1 with dilation_rate > 1 (Keras too)."""
    kwargs = dict(kernel_size=3, strides=strides, padding=padding, data_format=data_format,
                  dilation_rate=dilation_rate, depth_multiplier=depth_multiplier,
                  activation="tanh" if use_bias else None, use_bias=use_bias)
    if name == "SeparableConv1D":
        kwargs["filters"] = 5
    shape = (BATCH, STEPS, CHANNELS) if data_format == "channels_last" else (BATCH, CHANNELS,
                                                                           STEPS)
    x = rng.standard_normal(shape).astype(dtype)
    keras_layer, layer = check_against_keras(name, kwargs, x, rng)
    assert [w.shape for w in layer.weights] == [w.shape for w in keras_layer.get_weights()]
    if strides == dilation_rate == 1 and use_bias:
        check_round_trips(keras_layer, layer, x)


def test_weight_names_and_shapes():
    cases = [
        (rnnkit.Conv1D(6, 3, groups=2), ["kernel", "bias"], [(3, 2, 6), (6,)]),
        (rnnkit.Conv2D(6, (3, 2), use_bias=False), ["kernel"], [(3, 2, 4, 6)]),
        (rnnkit.DepthwiseConv1D(3, depth_multiplier=2), ["kernel", "bias"],
         [(3, 4, 2), (8,)]),
        (rnnkit.SeparableConv1D(5, 3, depth_multiplier=2),
         ["depthwise_kernel", "pointwise_kernel", "bias"], [(3, 4, 2), (1, 8, 5), (5,)]),
    ]
    for layer, names, shapes in cases:
        layer.build((2, 7, 4) if layer._rank == 1 else (2, 7, 6, 4))
        assert layer._weight_labels() == names
        assert [w.shape for w in layer.weights] == shapes


# --------------------------------------------------------------------------- errors
BAD_ARGUMENTS = [
    ("Conv1D", dict(filters=0, kernel_size=3), r"filters"),
    ("Conv1D", dict(filters=4, kernel_size=0), r"kernel_size"),
    ("Conv1D", dict(filters=4, kernel_size=(2, 2)), r"kernel_size"),
    ("Conv1D", dict(filters=4, kernel_size=3, strides=0), r"strides"),
    ("Conv1D", dict(filters=4, kernel_size=3, dilation_rate=-1), r"dilation_rate"),
    ("Conv1D", dict(filters=4, kernel_size=3, padding="full"), r"padding"),
    ("Conv1D", dict(filters=4, kernel_size=3, data_format="nchw"), r"data_format"),
    ("Conv1D", dict(filters=4, kernel_size=3, groups=0), r"groups"),
    ("Conv1D", dict(filters=5, kernel_size=3, groups=2), r"groups=2, filters=5"),
    ("Conv2D", dict(filters=4, kernel_size=3, padding="causal"), r"padding"),
    ("Conv2D", dict(filters=4, kernel_size=(3, 3, 3)), r"kernel_size"),
    ("SeparableConv1D", dict(filters=4, kernel_size=3, padding="causal"), r"padding"),
    ("SeparableConv1D", dict(filters=4, kernel_size=3, depth_multiplier=0), r"depth_multipl"),
    ("SeparableConv1D", dict(filters=0, kernel_size=3), r"filters"),
    ("DepthwiseConv1D", dict(kernel_size=3, padding="causal"), r"padding"),
    ("DepthwiseConv1D", dict(kernel_size=3, depth_multiplier=-2), r"depth_multiplier"),
    ("DepthwiseConv1D", dict(kernel_size=3, strides=(1, 1)), r"strides"),
]


@pytest.mark.parametrize("name, kwargs, message", BAD_ARGUMENTS)
def test_bad_arguments_raise_as_keras(name, kwargs, message):
    with pytest.raises(ValueError):
        getattr(keras.layers, name)(**kwargs)
    with pytest.raises(ValueError, match=message):
        getattr(rnnkit, name)(**kwargs)


def test_lora_is_refused():
    with pytest.raises(ValueError, match=r"LoRA.*lora_rank=2"):
        rnnkit.Conv1D(4, 3, lora_rank=2)
    rnnkit.Conv1D(4, 3, lora_rank=None, lora_alpha=None)


def test_training_only_arguments_are_accepted():
    rnnkit.SeparableConv1D(4, 3, depthwise_regularizer=None, pointwise_constraint=None,
                           kernel_regularizer=None, activity_regularizer=None)
    rnnkit.DepthwiseConv1D(3, depthwise_constraint=None, bias_regularizer=None)


@pytest.mark.parametrize("name", ["Conv1D", "Conv2D", "SeparableConv1D", "DepthwiseConv1D"])
def test_bad_inputs_raise(name, rng):
    rank = 2 if name == "Conv2D" else 1
    kwargs = {"kernel_size": 3}
    if name != "DepthwiseConv1D":
        kwargs["filters"] = 4
    layer = getattr(rnnkit, name)(**kwargs)
    shape = (2, 6, 6, 4) if rank == 2 else (2, 6, 4)
    layer.build(shape)
    layer(np.zeros(shape))
    wrong_rank = (2, 6) if rank == 1 else (2, 6, 4)
    for bad in [wrong_rank, (*shape, 1), (*shape[:-1], 3), (2, *(2,) * rank, 4)]:
        with pytest.raises(ValueError, match=rf"{layer.name}.*shape \({bad[0]}, {bad[1]}"):
            layer(np.zeros(bad))
    for bad_shape in [wrong_rank, (2, *(2,) * rank, 4)]:
        with pytest.raises(ValueError, match=layer.name):
            layer.compute_output_shape(bad_shape)
    fresh = getattr(rnnkit, name)(**kwargs)
    with pytest.raises(ValueError, match=fresh.name):
        fresh(np.zeros(wrong_rank))
    fresh = getattr(rnnkit, name)(**kwargs)
    with pytest.raises(ValueError, match="channel"):
        fresh.build((2, *(6,) * rank, None))


@pytest.mark.parametrize("name", ["Conv1D", "SeparableConv1D", "DepthwiseConv1D"])
def test_mask_is_dropped_in_a_keras_model(name, rng):
    """Masking -> conv -> GlobalAveragePooling1D: the pooling sees no mask in Keras (it
    averages every step), nor in rnnkit."""
    kwargs = {"kernel_size": 3, "padding": "same"}
    if name != "DepthwiseConv1D":
        kwargs["filters"] = 4
    x = rng.standard_normal((4, 7, 3)).astype("float32")
    x[0] = 0
    x[1, :2] = 0
    x[2, 5:] = 0
    conv = getattr(keras.layers, name)(**kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras: the conv "will destroy the mask information"
        model = keras.Sequential([keras.Input((7, 3)), keras.layers.Masking(), conv,
                                  keras.layers.GlobalAveragePooling1D()])
    conv.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype("float32")
                      for w in conv.get_weights()])
    expected = keras_call(model, x)
    layers = [rnnkit.Masking(), getattr(rnnkit, name)(**kwargs), rnnkit.GlobalAveragePooling1D()]
    layers[1].build(x.shape)
    layers[1].set_weights(conv.get_weights())
    y, mask = x, None
    for layer in layers:
        y, mask = layer._run(y, mask, False)
    np.testing.assert_allclose(y, expected, **TOL["float32"])
    assert not np.isnan(y).any()


def test_groups_must_divide_input_channels():
    for make in (keras.layers.Conv1D, rnnkit.Conv1D):
        with pytest.raises(ValueError, match=r"evenly divisible by the number of groups"):
            make(4, 3, groups=2).build((2, 6, 3))
