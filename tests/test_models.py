"""rnnkit.Sequential and the layers around recurrent layers, on their own: mask propagation,
shapes, and the errors a user meets. (Their numbers against Keras: test_keras_import.py.)"""

import numpy as np
import pytest

import rnnkit
from rnnkit.models.sequential import apply_layer

BATCH, STEPS, FEATURES = 3, 5, 2


@pytest.fixture
def x(rng):
    data = rng.standard_normal((BATCH, STEPS, FEATURES)).astype("float32")
    data[0, 3:] = 0
    data[1, 0] = 0
    return data


def test_masking_zeroes_masked_steps_and_hands_on_the_mask(x):
    masking = rnnkit.Masking(0.0)
    x = x.copy()
    x[2, 1, 0] = 0  # one zero feature is not a masked step
    y, mask = apply_layer(masking, x, None, False)
    expected_mask = np.any(x != 0, axis=-1)
    np.testing.assert_array_equal(mask, expected_mask)
    np.testing.assert_array_equal(y, np.where(expected_mask[..., None], x, 0))
    assert mask[2, 1]


def test_embedding_mask_zero_and_id_checks():
    embedding = rnnkit.Embedding(6, 3, mask_zero=True)
    ids = np.array([[1, 0, 5], [0, 0, 2]])
    y, mask = apply_layer(embedding, ids, None, False)
    assert y.shape == (2, 3, 3) and y.dtype == np.float32
    np.testing.assert_array_equal(y[0, 2], embedding.embeddings[5])
    np.testing.assert_array_equal(mask, ids != 0)
    np.testing.assert_array_equal(embedding(ids.astype("float64")), y)  # whole floats convert
    with pytest.raises(ValueError, match=r"\[0, 6\)"):
        embedding(np.array([[1, 6]]))
    with pytest.raises(ValueError, match=r"\[0, 6\)"):
        embedding(np.array([[-1, 2]]))
    with pytest.raises(ValueError, match="whole numbers"):
        embedding(np.array([[1.5, 2.0]]))
    assert apply_layer(rnnkit.Embedding(6, 3), ids, None, False)[1] is None


@pytest.mark.parametrize("return_sequences", [False, True])
def test_recurrent_layers_pass_the_mask_only_with_sequences(x, return_sequences):
    mask = np.any(x != 0, axis=-1)
    for layer in (rnnkit.LSTM(4, return_sequences=return_sequences),
                  rnnkit.Bidirectional(rnnkit.GRU(3, return_sequences=return_sequences))):
        y, out_mask = apply_layer(layer, x, mask, False)
        np.testing.assert_array_equal(y, layer(x, mask=mask))
        if return_sequences:
            np.testing.assert_array_equal(out_mask, mask)
        else:
            assert out_mask is None


def test_layers_that_pass_or_drop_the_mask(x):
    mask = np.any(x != 0, axis=-1)
    for layer in (rnnkit.Dense(3), rnnkit.Dropout(0.5), rnnkit.Activation("relu"),
                  rnnkit.TimeDistributed(rnnkit.Dense(2)), rnnkit.GaussianNoise(0.1)):
        assert apply_layer(layer, x, mask, False)[1] is mask
    for layer in (rnnkit.Flatten(), rnnkit.Reshape((FEATURES, STEPS))):
        assert apply_layer(layer, x, mask, False)[1] is None


def test_sequential_propagates_masks_like_calling_the_layers(x):
    lstm = rnnkit.LSTM(4, return_sequences=True)
    gru = rnnkit.GRU(3)
    model = rnnkit.Sequential([rnnkit.Masking(), rnnkit.Dense(4), lstm, gru])
    mask = np.any(x != 0, axis=-1)
    hidden = model.layers[1](np.where(mask[..., None], x, 0))
    expected = gru(lstm(hidden, mask=mask), mask=mask)
    np.testing.assert_array_equal(model(x), expected)
    # An input mask given to the model reaches the first recurrent layer.
    first, second = rnnkit.LSTM(4, return_sequences=True), rnnkit.GRU(3)
    plain = rnnkit.Sequential([first, second])
    got = plain(x, mask=mask)
    np.testing.assert_array_equal(got, second(first(x, mask=mask), mask=mask))
    assert not np.allclose(got, plain(x))  # the mask did matter


def test_shapes_build_and_summary(x):
    model = rnnkit.Sequential([
        rnnkit.InputLayer(shape=(STEPS, FEATURES)),
        rnnkit.Bidirectional(rnnkit.LSTM(4, return_sequences=True)),
        rnnkit.TimeDistributed(rnnkit.Dense(3)),
        rnnkit.Flatten(),
        rnnkit.RepeatVector(2),
        rnnkit.Reshape((-1,)),
    ])
    assert model.compute_output_shape((None, STEPS, FEATURES)) == (None, 2 * STEPS * 3)
    model.build((None, STEPS, FEATURES))
    assert model.built and model.count_params() == 2 * (FEATURES + 4 + 1) * 16 + (8 + 1) * 3
    assert model(x).shape == (BATCH, 2 * STEPS * 3)
    text = model.summary(print_fn=lambda _: None)
    assert "(None, 5, 8)" in text and "Bidirectional(LSTM)" in text
    assert "?" in rnnkit.Sequential([rnnkit.LSTM(2)]).summary(print_fn=lambda _: None)


def test_sequential_set_weights_checks_everything_first(x):
    model = rnnkit.Sequential([rnnkit.LSTM(3), rnnkit.Dense(2)])
    model(x)
    before = model.get_weights()
    bad = [w + 1 for w in before]
    bad[-1] = np.zeros(5)
    with pytest.raises(ValueError, match="expected shape"):
        model.set_weights(bad)
    with pytest.raises(ValueError, match="expects 5 weight arrays"):
        model.set_weights(before[:2])
    for got, want in zip(model.get_weights(), before):
        np.testing.assert_array_equal(got, want)


def test_errors_a_user_meets(x):
    model = rnnkit.Sequential([rnnkit.InputLayer(shape=(STEPS, FEATURES)), rnnkit.LSTM(3)])
    with pytest.raises(ValueError, match="InputLayer"):
        model(x[..., :1])
    with pytest.raises(ValueError, match="InputLayer"):
        model(x[0])
    with pytest.raises(ValueError, match="first layer"):
        rnnkit.Sequential([rnnkit.LSTM(3), rnnkit.InputLayer(shape=(STEPS, FEATURES))])
    with pytest.raises(ValueError, match="last layer"):
        rnnkit.Sequential([rnnkit.LSTM(3, return_state=True), rnnkit.Dense(2)])(x)
    with pytest.raises(ValueError, match="inference-only"):
        rnnkit.Sequential([rnnkit.Dropout(0.5)])(x, training=True)
    with pytest.raises(ValueError, match="TimeDistributed wraps"):
        rnnkit.TimeDistributed(rnnkit.LSTM(3))
    with pytest.raises(ValueError, match="Unknown `activation`.*softmax"):
        rnnkit.Dense(2, activation="sparsemax")
    with pytest.raises(TypeError, match="rnnkit layers"):
        rnnkit.Sequential([object()])
