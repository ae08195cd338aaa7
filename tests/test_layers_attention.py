"""rnnkit's Attention, AdditiveAttention and MultiHeadAttention against live Keras 3 (NumPy
backend), weights copied across: every argument, float32 and float64, masks (query and value
masks with fully masked rows, causal, sliding window, explicit attention masks), attention
scores, 3-D and 4-D inputs, the key given or not; `_invoke` (a functional model's call, with the
masks the model carries) against Keras tensors carrying masks and a functional Keras model;
output shapes, configs, pickling and errors.

Keras's NumPy `dot_product_attention` (MultiHeadAttention's fused path: 3-D inputs, no dropout,
no scores returned) takes its softmax in float32 even for float64 inputs; rnnkit stays in
float64. There the float64 comparison is at 1e-6 against that path, and at full precision
against Keras's float64 Softmax path on every query row that has a key to attend to.
"""

import pickle

import numpy as np
import pytest

import rnnkit
from conftest import DTYPES, TOLERANCES, assert_results_close, import_keras, random_mask

keras = import_keras()
from keras.src import backend as keras_backend  # noqa: E402

B, TQ, TV = 4, 3, 5
FUSED_FLOAT64 = {"rtol": 1e-6, "atol": 1e-6}


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def random_weights(layer, rng, dtype):
    layer.set_weights(
        [rng.uniform(-0.8, 0.8, np.shape(w)).astype(dtype) for w in layer.get_weights()]
    )


def keras_masked(x, mask):
    """A copy of `x` carrying a Keras mask, as a tensor coming out of Masking does."""
    x = np.array(x)
    if mask is not None:
        keras_backend.set_keras_mask(x, mask)
    return x


def keras_mask_of(outputs):
    if isinstance(outputs, (list, tuple)):
        return tuple(keras_backend.get_keras_mask(o) for o in outputs)
    return keras_backend.get_keras_mask(outputs)


def assert_masks_equal(got, want, label=""):
    if isinstance(want, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(want), (label, got, want)
        for g, w in zip(got, want):
            assert_masks_equal(g, w, label)
        return
    if want is None:
        assert got is None, f"{label}: expected no mask, got {got}"
        return
    assert isinstance(got, np.ndarray) and got.dtype == bool, f"{label}: {got!r}"
    np.testing.assert_array_equal(got, np.asarray(want, bool), err_msg=label)


def mask_lookup(masks):
    """A model's `mask_of`: the mask carried by each array (by identity), lists mapped."""

    def mask_of(value):
        if isinstance(value, (list, tuple)):
            return [mask_of(v) for v in value]
        return masks.get(id(value))

    return mask_of


def live_rows(scores, n_axes=1):
    """Query positions with at least one key to attend to (Softmax-path weights sum to 1)."""
    total = scores.sum(axis=tuple(range(-n_axes, 0)))
    return total.min(axis=1) > 0.5  # the heads axis


# ---------------------------------------------------------------------------------------
# Attention and AdditiveAttention
# ---------------------------------------------------------------------------------------
ATTENTION_CASES = {
    "dot": ("Attention", {}),
    "dot_scale": ("Attention", {"use_scale": True}),
    "concat": ("Attention", {"score_mode": "concat"}),
    "concat_scale": ("Attention", {"score_mode": "concat", "use_scale": True}),
    "dot_dropout": ("Attention", {"dropout": 0.3, "seed": 7}),
    "additive": ("AdditiveAttention", {}),
    "additive_no_scale": ("AdditiveAttention", {"use_scale": False}),
    "additive_dropout": ("AdditiveAttention", {"dropout": 0.2}),
}
ATTENTION_MASKS = ("none", "query", "value", "both")


def attention_inputs(rng, dtype, with_key, batch_shape=(B,)):
    vdim = 6 if with_key else 4  # without a key the value is the key: its dim is the query's
    inputs = [
        rng.standard_normal((*batch_shape, TQ, 4)).astype(dtype),
        rng.standard_normal((*batch_shape, TV, vdim)).astype(dtype),
    ]
    if with_key:
        inputs.append(rng.standard_normal((*batch_shape, TV, 4)).astype(dtype))
    return inputs


def attention_pair(case, shapes, dtype, rng):
    cls, kwargs = ATTENTION_CASES[case]
    keras_layer = getattr(keras.layers, cls)(dtype=dtype, **kwargs)
    keras_layer.build([tuple(s) for s in shapes])
    random_weights(keras_layer, rng, dtype)
    layer = getattr(rnnkit.layers, cls)(dtype=dtype, **kwargs)
    layer.build([tuple(s) for s in shapes])
    layer.set_weights(keras_layer.get_weights())
    return keras_layer, layer


def attention_masks(rng, case):
    """[query_mask, value_mask] with fully masked rows (row 0 of each) and masked ends."""
    if case == "none":
        return None
    qm, vm = random_mask(rng, B, TQ), random_mask(rng, B, TV)
    return [qm if case in ("query", "both") else None, vm if case in ("value", "both") else None]


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("masks", ATTENTION_MASKS)
@pytest.mark.parametrize("with_key", [False, True], ids=["no_key", "key"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(ATTENTION_CASES))
def test_attention_matches_keras(case, dtype, with_key, masks, causal, rng):
    inputs = attention_inputs(rng, dtype, with_key)
    keras_layer, layer = attention_pair(case, [x.shape for x in inputs], dtype, rng)
    mask = attention_masks(rng, masks)
    for scores in (False, True):
        want = keras_layer(inputs, mask=mask, return_attention_scores=scores,
                           use_causal_mask=causal)
        got = layer(inputs, mask=mask, return_attention_scores=scores, use_causal_mask=causal)
        assert_results_close(got, want, dtype, label=f"scores={scores}")
    y, out_mask = layer._run(inputs, mask, False)
    assert_results_close(y, keras_layer(inputs, mask=mask), dtype, label="_run")
    assert_masks_equal(out_mask, keras_layer.compute_mask(inputs, mask), "_run mask")
    assert_masks_equal(layer.compute_mask(inputs, mask), keras_layer.compute_mask(inputs, mask))


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["dot", "concat_scale", "additive"])
def test_attention_4d_inputs(case, dtype, causal, rng):
    inputs = attention_inputs(rng, dtype, True, batch_shape=(2, 3))
    keras_layer, layer = attention_pair(case, [x.shape for x in inputs], dtype, rng)
    qm, vm = rng.random((2, 3, TQ)) < 0.7, rng.random((2, 3, TV)) < 0.7
    qm[0, 0], vm[0, 1] = False, False
    # Keras expands a value mask (batch..., Tv) to (batch..., 1, Tv) only when it is 2-D or
    # with the causal mask; the 4-D reference gets the expanded mask.
    keras_vm = vm if causal else vm[..., None, :]
    want = keras_layer(inputs, mask=[qm, keras_vm], return_attention_scores=True,
                       use_causal_mask=causal)
    got = layer(inputs, mask=[qm, vm], return_attention_scores=True, use_causal_mask=causal)
    assert_results_close(got, want, dtype)


@pytest.mark.parametrize("kwargs_case", ["none", "scores", "causal", "explicit_mask", "keyword"])
@pytest.mark.parametrize("with_key", [False, True], ids=["no_key", "key"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["dot_scale", "additive"])
def test_attention_invoke_masks_as_keras(case, dtype, with_key, kwargs_case, rng):
    """_invoke: `mask` not given is the masks the inputs carry; the output mask is the query's
    (with scores: (query mask, None)), as Keras's Layer.__call__ and compute_mask."""
    inputs = attention_inputs(rng, dtype, with_key)
    keras_layer, layer = attention_pair(case, [x.shape for x in inputs], dtype, rng)
    carried = [random_mask(rng, B, TQ), random_mask(rng, B, TV), random_mask(rng, B, TV)]
    keras_inputs = [keras_masked(x, m) for x, m in zip(inputs, carried)]
    kwargs = {"scores": {"return_attention_scores": True}, "causal": {"use_causal_mask": True},
              "explicit_mask": {"mask": [None, random_mask(rng, B, TV)]}}.get(kwargs_case, {})
    if kwargs_case == "keyword":
        want = keras_layer(inputs=keras_inputs, **kwargs)
        args, kwargs = (), {"inputs": inputs}
    else:
        want = keras_layer(keras_inputs, **kwargs)
        args = (inputs,)
    masks = {id(x): m for x, m in zip(inputs, carried)}
    got, got_mask = layer._invoke(args, kwargs, mask_lookup(masks), False)
    assert_results_close(got, want, dtype)
    assert_masks_equal(got_mask, keras_mask_of(want))


# ---------------------------------------------------------------------------------------
# MultiHeadAttention
# ---------------------------------------------------------------------------------------
MHA = {"num_heads": 2, "key_dim": 3}
MHA_CASES = {
    "default": MHA,
    "one_head": {"num_heads": 1, "key_dim": 2},
    "value_dim": {**MHA, "value_dim": 4},
    "no_bias": {**MHA, "use_bias": False},
    "output_int": {**MHA, "output_shape": 5},
    "output_tuple": {**MHA, "output_shape": (2, 3)},
    "gate": {**MHA, "use_gate": True, "value_dim": 5},
    "gate_no_bias": {**MHA, "use_gate": True, "use_bias": False},
    "dropout": {**MHA, "dropout": 0.2, "seed": 3},
    "sliding_window": {**MHA, "sliding_window": 2},
    "axes_int": {**MHA, "attention_axes": 1},
    "axes_negative": {**MHA, "attention_axes": (-2,)},
    "flash": {**MHA, "flash_attention": True},  # rnnkit only: Keras's NumPy backend has none
}


def mha_pair(kwargs, q, v, k, dtype, rng):
    keras_kwargs = {n: a for n, a in kwargs.items() if n != "flash_attention"}
    keras_layer = keras.layers.MultiHeadAttention(dtype=dtype, **keras_kwargs)
    shapes = (q.shape, v.shape, None if k is None else k.shape)
    keras_layer.build(*shapes)
    random_weights(keras_layer, rng, dtype)
    layer = rnnkit.layers.MultiHeadAttention(dtype=dtype, **kwargs)
    layer.build(*shapes)
    layer.set_weights(keras_layer.get_weights())
    return keras_layer, layer


def keras_mha(layer, q, v, k=None, query_mask=None, **kwargs):
    """Keras's layer called with the query carrying `query_mask` (Keras reads it there)."""
    return layer(keras_masked(q, query_mask), v, k, **kwargs)


def check_mha(keras_layer, layer, dtype, q, v, k=None, query_mask=None, **kwargs):
    """rnnkit's outputs (and scores) against Keras's, the fused float64 path as the module
    docstring says."""
    want = keras_mha(keras_layer, q, v, k, query_mask, **kwargs)
    got = layer(q, v, k, query_mask=query_mask, **kwargs)
    scores = kwargs.get("return_attention_scores", False)
    fused = not scores and keras_layer.dropout == 0 and q.ndim == 3
    if dtype == "float64" and fused:
        assert_results_close(got, want, dtype, tolerances={dtype: FUSED_FLOAT64})
        exact, weights = keras_mha(keras_layer, q, v, k, query_mask,
                                   **{**kwargs, "return_attention_scores": True})
        live = live_rows(weights)
        np.testing.assert_allclose(got[live], exact[live], **TOLERANCES[dtype])
    else:
        assert_results_close(got, want, dtype)
    return got


@pytest.mark.parametrize("scores", [False, True], ids=["outputs", "scores"])
@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
@pytest.mark.parametrize("with_key", [False, True], ids=["no_key", "key"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(MHA_CASES))
def test_mha_matches_keras(case, dtype, with_key, masked, scores, rng):
    q = rng.standard_normal((B, TQ, 4)).astype(dtype)
    v = rng.standard_normal((B, TV, 6)).astype(dtype)
    k = rng.standard_normal((B, TV, 5)).astype(dtype) if with_key else None
    keras_layer, layer = mha_pair(MHA_CASES[case], q, v, k, dtype, rng)
    masks = {}
    if masked:  # the query's own mask and a value mask, each with a fully masked row
        masks = {"query_mask": random_mask(rng, B, TQ), "value_mask": random_mask(rng, B, TV)}
    if case == "flash" and scores:
        with pytest.raises(ValueError, match="flash attention"):
            layer(q, v, k, return_attention_scores=True)
        return
    check_mha(keras_layer, layer, dtype, q, v, k, return_attention_scores=scores, **masks)


MHA_MASKS = (
    "query", "value", "key", "query_value", "causal", "causal_query", "attention",
    "attention_value", "attention_int", "attention_2d", "causal_attention", "causal_sliding",
    "everything",
)


@pytest.mark.parametrize("dropout", [0.0, 0.2])
@pytest.mark.parametrize("scores", [False, True], ids=["outputs", "scores"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("masks", MHA_MASKS)
def test_mha_masks_match_keras(masks, dtype, scores, dropout, rng):
    q = rng.standard_normal((B, TQ, 4)).astype(dtype)
    v = rng.standard_normal((B, TV, 6)).astype(dtype)
    k = rng.standard_normal((B, TV, 5)).astype(dtype)
    kwargs = {**MHA, "dropout": dropout}
    if "sliding" in masks or masks == "everything":
        kwargs["sliding_window"] = 2
    keras_layer, layer = mha_pair(kwargs, q, v, k, dtype, rng)
    attention = rng.random((B, TQ, TV)) < 0.7
    attention[1, 0] = False  # a fully masked query row
    call = {"return_attention_scores": scores}
    if masks in ("query", "query_value", "causal_query", "everything"):
        call["query_mask"] = random_mask(rng, B, TQ)
    if masks in ("value", "query_value", "attention_value", "everything"):
        call["value_mask"] = random_mask(rng, B, TV)
    if masks in ("key", "everything"):
        call["key_mask"] = random_mask(rng, B, TV)
    if masks.startswith("causal") or masks == "everything":
        call["use_causal_mask"] = True
    if "attention" in masks or masks == "everything":
        call["attention_mask"] = {"attention_int": attention.astype("int32"),
                                  "attention_2d": attention[2]}.get(masks, attention)
    check_mha(keras_layer, layer, dtype, q, v, k, **call)


AXES_CASES = {  # attention_axes, value shape for a query (2, 3, 4, 4)
    "default": (None, (2, 5, 6, 5)),
    "axis1": ((1,), (2, 5, 4, 5)),
    "axis2": ((2,), (2, 3, 6, 5)),
    "both": ((1, 2), (2, 5, 6, 5)),
    "negative": (-2, (2, 3, 6, 5)),
    "reversed": ((2, 1), (2, 5, 6, 5)),
}


@pytest.mark.parametrize("extra", ["none", "attention_mask", "query_mask", "causal"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axes", sorted(AXES_CASES))
def test_mha_4d_inputs_and_attention_axes(axes, dtype, extra, rng):
    """4-D inputs, attention over other axes: Keras's numbers where Keras accepts the call, a
    ValueError where Keras fails (its causal mask and query masks only fit some axes)."""
    attention_axes, value_shape = AXES_CASES[axes]
    q = rng.standard_normal((2, 3, 4, 4)).astype(dtype)
    v = rng.standard_normal(value_shape).astype(dtype)
    keras_layer, layer = mha_pair({**MHA, "attention_axes": attention_axes}, q, v, None, dtype,
                                  rng)
    _, weights = layer(q, v, return_attention_scores=True)
    n_axes = 2 if attention_axes in (None, (1, 2), (2, 1)) else 1
    call = {}
    if extra == "attention_mask":  # the scores' shape without the heads axis
        shape = list(weights.shape)
        del shape[-2 * n_axes - 1]
        call["attention_mask"] = rng.random(shape) < 0.7
    elif extra == "query_mask":
        call["query_mask"] = rng.random(q.shape[:-1]) < 0.7
    elif extra == "causal":
        call["use_causal_mask"] = True
    for scores in (False, True):
        try:
            want = keras_mha(keras_layer, q, v, return_attention_scores=scores, **call)
        except Exception:  # noqa: BLE001 -- whatever Keras raises, rnnkit raises ValueError
            with pytest.raises(ValueError, match="mask"):
                layer(q, v, return_attention_scores=scores, **call)
            continue
        got = layer(q, v, return_attention_scores=scores, **call)
        assert_results_close(got, want, dtype, label=f"scores={scores}")


def test_mha_explicit_query_mask_is_ignored_by_keras(rng):
    """Keras's call reads the query's mask from the query tensor: an explicit `query_mask` on
    a tensor without one changes nothing, in Keras and in rnnkit's `_invoke`."""
    q, v = rng.standard_normal((B, TQ, 4)), rng.standard_normal((B, TV, 4))
    q, v = q.astype("float32"), v.astype("float32")
    keras_layer, layer = mha_pair(MHA, q, v, None, "float32", rng)
    qm = random_mask(rng, B, TQ)
    plain = keras_layer(q, v)
    np.testing.assert_array_equal(keras_layer(q, v, query_mask=qm), plain)
    got, got_mask = layer._invoke((q, v), {"query_mask": qm}, mask_lookup({}), False)
    assert_results_close(got, plain, "float32")
    assert got_mask is None
    # __call__'s query_mask stands for the query's own mask
    check_mha(keras_layer, layer, "float32", q, v, query_mask=qm)


MHA_INVOKE = {
    "positional": ((0, 1), {}),
    "key": ((0, 1, 2), {}),
    "keywords": ((0,), {"value": 1, "key": 2}),
    "explicit_value_mask": ((0, 1), {"value_mask": "vm"}),
    "explicit_query_mask": ((0, 1), {"query_mask": "vm_q"}),
    "scores": ((0, 1, 2), {"return_attention_scores": True}),
    "attention_causal": ((0, 1), {"attention_mask": "am", "use_causal_mask": True}),
    "self": ((0, 0), {}),
    "self_scores": ((0, 0), {"return_attention_scores": True}),
}


@pytest.mark.parametrize("carried", [True, False], ids=["carried", "no_masks"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(MHA_INVOKE))
def test_mha_invoke_masks_as_keras(case, dtype, carried, rng):
    """_invoke fills query/value/key masks from the masks the model carries (as Keras's
    Layer.__call__); the output mask is the query's (with scores: (query mask, None))."""
    arrays = [rng.standard_normal((B, TQ, 4)), rng.standard_normal((B, TQ, 4)),
              rng.standard_normal((B, TQ, 5))]
    arrays = [a.astype(dtype) for a in arrays]
    carried_masks = [random_mask(rng, B, TQ) if carried else None for _ in arrays]
    extra = {"vm": random_mask(rng, B, TQ), "vm_q": random_mask(rng, B, TQ),
             "am": rng.random((B, TQ, TQ)) < 0.7}
    positions, kw = MHA_INVOKE[case]
    key_given = 2 in positions or "key" in kw
    keras_layer, layer = mha_pair(MHA, arrays[0], arrays[1], arrays[2] if key_given else None,
                                  dtype, rng)
    keras_arrays = [keras_masked(a, m) for a, m in zip(arrays, carried_masks)]

    def resolve(value, table):
        return table[value] if type(value) is int else extra.get(value, value)

    want = keras_layer(*[keras_arrays[i] for i in positions],
                       **{n: resolve(a, keras_arrays) for n, a in kw.items()})
    masks = {id(a): m for a, m in zip(arrays, carried_masks)}
    got, got_mask = layer._invoke([arrays[i] for i in positions],
                                  {n: resolve(a, arrays) for n, a in kw.items()},
                                  mask_lookup(masks), False)
    scores = kw.get("return_attention_scores", False)
    fused = not scores
    tolerances = {dtype: FUSED_FLOAT64} if fused and dtype == "float64" else TOLERANCES
    assert_results_close(got, want, dtype, tolerances=tolerances)
    assert_masks_equal(got_mask, keras_mask_of(want))


# ---------------------------------------------------------------------------------------
# functional models: Masking -> attention layers
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_functional_model_masks(dtype, rng):
    """A Keras model Input -> Masking -> Attention / AdditiveAttention / MultiHeadAttention,
    against rnnkit's Masking and the layers' `_invoke` with the masks handed on."""
    q = rng.standard_normal((B, TQ, 4)).astype(dtype)
    v = rng.standard_normal((B, TV, 4)).astype(dtype)
    q[0] = 0  # a fully padded query row
    q[1, -1] = 0
    v[2] = 0  # a fully padded value row
    v[3, [0, 2]] = 0
    L = keras.layers
    qi, vi = keras.Input((TQ, 4), dtype=dtype), keras.Input((TV, 4), dtype=dtype)
    mq, mv = L.Masking(dtype=dtype)(qi), L.Masking(dtype=dtype)(vi)
    att = L.Attention(use_scale=True, dtype=dtype)
    add = L.AdditiveAttention(dtype=dtype)
    mha = L.MultiHeadAttention(2, 3, dtype=dtype)
    a = att([mq, mv])
    b = add([a, mv, mv], return_attention_scores=True)[0]
    c = mha(b, mv, attention_mask=None, return_attention_scores=True)[0]
    model = keras.Model([qi, vi], [a, b, c])
    for layer in (att, add, mha):
        random_weights(layer, rng, dtype)
    want = model([q, v], training=False)

    rk = {name: getattr(rnnkit.layers, name)(**kw, dtype=dtype) for name, kw in (
        ("Attention", {"use_scale": True}), ("AdditiveAttention", {}),
        ("MultiHeadAttention", {"num_heads": 2, "key_dim": 3}))}
    rk["Attention"].build([q.shape, v.shape])
    rk["AdditiveAttention"].build([q.shape, v.shape, v.shape])
    rk["MultiHeadAttention"].build(q.shape, v.shape)
    for keras_layer, name in ((att, "Attention"), (add, "AdditiveAttention"),
                              (mha, "MultiHeadAttention")):
        rk[name].set_weights(keras_layer.get_weights())
    masking = rnnkit.layers.Masking(dtype=dtype)
    (qz, q_mask), (vz, v_mask) = masking._run(q, None, False), masking._run(v, None, False)
    masks = {id(qz): q_mask, id(vz): v_mask}
    mask_of = mask_lookup(masks)
    ga, ma = rk["Attention"]._invoke(([qz, vz],), {}, mask_of, False)
    masks[id(ga)] = ma
    (gb, _), (mb, _) = rk["AdditiveAttention"]._invoke(
        ([ga, vz, vz],), {"return_attention_scores": True}, mask_of, False)
    masks[id(gb)] = mb
    (gc, _), (mc, _) = rk["MultiHeadAttention"]._invoke(
        (gb, vz), {"attention_mask": None, "return_attention_scores": True}, mask_of, False)
    assert_results_close([ga, gb, gc], want, dtype)
    for got_mask in (ma, mb, mc):  # the query's mask, handed on
        np.testing.assert_array_equal(got_mask, q_mask)


# ---------------------------------------------------------------------------------------
# shapes, configs, pickling
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("shapes", [
    [(None, 3, 4), (None, 5, 6)], [(2, None, 4), (2, None, 6), (2, None, 4)],
    [(2, 3, 3, 4), (2, 3, 5, 6)],
])
@pytest.mark.parametrize("cls", ["Attention", "AdditiveAttention"])
def test_attention_compute_output_shape(cls, shapes):
    want = getattr(keras.layers, cls)().compute_output_shape(shapes)
    assert getattr(rnnkit.layers, cls)().compute_output_shape(shapes) == tuple(want)


@pytest.mark.parametrize("output_shape", [None, 5, (2, 3)])
@pytest.mark.parametrize("shapes", [
    ((None, 3, 4), (None, 5, 6), None), ((2, None, 4), (2, None, 6), (2, None, 7)),
    ((2, 3, 4, 4), (2, 5, 6, 5), None),
])
def test_mha_compute_output_shape(shapes, output_shape):
    kwargs = {**MHA, "output_shape": output_shape}
    want = keras.layers.MultiHeadAttention(**kwargs).compute_output_shape(*shapes)
    layer = rnnkit.layers.MultiHeadAttention(**kwargs)
    assert layer.compute_output_shape(*shapes) == tuple(want)
    assert layer.compute_output_shape(list(shapes[:2])) == layer.compute_output_shape(*shapes[:2])


def _three_layers(rng, dtype):
    q = rng.standard_normal((B, TQ, 4)).astype(dtype)
    v = rng.standard_normal((B, TV, 4)).astype(dtype)
    qm, vm = random_mask(rng, B, TQ), random_mask(rng, B, TV)
    cases = []
    for case in ("concat_scale", "additive"):
        keras_layer, layer = attention_pair(case, [q.shape, v.shape], dtype, rng)
        cases.append((keras_layer, layer, lambda lay: lay([q, v], mask=[qm, vm],
                                                          return_attention_scores=True)))
    kwargs = {**MHA, "value_dim": 2, "output_shape": (2, 2), "use_gate": True,
              "sliding_window": 2, "attention_axes": (1,)}
    keras_layer, layer = mha_pair(kwargs, q, v, None, dtype, rng)
    cases.append((keras_layer, layer, lambda lay: lay(q, v, value_mask=vm,
                                                      return_attention_scores=True)))
    return cases


@pytest.mark.parametrize("dtype", DTYPES)
def test_config_round_trips(dtype, rng):
    for keras_layer, layer, call in _three_layers(rng, dtype):
        config = layer.get_config()
        keras_config = keras_layer.get_config()
        missing = {k for k in keras_config if k not in config and not k.endswith(
            ("_regularizer", "_constraint"))}
        assert not missing, f"{type(layer).__name__} config lacks {missing}"
        clone = type(layer).from_config(config)
        assert clone.get_config() == config
        # as the Keras importer builds it: Keras's config, initializers "zeros"
        imported_config = {k: ("zeros" if k.endswith("_initializer") else a)
                           for k, a in keras_config.items() if k != "dtype"}
        imported = type(layer)(**imported_config, dtype=dtype)
        for other in (clone, imported):
            call(other)  # builds on first use
            other.set_weights(layer.get_weights())
            assert_results_close(call(other), call(layer), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pickle_round_trips(dtype, rng):
    for _, layer, call in _three_layers(rng, dtype):
        clone = pickle.loads(pickle.dumps(layer))
        for got, want in zip(call(clone), call(layer)):
            np.testing.assert_array_equal(got, want)
        assert clone.get_config() == layer.get_config()


# ---------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: rnnkit.layers.Attention(score_mode="additive"),
    lambda: rnnkit.layers.Attention(dropout=1.5),
    lambda: rnnkit.layers.AdditiveAttention(dropout=-0.1),
    lambda: rnnkit.layers.MultiHeadAttention(0, 3),
    lambda: rnnkit.layers.MultiHeadAttention(2, "3"),
    lambda: rnnkit.layers.MultiHeadAttention(2, 3, value_dim=-1),
    lambda: rnnkit.layers.MultiHeadAttention(2, 3, output_shape=(2, 0)),
    lambda: rnnkit.layers.MultiHeadAttention(2, 3, attention_axes="1"),
    lambda: rnnkit.layers.MultiHeadAttention(2, 3, attention_axes=()),
    lambda: rnnkit.layers.MultiHeadAttention(2, 3, sliding_window=0),
    lambda: rnnkit.layers.MultiHeadAttention(2, 3, flash_attention=True, dropout=0.1),
])
def test_bad_arguments_raise(make):
    with pytest.raises(ValueError, match="Received|flash"):
        make()


def test_bad_attention_inputs_raise(rng):
    q, v = rng.standard_normal((B, TQ, 4)), rng.standard_normal((B, TV, 4))
    layer = rnnkit.layers.AdditiveAttention()
    bad_calls = [
        lambda: layer(q),
        lambda: layer([q]),
        lambda: layer([q, v, v, v]),
        lambda: layer([q[0], v[0]]),  # rank 2
        lambda: layer([q, v[:2]]),  # batch
        lambda: layer([q, v, v[..., :3]]),  # key dim != query dim
        lambda: layer([q, v], mask=random_mask(rng, B, TQ)),  # not a list
        lambda: layer([q, v], mask=[random_mask(rng, B, TV), None]),  # query mask shape
        lambda: layer([q[..., :3], v[..., :3]]),  # scale built for dim 4
        lambda: rnnkit.layers.Attention(dropout=0.5)([q, v], training=True),
        lambda: layer.build((B, TQ, 4)),
        lambda: layer._invoke(([q, v],), {"bogus": 1}, mask_lookup({}), False),
    ]
    layer([q, v])
    for i, bad in enumerate(bad_calls):
        with pytest.raises(ValueError, match=r"Received|training|support"):
            bad()
            pytest.fail(f"bad call {i} did not raise")


def test_bad_mha_inputs_raise(rng):
    q, v = rng.standard_normal((B, TQ, 4)), rng.standard_normal((B, TV, 6))
    layer = rnnkit.layers.MultiHeadAttention(2, 3, dropout=0.1)
    bad_calls = [
        lambda: layer(q[..., :3], v),  # query features after build
        lambda: layer(q, v[..., :5]),  # value features
        lambda: layer(q, v, v[:, :4]),  # key and value lengths differ
        lambda: layer(q[:, None], v[:, None]),  # rank after build
        lambda: layer(q[:2], v),  # batch
        lambda: layer(q, v, attention_mask=np.ones((B, TV, TQ), bool)),
        lambda: layer(q, v, value_mask=np.ones((B, TQ), bool)),
        lambda: layer(q, v, training=True),
        lambda: layer.build((B, TQ, 4)),
        lambda: rnnkit.layers.MultiHeadAttention(2, 3).build((B, TQ, 4), (B, TV, 6), (B, 4, 6)),
        lambda: rnnkit.layers.MultiHeadAttention(2, 3, attention_axes=2)(q, v),
        lambda: rnnkit.layers.MultiHeadAttention(2, 3, attention_axes=(1, 1))(q[:, None],
                                                                              v[:, None]),
        lambda: rnnkit.layers.MultiHeadAttention(2, 3, flash_attention=True)(
            q, v, return_attention_scores=True),
        lambda: layer._invoke((q, v, None, None, None, None, None, False, None, False, 1), {},
                              mask_lookup({}), False),
    ]
    layer(q, v)
    for i, bad in enumerate(bad_calls):
        with pytest.raises(ValueError, match=r"Received|training|support|mask|flash"):
            bad()
            pytest.fail(f"bad call {i} did not raise")


def test_training_without_dropout_is_inference(rng):
    q, v = rng.standard_normal((B, TQ, 4)), rng.standard_normal((B, TV, 4))
    layer = rnnkit.layers.MultiHeadAttention(2, 3)
    np.testing.assert_array_equal(layer(q, v, training=True), layer(q, v))
    att = rnnkit.layers.Attention()
    np.testing.assert_array_equal(att([q, v], training=True), att([q, v]))
