"""rnnkit.Model's API on its own: building (rnnkit.Input, symbolic calls), calling (arrays,
lists, dicts, masks), the Keras model methods (summary, count_params, get_layer,
compute_output_shape, compute_mask, predict with a progress bar, states), and the errors a user
meets. (Numbers against Keras: test_functional.py.)"""

import numpy as np
import pytest

import rnnkit
from rnnkit.layers.symbolic import SymbolicTensor

STEPS, FEATURES = 5, 3


def two_input_model():
    x = rnnkit.Input((None, FEATURES), name="x")
    side = rnnkit.Input((2,), name="side")
    h = rnnkit.LSTM(4)(rnnkit.Masking()(x))
    out = rnnkit.Dense(1)(rnnkit.Concatenate()([h, side]))
    return rnnkit.Model([x, side], out, name="two_inputs")


def test_input_and_symbolic_calls_give_shapes_and_dtypes():
    x = rnnkit.Input((None, FEATURES))
    assert isinstance(x, SymbolicTensor) and x.shape == (None, None, FEATURES)
    ids = rnnkit.Input((STEPS,), dtype="int32", batch_size=2)
    assert ids.shape == (2, STEPS) and ids.dtype == "int32"
    seq, h, c = rnnkit.LSTM(4, return_sequences=True, return_state=True)(x)
    assert seq.shape == (None, None, 4) and h.shape == c.shape == (None, 4)
    pooled = rnnkit.GlobalMaxPooling1D()(rnnkit.Conv1D(6, 2, strides=2)(x))
    assert pooled.shape == (None, 6)
    assert rnnkit.Embedding(10, 3)(ids).shape == (2, STEPS, 3)
    with pytest.raises(TypeError, match="no values"):
        np.asarray(x)


def test_call_with_list_dict_and_single_arrays(rng):
    model = two_input_model()
    x = rng.standard_normal((3, STEPS, FEATURES)).astype("float32")
    side = rng.standard_normal((3, 2)).astype("float32")
    by_list = model([x, side])
    np.testing.assert_array_equal(by_list, model({"x": x, "side": side}))
    np.testing.assert_allclose(by_list, model.predict([x, side], batch_size=2), rtol=1e-5)
    assert model.input_names == ["x", "side"]
    single = rnnkit.Model(model.inputs[0], rnnkit.LSTM(2)(model.inputs[0]))
    np.testing.assert_array_equal(single(x), single([x]))  # a one-input list, as Keras


def test_keras_model_methods(rng):
    model = two_input_model()
    assert [type(layer).__name__ for layer in model.layers] == [
        "InputLayer", "Masking", "LSTM", "InputLayer", "Concatenate", "Dense"]
    assert model.get_layer("x") is model.layers[0]
    lstm, dense = 4 * 4 * (FEATURES + 4 + 1), (4 + 2) * 1 + 1
    assert model.count_params() == sum(w.size for w in model.get_weights()) == lstm + dense
    assert model.compute_output_shape([(7, None, FEATURES), (7, 2)]) == (7, 1)
    assert model.output_shape == (None, 1)
    lines = []
    text = model.summary(print_fn=lines.append)
    assert lines == [text]
    for name in ("x (InputLayer)", "Concatenate", "Total params: 135", "Connected to"):
        assert name in text
    with pytest.raises(ValueError, match="No such layer"):
        model.get_layer("nope")


def test_non_trainable_weights_are_counted_apart(rng):
    x = rnnkit.Input((STEPS, FEATURES))
    model = rnnkit.Model(x, rnnkit.LSTM(2)(rnnkit.BatchNormalization()(x)))
    text = model.summary(print_fn=lambda _: None)
    assert "Non-trainable params: 6" in text  # moving mean and variance
    assert len(model.trainable_weights) == len(model.weights) - 2


def test_compute_mask_follows_keras_through_the_graph(rng):
    x = rnnkit.Input((STEPS, FEATURES))
    masked = rnnkit.Masking()(x)
    seq = rnnkit.GRU(3, return_sequences=True)(masked)
    model = rnnkit.Model(x, [seq, rnnkit.GlobalAveragePooling1D()(seq), rnnkit.Flatten()(seq)])
    data = rng.standard_normal((2, STEPS, FEATURES)).astype("float32")
    data[0, 3:] = 0
    masks = model.compute_mask(data)
    np.testing.assert_array_equal(masks[0], np.any(data != 0, axis=-1))
    assert masks[1] is None and masks[2] is None


def test_predict_shows_a_progress_bar(rng, capsys):
    model = two_input_model()
    x = rng.standard_normal((5, STEPS, FEATURES)).astype("float32")
    side = rng.standard_normal((5, 2)).astype("float32")
    got = model.predict([x, side], batch_size=2, verbose=1)
    assert got.shape == (5, 1)
    err = capsys.readouterr().err
    assert "3/3 [" in err and "ms/step" in err
    with pytest.raises(ValueError, match="batch_size"):
        model.predict([x, side], batch_size=0)


def test_stateful_layers_inside_a_model_carry_and_reset(rng):
    x = rnnkit.Input((None, FEATURES), batch_size=2)
    model = rnnkit.Model(x, rnnkit.LSTM(3, stateful=True)(x))
    data = rng.standard_normal((2, STEPS, FEATURES)).astype("float32")
    first = model(data)
    assert not np.allclose(model(data), first)
    model.reset_states()
    np.testing.assert_allclose(model(data), first, rtol=1e-6)


def test_models_nest_both_ways(rng):
    inner = rnnkit.Sequential([rnnkit.Input((STEPS, FEATURES)), rnnkit.GRU(3)])
    x = rnnkit.Input((STEPS, FEATURES))
    outer = rnnkit.Model(x, rnnkit.Dense(1)(inner(x)))
    sequential = rnnkit.Sequential([outer, rnnkit.Activation("sigmoid")])
    data = rng.standard_normal((2, STEPS, FEATURES)).astype("float32")
    np.testing.assert_allclose(sequential(data), 1 / (1 + np.exp(-outer(data))), rtol=1e-6)


def test_config_round_trip_rebuilds_the_graph(rng):
    model = two_input_model()
    x = rng.standard_normal((2, STEPS, FEATURES)).astype("float32")
    side = rng.standard_normal((2, 2)).astype("float32")
    copy = rnnkit.Model.from_config(model.get_config())
    np.testing.assert_array_equal(copy([x, side]), model([x, side]))


# ----------------------------------------------------------------------------- errors
def test_building_errors():
    x = rnnkit.Input((STEPS, FEATURES))
    other = rnnkit.Input((STEPS, FEATURES), name="other")
    y = rnnkit.Add()([rnnkit.LSTM(2)(x), rnnkit.GRU(2)(other)])
    with pytest.raises(ValueError, match="Graph disconnected.*'other'"):
        rnnkit.Model(x, y)
    with pytest.raises(TypeError, match="symbolic tensors"):
        rnnkit.Model(x, np.zeros((1, 2)))
    with pytest.raises(ValueError, match="rnnkit.Input"):
        rnnkit.Model(rnnkit.LSTM(2)(x), y)
    with pytest.raises(ValueError, match="rank"):
        rnnkit.LSTM(2)(rnnkit.Input((FEATURES,)))
    with pytest.raises(ValueError, match="sparse"):
        rnnkit.Input((3,), sparse=True)


def test_calling_errors_leave_the_model_usable(rng):
    model = two_input_model()
    x = rng.standard_normal((2, STEPS, FEATURES)).astype("float32")
    side = rng.standard_normal((2, 2)).astype("float32")
    before = model([x, side])
    with pytest.raises(ValueError, match="expects 2 inputs"):
        model([x])
    with pytest.raises(ValueError, match="missing.*side"):
        model({"x": x})
    with pytest.raises(ValueError, match="InputLayer"):
        model([x[..., :2], side])
    np.testing.assert_array_equal(model([x, side]), before)


def test_recurrent_layers_give_initial_states_as_keras(rng):
    from conftest import import_keras

    keras = import_keras()
    for name, make in {
        "lstm": lambda lib: lib.layers.LSTM(3),
        "stacked": lambda lib: lib.layers.RNN([lib.layers.GRUCell(2), lib.layers.LSTMCell(4)]),
    }.items():
        ours, theirs = make(rnnkit), make(keras)
        data = np.zeros((2, STEPS, FEATURES), "float32")
        ours(data), theirs(data)
        shapes = [np.shape(s) for s in rnnkit.layers.symbolic.flatten(ours.get_initial_state(5))]
        assert shapes == [np.shape(s) for s in rnnkit.layers.symbolic.flatten(
            theirs.get_initial_state(5))], name
        assert not any(np.any(s) for s in rnnkit.layers.symbolic.flatten(
            ours.get_initial_state(5)))


def test_blas_runs_on_one_thread_inside_a_model_with_several_rnnkit_threads(rng):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from rnnkit.layers.core import ModelLayer

    def blas_threads():
        return [i["num_threads"] for i in threadpoolctl.threadpool_info()
                if i["user_api"] == "blas"]

    seen = []

    class _Probe(ModelLayer):  # a leading underscore keeps it out of the layer registry
        def call(self, inputs):
            seen.append(blas_threads())
            return inputs

    x = rnnkit.Input((STEPS, FEATURES))
    model = rnnkit.Model(x, _Probe()(rnnkit.LSTM(2, return_sequences=True)(x)))
    data = rng.standard_normal((2, STEPS, FEATURES)).astype("float32")
    saved = rnnkit.get_num_threads()
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        before = blas_threads()
        try:
            for threads in (2, 1):
                rnnkit.set_num_threads(threads)
                seen.clear()
                model(data)
                model.predict(data, batch_size=1)
                expected = [1] * len(before) if threads > 1 else before
                assert seen and all(s == expected for s in seen), (threads, seen)
                assert blas_threads() == before  # restored after the call
        finally:
            rnnkit.set_num_threads(saved)
