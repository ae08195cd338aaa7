"""rnnkit.Model against live Keras 3 over a variety of functional graphs: every merge layer,
several inputs and outputs (lists and dicts), states wired into initial_state, masks through
merges and pooling, shared layers, nested models, explicit masks, convolutions and attention
around recurrent layers.

Each graph is written once, against a namespace (`keras` or `rnnkit`), and built in both:
Keras's model gets random weights; rnnkit gets them four ways, each compared with Keras's
outputs: `from_keras` (the live model), `load_keras` of the saved `.keras` and `.h5` files, and
the same graph built with rnnkit's own API taking `keras_model.get_weights()` (so the order of
`layers` and `get_weights()` is Keras's). The loaded model also survives rnnkit.save/load and
pickling with the same numbers.
"""

import pickle

import numpy as np
import pytest

import rnnkit
from conftest import assert_results_close, import_keras

keras = import_keras()

BATCH, STEPS, FEATURES, VOCAB = 4, 6, 3, 9


# ----------------------------------------------------------------------------- graphs
def merged_branches(lib, merge):
    """Two recurrent branches of a masked input, merged, pooled with the mask."""
    L = lib.layers
    x = lib.Input((STEPS, FEATURES), name="x")
    masked = L.Masking()(x)
    a = L.LSTM(4, return_sequences=True)(masked)
    b = L.GRU(4, return_sequences=True)(masked)
    merged = getattr(L, merge)()([a, b]) if merge != "Concatenate" else L.Concatenate()([a, b])
    pooled = L.GlobalAveragePooling1D()(merged)
    return lib.Model(x, L.Dense(2)(pooled))


def three_way_merge(lib, merge):
    L = lib.layers
    x = lib.Input((STEPS, FEATURES))
    masked = L.Masking()(x)
    branches = [L.SimpleRNN(3, return_sequences=True)(masked) for _ in range(3)]
    return lib.Model(x, L.LSTM(2)(getattr(L, merge)()(branches)))


def dot_products(lib):
    L = lib.layers
    x = lib.Input((STEPS, FEATURES))
    a = L.LSTM(4, return_sequences=True)(x)
    b = L.GRU(4, return_sequences=True)(x)
    scores = L.Dot(axes=(2, 2))([a, b])  # (batch, steps, steps)
    u, v = L.LSTM(4)(x), L.GRU(4)(x)
    cosine = L.Dot(axes=1, normalize=True)([u, v])  # (batch, 1)
    return lib.Model(x, [scores, cosine])


def side_features(lib):
    """A sequence and a vector of side features in, a dict of two heads out."""
    L = lib.layers
    seq = lib.Input((STEPS, FEATURES), name="seq")
    side = lib.Input((5,), name="side")
    encoded = L.Bidirectional(L.LSTM(3))(L.Masking()(seq))
    joined = L.Concatenate()([encoded, L.Dense(4, activation="relu")(side)])
    return lib.Model({"seq": seq, "side": side},
                     {"label": L.Dense(3, activation="softmax")(joined),
                      "score": L.Dense(1)(joined)})


def seq2seq(lib):
    """Character-level seq2seq: the encoder's states start the decoder."""
    L = lib.layers
    encoder_in = lib.Input((None, FEATURES), name="encoder_in")
    decoder_in = lib.Input((None,), dtype="int32", name="decoder_in")
    _, h, c = L.LSTM(5, return_state=True)(L.Masking()(encoder_in))
    embedded = L.Embedding(VOCAB, 4, mask_zero=True)(decoder_in)
    decoded = L.LSTM(5, return_sequences=True)(embedded, initial_state=[h, c])
    return lib.Model([encoder_in, decoder_in], L.Dense(VOCAB, activation="softmax")(decoded))


def gru_states_both_ways(lib):
    """Bidirectional states (forward then backward) wired into two decoders."""
    L = lib.layers
    x = lib.Input((STEPS, FEATURES))
    out, forward_h, backward_h = L.Bidirectional(L.GRU(3, return_state=True))(x)
    y = L.GRU(3, return_sequences=True)(x, initial_state=[forward_h])
    z = L.GRU(3, go_backwards=True)(x, initial_state=backward_h)
    return lib.Model(x, [out, y, z])


def shared_layer(lib):
    """One LSTM (one set of weights) read by two inputs."""
    L = lib.layers
    left = lib.Input((STEPS, FEATURES))
    right = lib.Input((STEPS, FEATURES))
    shared = L.LSTM(4)
    difference = L.Subtract()([shared(L.Masking()(left)), shared(right)])
    return lib.Model([left, right], L.Dense(1, activation="sigmoid")(difference))


def nested_models(lib):
    L = lib.layers
    inner_in = lib.Input((STEPS, FEATURES))
    inner = lib.Model(inner_in, L.GRU(3, return_sequences=True)(inner_in), name="inner")
    head = lib.Sequential([lib.Input((STEPS, 3)), L.LSTM(2)], name="head")
    x = lib.Input((STEPS, FEATURES))
    twice = L.Add()([inner(x), inner(L.Masking()(x))])
    return lib.Model(x, [head(twice), inner(x)])


def explicit_mask(lib):
    L = lib.layers
    x = lib.Input((STEPS, FEATURES))
    keep = lib.Input((STEPS,), dtype="bool")
    y = L.LSTM(3, return_sequences=True)(x, mask=keep)
    return lib.Model([x, keep], L.GRU(2)(y))


def cnn_rnn(lib):
    """A speech/OCR-style front end: convolutions and pooling before the recurrent layers."""
    L = lib.layers
    x = lib.Input((12, FEATURES))
    y = L.Conv1D(6, 3, padding="same", activation="relu")(x)
    y = L.BatchNormalization()(y)
    y = L.MaxPooling1D(2)(y)
    y = L.Bidirectional(L.GRU(4, return_sequences=True))(y)
    return lib.Model(x, L.Dense(3, activation="softmax")(L.GlobalMaxPooling1D()(y)))


def residual_stack(lib):
    L = lib.layers
    x = lib.Input((STEPS, FEATURES))
    y = L.Dense(4)(L.Masking()(x))
    for _ in range(2):
        y = L.LayerNormalization()(L.Add()([y, L.LSTM(4, return_sequences=True)(y)]))
    return lib.Model(x, [L.GlobalAveragePooling1D()(y), L.Dense(2)(y)])


def two_headed_tagger(lib):
    L = lib.layers
    ids = lib.Input((STEPS,), dtype="int32")
    y = L.Bidirectional(L.LSTM(3, return_sequences=True))(L.Embedding(VOCAB, 4, mask_zero=True)(
        ids))
    return lib.Model(ids, [L.TimeDistributed(L.Dense(4, activation="softmax"))(y),
                           L.Dense(2)(y)])


def attention_head(lib):
    """Attention and MultiHeadAttention read different tensors: Keras 3's MultiHeadAttention
    removes the masks of the tensors it reads when it runs, so a layer reading the same tensor
    after it (in Keras's run order) sees no mask (docs/import.md)."""
    L = lib.layers
    x = lib.Input((STEPS, FEATURES))
    seq = L.LSTM(4, return_sequences=True)(L.Masking()(x))
    other = L.GRU(4, return_sequences=True)(L.Masking()(x))
    context = L.Attention()([seq, seq])
    attended = L.MultiHeadAttention(num_heads=2, key_dim=3)(other, other)
    joined = L.Concatenate()([context, attended])
    return lib.Model(x, L.Dense(2)(L.GlobalAveragePooling1D()(joined)))


GRAPHS = {
    **{f"merge_{m}": (lambda lib, m=m: merged_branches(lib, m))
       for m in ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate")},
    **{f"three_way_{m}": (lambda lib, m=m: three_way_merge(lib, m))
       for m in ("Add", "Multiply", "Maximum", "Minimum", "Average", "Concatenate")},
    "dot_products": dot_products,
    "side_features": side_features,
    "seq2seq": seq2seq,
    "gru_states_both_ways": gru_states_both_ways,
    "shared_layer": shared_layer,
    "nested_models": nested_models,
    "explicit_mask": explicit_mask,
    "cnn_rnn": cnn_rnn,
    "residual_stack": residual_stack,
    "two_headed_tagger": two_headed_tagger,
    "attention_head": attention_head,
}


# ----------------------------------------------------------------------------- data
def padded_floats(rng, steps=STEPS):
    x = rng.standard_normal((BATCH, steps, FEATURES)).astype("float32")
    x[0, steps - 2:] = 0  # right padding
    x[1, :2] = 0  # left padding
    x[3] = 0  # a row that is all padding
    return x


def inputs_for(model, rng):
    """Random inputs for every input of a Keras model (ids, masks or padded floats)."""
    values = []
    for tensor in model.inputs:
        shape = tuple(STEPS if d is None else d for d in tensor.shape[1:])
        if "int" in str(tensor.dtype):
            ids = rng.integers(1, VOCAB, (BATCH, *shape))
            ids[0, -2:] = 0
            values.append(ids.astype("int32"))
        elif "bool" in str(tensor.dtype):
            keep = rng.random((BATCH, *shape)) < 0.7
            keep[:, 0] = True
            values.append(keep)
        elif len(shape) == 2:
            values.append(padded_floats(rng, shape[0]) if shape[1] == FEATURES else
                          rng.standard_normal((BATCH, *shape)).astype("float32"))
        else:
            values.append(rng.standard_normal((BATCH, *shape)).astype("float32"))
    return values


def as_call(model, values):
    names = [t.name if hasattr(t, "name") else None for t in model.inputs]
    if isinstance(model.input, dict):
        return dict(zip(model.input.keys(), values))
    return values[0] if len(values) == 1 else values
    del names


def to_numpy(value):
    if isinstance(value, dict):
        return {k: to_numpy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_numpy(v) for v in value]
    return np.asarray(value)


@pytest.fixture(scope="module", params=sorted(GRAPHS))
def case(request, tmp_path_factory):
    rng = np.random.default_rng(abs(hash(request.param)) % 2**32)
    keras_model = GRAPHS[request.param](keras)
    keras_model.set_weights([
        rng.uniform(0.5, 1.5 if "variance" in w.path else -0.7, w.shape).astype(w.dtype)
        if "variance" in w.path else rng.uniform(-0.7, 0.7, w.shape).astype(w.dtype)
        for w in keras_model.weights])
    values = inputs_for(keras_model, rng)
    expected = to_numpy(keras_model(as_call(keras_model, values)))
    folder = tmp_path_factory.mktemp(request.param)
    keras_model.save(folder / "model.keras")
    keras_model.save(folder / "model.h5")
    return {"name": request.param, "keras": keras_model, "values": values,
            "expected": expected, "folder": folder}


def check(model, case, how):
    assert_same_outputs(model(as_call(case["keras"], case["values"])), case, how)


def assert_same_outputs(got, case, how):
    expected = case["expected"]
    if isinstance(expected, dict):  # outputs given as a dict come back as one
        assert isinstance(got, dict) and sorted(got) == sorted(expected)
        got, expected = [got[k] for k in sorted(got)], [expected[k] for k in sorted(got)]
    assert_results_close(got, expected, "float32", f"{case['name']} {how}")


# ----------------------------------------------------------------------------- tests
def test_from_keras(case):
    model = rnnkit.from_keras(case["keras"])
    assert isinstance(model, rnnkit.Model)
    assert [layer.name for layer in model.layers] == [layer.name for layer in case["keras"].layers]
    assert model.count_params() == case["keras"].count_params()
    check(model, case, "from_keras")


@pytest.mark.parametrize("fmt", ["keras", "h5"])
def test_load_keras(case, fmt):
    check(rnnkit.load_keras(case["folder"] / f"model.{fmt}"), case, fmt)


def test_built_in_rnnkit_with_keras_weights(case):
    model = GRAPHS[case["name"]](rnnkit)
    assert [type(layer).__name__.replace("Model", "Functional") for layer in model.layers] == [
        type(layer).__name__ for layer in case["keras"].layers]
    model.set_weights(case["keras"].get_weights())
    check(model, case, "rnnkit API")


def test_save_load_and_pickle(case, tmp_path):
    model = rnnkit.from_keras(case["keras"])
    rnnkit.save(model, tmp_path / "model.rnnkit")
    check(rnnkit.load(tmp_path / "model.rnnkit"), case, "rnnkit.load")
    check(pickle.loads(pickle.dumps(model)), case, "pickle")


def test_predict_in_batches(case):
    model = rnnkit.from_keras(case["keras"])
    got = model.predict(as_call(case["keras"], case["values"]), batch_size=3)
    assert_same_outputs(got, case, "predict")


def test_summary_and_shapes(case):
    model = rnnkit.from_keras(case["keras"])
    text = model.summary(print_fn=lambda _: None)
    for layer in case["keras"].layers:
        assert layer.name in text
    assert f"Total params: {case['keras'].count_params():,}" in text
    shapes = model.output_shape
    keras_shapes = case["keras"].output_shape
    assert to_shapes(shapes) == to_shapes(keras_shapes)


def to_shapes(value):
    if isinstance(value, dict):
        return {k: to_shapes(v) for k, v in value.items()}
    if isinstance(value, list) and value and not isinstance(value[0], (int, type(None))):
        return [to_shapes(v) for v in value]
    return tuple(value)
