"""rnnkit's merge layers against live Keras 3: Add, Subtract, Multiply, Average, Maximum and
Minimum over 2 and 3 inputs of equal, broadcastable and different ranks (2 to 4), Concatenate
over positive and negative axes, Dot over int, pair and negative axes with and without
normalize, in float32 and float64; masks on every input, some or none (outputs and the masks
handed on, as Keras attaches them to its output and as its compute_mask gives them), a masked
functional model, output shapes with unknown dims, configs, pickling and errors.

Keras merge layers read masks from the tensors themselves: the Keras inputs carry them with
`set_keras_mask`, and the mask Keras hands on is the one attached to its output (set inside
`call` by Multiply, Maximum and Minimum, by `compute_mask` for the others).
"""

import pickle
import warnings

import numpy as np
import pytest
from keras.src import backend

import rnnkit
from conftest import assert_results_close, import_keras

keras = import_keras()

TOL = {"float32": {"rtol": 1e-5, "atol": 1e-5}, "float64": {"rtol": 1e-12, "atol": 1e-12}}
DTYPES = ["float32", "float64"]
B, T = 4, 5  # batch and steps differ: a mask broadcast against the wrong axis fails
ELEMENTWISE = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"]
MASK_KINDS = ["none", "all", "first", "last"]  # which inputs carry a mask

# Input shapes without the batch axis; 2-input cases use the first two.
SHAPES = {
    "rank2": [(3,), (3,), (3,)],
    "rank3": [(T, 3), (T, 3), (T, 3)],
    "rank4": [(T, 2, 3), (T, 2, 3), (T, 2, 3)],
    "broadcast_rank2": [(3,), (1,), (3,)],
    "broadcast_rank3": [(T, 3), (1, 3), (T, 1)],
    "broadcast_rank4": [(T, 1, 3), (1, 2, 3), (T, 2, 1)],
    "ranks_3_2": [(T, 3), (3,), (T, 3)],
    "ranks_2_3": [(4,), (T, 1), (1, 4)],  # (B, 4) -> (B, 1, 4): out (B, T, 4)
    "ranks_4_3_2": [(T, 2, 3), (2, 3), (3,)],
}


# --------------------------------------------------------------------------- helpers
def keras_tensor(x, mask=None):
    tensor = keras.ops.convert_to_tensor(x)
    if mask is not None:
        backend.set_keras_mask(tensor, keras.ops.convert_to_tensor(mask))
    return tensor


def make_masks(kind, shapes, rng):
    """One mask (the input's full shape less the features) or None per input. Row 0 is masked in
    every mask (so Multiply zeroes it when every input is masked), row 1 kept in every one."""
    masks = []
    for i, shape in enumerate(shapes):
        wanted = {"all": True, "first": i == 0, "last": i == len(shapes) - 1}.get(kind, False)
        if not wanted:
            masks.append(None)
            continue
        mask = rng.random(shape[:-1]) < 0.6
        mask[0], mask[1] = False, True
        masks.append(mask)
    return masks


def with_none(shape, axes):
    return tuple(None if i in axes else d for i, d in enumerate(shape))


def check_output_shapes(keras_layer, layer, shapes):
    """compute_output_shape as Keras's: the shapes, an unknown batch, unknown dims."""
    variants = [shapes, [with_none(s, {0}) for s in shapes],
                [with_none(shapes[0], range(len(shapes[0]))), *shapes[1:]],
                [*shapes[:-1], with_none(shapes[-1], range(1, len(shapes[-1])))]]
    for variant in variants:
        try:
            expected = keras_layer.compute_output_shape(variant)
        except ValueError:
            with pytest.raises(ValueError, match=layer.name):
                layer.compute_output_shape(variant)
            continue
        assert layer.compute_output_shape(variant) == expected, variant


def check_merge(name, kwargs, xs, masks, dtype):
    """The rnnkit layer against Keras's on `xs` carrying `masks`: output, dtype, shape, the
    mask handed on (None or the same booleans), output shapes. Returns both layers."""
    keras_layer = getattr(keras.layers, name)(dtype=dtype, **kwargs)
    layer = getattr(rnnkit, name)(dtype=dtype, **kwargs)
    inputs = [keras_tensor(x, m) for x, m in zip(xs, masks)]
    expected = keras_layer(inputs)
    expected_mask = backend.get_keras_mask(expected)
    got, got_mask = layer._run(list(xs), list(masks), False)
    assert_results_close(got, np.asarray(expected), dtype, name, tolerances=TOL)
    if expected_mask is None:
        assert got_mask is None
    else:
        assert got_mask.dtype == bool
        np.testing.assert_array_equal(got_mask, np.asarray(expected_mask))
    # Keras's compute_mask gives the same mask (Multiply, Maximum and Minimum attach theirs in
    # call, before it runs), and so does rnnkit's.
    computed = keras_layer.compute_mask(inputs, list(masks))
    own = layer.compute_mask(list(xs), list(masks))
    assert (computed is None) == (expected_mask is None) == (own is None)
    if computed is not None:
        np.testing.assert_array_equal(np.asarray(computed), got_mask)
        np.testing.assert_array_equal(own, got_mask)
    # Unmasked, masks given as None: the same as no mask at all.
    if all(m is None for m in masks):
        np.testing.assert_array_equal(layer(list(xs)), got)
    shapes = [x.shape for x in xs]
    assert layer.compute_output_shape(shapes) == got.shape
    check_output_shapes(keras_layer, layer, shapes)
    return keras_layer, layer


# --------------------------------------------------------------------------- elementwise
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mask_kind", MASK_KINDS)
@pytest.mark.parametrize("shapes", sorted(SHAPES))
@pytest.mark.parametrize("name, count", [(n, c) for n in ELEMENTWISE for c in (2, 3)
                                         if (n, c) != ("Subtract", 3)])
def test_elementwise(name, count, shapes, mask_kind, dtype, rng):
    full = [(B, *s) for s in SHAPES[shapes][:count]]
    xs = [rng.standard_normal(s).astype(dtype) for s in full]
    masks = make_masks(mask_kind, full, rng)
    if len({len(s) for s in full}) > 1 and mask_kind == "all":
        # Masks of different ranks: Keras's compute_mask ORs (B, T) with (B,): NumPy refuses.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(ValueError):
                getattr(keras.layers, name)(dtype=dtype)(
                    [keras_tensor(x, m) for x, m in zip(xs, masks)])
        with pytest.raises(ValueError, match=r"cannot OR the masks"):
            getattr(rnnkit, name)(dtype=dtype)._run(xs, masks, False)
        return
    check_merge(name, {}, xs, masks, dtype)


@pytest.mark.parametrize("name", ["Multiply", "Maximum", "Minimum"])
def test_masked_elements_take_no_part(name, rng):
    """Multiply: a masked element counts as 1 (0 where every input is masked); Maximum and
    Minimum: as the other operand. The mask of an input of lower rank takes no part (Keras
    expands it with expand_dims, a tensor without the mask), and hands on no mask."""
    x = rng.standard_normal((B, T, 3)).astype("float32")
    y = rng.standard_normal((B, T, 3)).astype("float32")
    mx = np.ones((B, T), bool)
    mx[:, 0] = False
    layer = getattr(rnnkit, name)()
    out, mask = layer._run([x, y], [mx, None], False)
    assert mask is None
    np.testing.assert_array_equal(out[:, 0], y[:, 0])
    out, mask = layer._run([x, y], [mx, mx], False)
    np.testing.assert_array_equal(mask, mx)
    np.testing.assert_array_equal(out[:, 0], 0 if name == "Multiply" else x[:, 0])
    low = rng.standard_normal((B, 3)).astype("float32")
    out, mask = layer._run([x, low], [None, np.zeros(B, bool)], False)
    np.testing.assert_array_equal(out, layer([x, low]))
    assert mask is None


def test_broadcast_masks_or_as_keras(rng):
    """Masks of (B, T) and (B, 1) (inputs (B, T, 3) and (B, 1, 3)) OR by broadcasting."""
    xs = [rng.standard_normal((B, T, 3)), rng.standard_normal((B, 1, 3))]
    masks = [rng.random((B, T)) < 0.5, np.array([[False], [True], [False], [True]])]
    for name in ELEMENTWISE:
        _, layer = check_merge(name, {}, xs, masks, "float64")
        np.testing.assert_array_equal(layer.compute_mask(xs, masks), masks[0] | masks[1])


# --------------------------------------------------------------------------- Concatenate
CONCAT_CASES = [  # (shape without batch, axis)
    ((3,), -1), ((3,), 1),
    ((T, 3), -1), ((T, 3), 1), ((T, 3), 2), ((T, 3), -2),
    ((T, 2, 3), -1), ((T, 2, 3), 1), ((T, 2, 3), 2), ((T, 2, 3), 3), ((T, 2, 3), -2),
    ((T, 2, 3), -3),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mask_kind", MASK_KINDS)
@pytest.mark.parametrize("count", [2, 3])
@pytest.mark.parametrize("shape, axis", CONCAT_CASES)
def test_concatenate(shape, axis, count, mask_kind, dtype, rng):
    full = []
    for i in range(count):  # a different size along the axis for every input
        dims = [B, *shape]
        dims[axis] += i
        full.append(tuple(dims))
    xs = [rng.standard_normal(s).astype(dtype) for s in full]
    masks = make_masks(mask_kind, full, rng)
    check_merge("Concatenate", {"axis": axis}, xs, masks, dtype)


def test_concatenate_full_shape_masks_and_batch_axis(rng):
    """A mask of the input's own rank is used as is; axis 0 joins batches of any sizes."""
    xs = [rng.standard_normal((B, T, 3)), rng.standard_normal((B, T, 2))]
    masks = [rng.random((B, T, 3)) < 0.5, None]
    check_merge("Concatenate", {}, xs, masks, "float64")
    xs = [rng.standard_normal((2, T, 3)), rng.standard_normal((3, T, 3))]
    masks = [rng.random((2, T)) < 0.5, rng.random((3, T)) < 0.5]
    check_merge("Concatenate", {"axis": 0}, xs, masks, "float64")


# --------------------------------------------------------------------------- Dot
DOT_CASES = [  # (shapes without batch, axes)
    ([(3,), (3,)], 1), ([(3,), (3,)], -1), ([(3,), (3,)], (1, 1)), ([(3,), (3,)], (-1, 1)),
    ([(T, 3), (4, 3)], 2), ([(T, 3), (4, 3)], -1), ([(T, 3), (4, 3)], (2, -1)),
    ([(T, 3), (T, 4)], 1), ([(T, 3), (T, 4)], (1, -2)),
    ([(T, 3), (3, 4)], (2, 1)), ([(T, 3), (3, 4)], (-1, -2)),
    ([(3,), (3, 4)], (1, 1)), ([(T, 3), (3,)], (2, 1)), ([(T, 3), (3,)], (-1, -1)),
    ([(T, 2, 3), (4, 3)], (3, 2)), ([(T, 2, 3), (T, 2, 3)], -1),
    ([(2, 3, 4), (4, 3, T)], (2, 2)), ([(2, 3, 4), (4, 3, T)], (-1, 1)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("shapes, axes", DOT_CASES)
def test_dot(shapes, axes, normalize, dtype, rng):
    full = [(B, *s) for s in shapes]
    xs = [rng.standard_normal(s).astype(dtype) for s in full]
    _, layer = check_merge("Dot", {"axes": axes, "normalize": normalize}, xs, [None, None],
                           dtype)
    # Masks take no part and none is handed on.
    masks = make_masks("all", full, rng)
    check_merge("Dot", {"axes": axes, "normalize": normalize}, xs, masks, dtype)
    np.testing.assert_array_equal(layer._run(xs, masks, False)[0], layer(xs))
    if normalize and axes == 1 and len(shapes[0]) == 1:  # cosine: within [-1, 1]
        assert np.all(np.abs(layer(xs)) <= 1 + 1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dot_normalize_small_and_zero_vectors(dtype, rng):
    """Keras 3's normalize: x / max(norm, 1e-7). Norms from 1e-7 up agree with Keras's NumPy
    backend (x / norm), a zero vector gives 0; below, x * 1e7 as keras.ops.normalize (the
    TensorFlow, JAX and PyTorch backends), where the NumPy backend divides by the norm."""
    x = rng.standard_normal((B, 3, 4)).astype(dtype)
    y = rng.standard_normal((B, 3, T)).astype(dtype)
    x[0, :, 1] = 0
    x[1] *= 3e-7 / np.linalg.norm(x[1], axis=0)  # unit norm over axis 1 scaled to 3e-7
    y[2, :, 0] = 1e-6
    check_merge("Dot", {"axes": 1, "normalize": True}, [x, y], [None, None], dtype)
    x[3] *= 1e-9 / np.linalg.norm(x[3], axis=0)
    layer = rnnkit.Dot(1, normalize=True, dtype=dtype)
    with np.errstate(divide="ignore"):  # rsqrt of the zero vector's 0, then capped
        normalized = [np.asarray(keras.ops.normalize(v, axis=1)) for v in (x, y)]
    reference = rnnkit.Dot(1, dtype=dtype)(normalized)
    assert_results_close(layer([x, y]), reference, dtype, "tiny norms", tolerances=TOL)
    assert np.abs(layer([x, y])[3]).max() < 1e-1  # not the unit-norm cosine


def test_dot_output_shapes():
    """The documented example shapes, and a rank-2 result padded to (batch, 1)."""
    assert rnnkit.Dot((1, 2)).compute_output_shape([(None, 20, 1), (None, 30, 20)]) == (
        None, 1, 30)
    assert rnnkit.Dot(1).compute_output_shape([(7, 3), (7, 3)]) == (7, 1)
    assert rnnkit.Dot(-1).compute_output_shape([(None, None, 3), (None, 4, 3)]) == (
        None, None, 4)


# --------------------------------------------------------------------------- masked models
def merged_model(lib, name, both_masked):
    """Input -> Masking -> Dense branches (one unmasked unless both_masked) -> merge ->
    GlobalAveragePooling1D, which averages over the merged mask."""
    L = lib.layers
    x = lib.Input((T, 3))
    masked = L.Masking()(x)
    a = L.Dense(4)(masked)
    b = L.Dense(4)(masked if both_masked else x)
    kwargs = {"Concatenate": {"axis": 1}, "Dot": {"axes": 2}}.get(name, {})
    merged = getattr(L, name)(**kwargs)([a, b])
    return lib.Model(x, L.GlobalAveragePooling1D()(merged))


@pytest.mark.parametrize("both_masked", [True, False])
@pytest.mark.parametrize("name", [*ELEMENTWISE, "Concatenate", "Dot"])
def test_masked_functional_model(name, both_masked, rng):
    x = rng.standard_normal((B, T, 3)).astype("float32")
    x[0, 3:] = 0  # right padding
    x[1, :2] = 0  # left padding
    x[2, 1] = 0
    keras_model = merged_model(keras, name, both_masked)
    keras_model.set_weights([rng.uniform(-0.7, 0.7, w.shape).astype(w.dtype)
                             for w in keras_model.get_weights()])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = np.asarray(keras_model(x))
    model = merged_model(rnnkit, name, both_masked)
    model.set_weights(keras_model.get_weights())
    assert_results_close(model(x), expected, "float32", name)


# --------------------------------------------------------------------------- configs
CONFIG_CASES = [(name, {}, [(B, T, 3)] * 2) for name in ELEMENTWISE] + [
    ("Add", {}, [(B, T, 3)] * 3),
    ("Concatenate", {"axis": 1}, [(B, T, 3), (B, 2, 3)]),
    ("Dot", {"axes": (2, 1), "normalize": True}, [(B, T, 3), (B, 3, 4)]),
    ("Dot", {"axes": -1}, [(B, T, 3), (B, 4, 3)]),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, kwargs, shapes", CONFIG_CASES)
def test_config_and_pickle_round_trips(name, kwargs, shapes, dtype, rng):
    xs = [rng.standard_normal(s).astype(dtype) for s in shapes]
    keras_layer = getattr(keras.layers, name)(dtype=dtype, **kwargs)
    layer = getattr(rnnkit, name)(dtype=dtype, **kwargs)
    expected = layer(xs)
    assert_results_close(expected, np.asarray(keras_layer(xs)), dtype, name, tolerances=TOL)
    # Keras's own config builds the rnnkit layer.
    keras_config = keras_layer.get_config()
    imported = type(layer)(**dict(keras_config, dtype=dtype))
    np.testing.assert_array_equal(imported(xs), expected)
    own = layer.get_config()
    for key, value in keras_config.items():
        if key not in ("name", "dtype"):
            want = list(value) if isinstance(value, tuple) else value
            got = list(own[key]) if isinstance(own[key], tuple) else own[key]
            assert got == want, key
    clone = type(layer).from_config(own)
    assert clone.dtype == dtype and clone.get_config() == own
    np.testing.assert_array_equal(clone(xs), expected)
    restored = pickle.loads(pickle.dumps(layer))
    np.testing.assert_array_equal(restored(xs), expected)
    assert restored.get_config() == own


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("name", [*ELEMENTWISE, "Concatenate", "Dot"])
def test_single_array_raises(name):
    kwargs = {"axes": 1} if name == "Dot" else {}
    x = np.ones((B, 3), "float32")
    with pytest.raises(ValueError):
        getattr(keras.layers, name)(**kwargs)(x)
    layer = getattr(rnnkit, name)(**kwargs)
    with pytest.raises(ValueError, match=rf"merge layer \({layer.name}\).*list of inputs"):
        layer(x)


@pytest.mark.parametrize("name, count", [("Subtract", 3), ("Subtract", 1), ("Dot", 3),
                                         ("Dot", 1)])
def test_wrong_input_counts(name, count):
    kwargs = {"axes": 1} if name == "Dot" else {}
    xs = [np.ones((B, 3), "float32")] * count
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError):
            getattr(keras.layers, name)(**kwargs)(xs)
    with pytest.raises(ValueError, match=rf"`{name}` layer should be called on 2 inputs"):
        getattr(rnnkit, name)(**kwargs)(xs)
    if count == 1:  # no input at all (Keras: a TypeError from its build)
        with pytest.raises(ValueError, match=rf"`{name}` layer should be called on 2 inputs"):
            getattr(rnnkit, name)(**kwargs)([])
        with pytest.raises(ValueError, match=r"`Add` layer should be called on at least 1"):
            rnnkit.Add()([])


BAD_INPUTS = [  # (layer, kwargs, input shapes, message)
    ("Add", {}, [(B, T, 3), (B, 4, 3)], r"add.*incompatible shapes"),
    ("Maximum", {}, [(B, 3), (B, 3), (B, 2)], r"maximum.*incompatible shapes"),
    ("Multiply", {}, [(B, T, 3), (B, T)], r"multiply.*incompatible shapes"),
    ("Subtract", {}, [(B, 3), (B + 1, 3)], r"different batch sizes \(subtract"),
    ("Average", {}, [(B, T, 3), (B + 1, 3)], r"different batch sizes \(average"),
    ("Concatenate", {}, [(B, 3), (B + 1, 3)], r"different batch sizes \(concatenate"),
    ("Concatenate", {}, [(B, T, 3), (B, 4, 3)], r"`Concatenate` layer \(concatenate.*matching"),
    ("Concatenate", {"axis": 1}, [(B, 3), (B, 3, 1)], r"`Concatenate`.*matching shapes"),
    ("Dot", {"axes": 1}, [(B, 3), (B + 1, 3)], r"different batch sizes \(dot"),
    ("Dot", {"axes": 1}, [(B, 3), (B, 4)], r"x\.shape\[1\] != y\.shape\[1\] \(3 != 4\)"),
    ("Dot", {"axes": (2, 1)}, [(B, T, 3), (B, 4, T)], r"x\.shape\[2\] != y\.shape\[1\]"),
    ("Dot", {"axes": -1}, [(B, T, 3), (B, 2)], r"\(3 != 2\)"),
    ("Dot", {"axes": 0}, [(B, 3), (B, 3)], r"dot.*axis 0 is the batch"),
]


@pytest.mark.parametrize("name, kwargs, shapes, message", BAD_INPUTS)
def test_bad_inputs_raise(name, kwargs, shapes, message):
    xs = [np.ones(s, "float32") for s in shapes]
    with pytest.raises(ValueError):
        getattr(keras.layers, name)(**kwargs)(xs)
    with pytest.raises(ValueError, match=message):
        getattr(rnnkit, name)(**kwargs)(xs)


@pytest.mark.parametrize("name", ["Add", "Minimum"])
def test_incompatible_output_shapes_raise(name):
    shapes = [(None, T, 3), (None, 4, 3)]
    with pytest.raises(ValueError, match="incompatible shapes"):
        getattr(keras.layers, name)().compute_output_shape(shapes)
    layer = getattr(rnnkit, name)()
    with pytest.raises(ValueError, match=rf"{layer.name} have incompatible shapes"):
        layer.compute_output_shape(shapes)
    # An unknown dim between them hides the conflict, in Keras as here.
    shapes = [(None, T, 3), (None, None, 3), (None, 4, 3)]
    assert layer.compute_output_shape(shapes) == (
        getattr(keras.layers, name)().compute_output_shape(shapes))


@pytest.mark.parametrize("axes", [(1, 1.0), (1, 2, 3), [1], "a", None])
def test_bad_dot_axes_raise(axes):
    with pytest.raises((ValueError, TypeError)):  # Keras: TypeError for "a" and None
        keras.layers.Dot(axes)
    with pytest.raises(ValueError, match=r"Invalid format for argument `axes`"):
        rnnkit.Dot(axes)
