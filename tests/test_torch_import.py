"""PyTorch recurrent modules into rnnkit: `rnnkit.from_torch`.

Each case makes a real torch module (PyTorch's own random initialization, biases included),
converts it, and compares everything the module returns — the output sequence and h_n (and
c_n) — on the same inputs, with and without initial states, batch-first and time-major,
batched and unbatched, and with right-padded rows given as a packed sequence in torch and as
`lengths` in rnnkit.
"""

import itertools

import numpy as np
import pytest
import torch

import rnnkit
from conftest import TOLERANCES, assert_results_close, seed_for

nn = torch.nn
INPUT, HIDDEN, BATCH, STEPS = 3, 4, 5, 6


def make_module(kind, **kwargs):
    torch.manual_seed(seed_for(kind, sorted(kwargs.items())) % 2**31)
    if kind == "RNN_TANH":
        return nn.RNN(INPUT, HIDDEN, nonlinearity="tanh", **kwargs)
    if kind == "RNN_RELU":
        return nn.RNN(INPUT, HIDDEN, nonlinearity="relu", **kwargs)
    return getattr(nn, kind)(INPUT, HIDDEN, **kwargs)


def flat_states(result):
    """(output, h_n) or (output, (h_n, c_n)) -> [output, h_n(, c_n)] as NumPy arrays."""
    output, states = result
    states = list(states) if isinstance(states, tuple) else [states]
    return [np.asarray(a.detach().numpy() if hasattr(a, "detach") else a)
            for a in (output, *states)]


KINDS = ("RNN_TANH", "RNN_RELU", "LSTM", "GRU")
GRID = list(itertools.product(KINDS, (1, 2, 3), (False, True), (False, True), (True, False)))


@pytest.mark.parametrize(
    "kind,num_layers,bidirectional,batch_first,bias", GRID,
    ids=[f"{k}-L{n}-{'bi' if b else 'uni'}-{'bf' if f else 'tm'}-{'bias' if c else 'nobias'}"
         for k, n, b, f, c in GRID],
)
@pytest.mark.parametrize("with_hx", [False, True], ids=["zero_state", "initial_state"])
def test_module_outputs_and_states_match(kind, num_layers, bidirectional, batch_first, bias,
                                         with_hx, rng):
    module = make_module(kind, num_layers=num_layers, bidirectional=bidirectional,
                         batch_first=batch_first, bias=bias).eval()
    converted = rnnkit.from_torch(module)
    assert isinstance(converted, rnnkit.TorchRNN)
    assert len(converted.layers) == num_layers
    assert all(isinstance(layer, rnnkit.Bidirectional) == bidirectional
               for layer in converted.layers)
    shape = (BATCH, STEPS, INPUT) if batch_first else (STEPS, BATCH, INPUT)
    x = rng.standard_normal(shape).astype("float32")
    hx = None
    if with_hx:
        state_shape = (num_layers * (2 if bidirectional else 1), BATCH, HIDDEN)
        h0 = rng.standard_normal(state_shape).astype("float32")
        c0 = rng.standard_normal(state_shape).astype("float32")
        hx = (h0, c0) if kind == "LSTM" else h0
    with torch.no_grad():
        torch_hx = None if hx is None else (
            tuple(torch.from_numpy(a) for a in hx) if kind == "LSTM" else torch.from_numpy(hx))
        want = flat_states(module(torch.from_numpy(x), torch_hx))
    got = flat_states(converted(x, hx))
    assert_results_close(got, want, "float32")
    if hx is None:
        np.testing.assert_allclose(converted.predict(x), want[0], **TOLERANCES["float32"])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batch_first", [True, False])
def test_unbatched_input(kind, batch_first, rng):
    module = make_module(kind, num_layers=2, bidirectional=True, batch_first=batch_first).eval()
    converted = rnnkit.from_torch(module)
    x = rng.standard_normal((STEPS, INPUT)).astype("float32")
    with torch.no_grad():
        want = flat_states(module(torch.from_numpy(x)))
    assert_results_close(flat_states(converted(x)), want, "float32")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [True, False])
def test_lengths_match_packed_sequences(kind, bidirectional, batch_first, rng):
    """Right-padded rows: torch packs them (pack_padded_sequence); rnnkit takes `lengths`.
    Padded outputs are zeros and h_n is each row's state at its own last step."""
    module = make_module(kind, num_layers=2, bidirectional=bidirectional,
                         batch_first=batch_first).eval()
    converted = rnnkit.from_torch(module)
    lengths = np.array([STEPS, 1, 3, STEPS - 1, 2])
    shape = (BATCH, STEPS, INPUT) if batch_first else (STEPS, BATCH, INPUT)
    x = rng.standard_normal(shape).astype("float32")
    with torch.no_grad():
        packed = nn.utils.rnn.pack_padded_sequence(
            torch.from_numpy(x), torch.from_numpy(lengths), batch_first=batch_first,
            enforce_sorted=False)
        packed_out, states = module(packed)
        output, _ = nn.utils.rnn.pad_packed_sequence(
            packed_out, batch_first=batch_first, total_length=STEPS)
    want = flat_states((output, states))
    got = flat_states(converted(x, lengths=lengths))
    assert_results_close(got, want, "float32")


@pytest.mark.parametrize("kind", KINDS)
def test_float64_module(kind, rng):
    module = make_module(kind, num_layers=2, bidirectional=True, batch_first=True).double()
    converted = rnnkit.from_torch(module)
    assert all(layer.dtype == "float64" for layer in converted.layers)
    x = rng.standard_normal((BATCH, STEPS, INPUT))
    with torch.no_grad():
        want = flat_states(module(torch.from_numpy(x)))
    assert_results_close(flat_states(converted(x)), want, "float64")


def test_dropout_between_layers_is_eval_mode(rng):
    """`dropout` acts in training only: the conversion computes what `module.eval()` does."""
    module = nn.LSTM(INPUT, HIDDEN, num_layers=3, dropout=0.5, batch_first=True).eval()
    converted = rnnkit.from_torch(module)
    x = rng.standard_normal((BATCH, STEPS, INPUT)).astype("float32")
    with torch.no_grad():
        want = flat_states(module(torch.from_numpy(x)))
    assert_results_close(flat_states(converted(x)), want, "float32")


@pytest.mark.parametrize("kind", ["RNNCell_tanh", "RNNCell_relu", "LSTMCell", "GRUCell"])
@pytest.mark.parametrize("bias", [True, False])
def test_cells(kind, bias, rng):
    if kind.startswith("RNNCell"):
        module = nn.RNNCell(INPUT, HIDDEN, bias=bias, nonlinearity=kind.split("_")[1])
    else:
        module = getattr(nn, kind)(INPUT, HIDDEN, bias=bias)
    cell = rnnkit.from_torch(module)
    x = rng.standard_normal((BATCH, INPUT)).astype("float32")
    h = rng.standard_normal((BATCH, HIDDEN)).astype("float32")
    c = rng.standard_normal((BATCH, HIDDEN)).astype("float32")
    with torch.no_grad():
        if kind == "LSTMCell":
            want = [a.numpy() for a in module(torch.from_numpy(x), (torch.from_numpy(h),
                                                                     torch.from_numpy(c)))]
        else:
            want = [module(torch.from_numpy(x), torch.from_numpy(h)).numpy()]
    _, states = cell(x, [h, c] if kind == "LSTMCell" else [h])
    assert_results_close([np.asarray(s) for s in states], want, "float32")


def test_gate_reordering_is_what_makes_gru_match(rng):
    """A GRU converted without reordering torch's r, z, n into Keras's z, r, h gives other
    numbers: the reorder is doing the work."""
    module = nn.GRU(INPUT, HIDDEN, batch_first=True)
    converted = rnnkit.from_torch(module)
    layer = converted.layers[0]
    kernel, recurrent, bias = layer.get_weights()
    w_ih = module.weight_ih_l0.detach().numpy()
    np.testing.assert_array_equal(kernel[:, :HIDDEN], w_ih[HIDDEN:2 * HIDDEN].T)  # z
    np.testing.assert_array_equal(kernel[:, HIDDEN:2 * HIDDEN], w_ih[:HIDDEN].T)  # r
    assert bias.shape == (2, 3 * HIDDEN)
    layer.set_weights([module.weight_ih_l0.detach().numpy().T,
                       module.weight_hh_l0.detach().numpy().T,
                       np.stack([module.bias_ih_l0.detach().numpy(),
                                 module.bias_hh_l0.detach().numpy()])])
    x = rng.standard_normal((BATCH, STEPS, INPUT)).astype("float32")
    with torch.no_grad():
        want = module(torch.from_numpy(x))[0].numpy()
    assert not np.allclose(converted.predict(x), want, atol=1e-3)


# ---------------------------------------------------------------------------------------
# refused
# ---------------------------------------------------------------------------------------
def test_projection_is_refused():
    with pytest.raises(ValueError, match="proj_size=2"):
        rnnkit.from_torch(nn.LSTM(INPUT, HIDDEN, proj_size=2))


def test_half_precision_needs_a_dtype(rng):
    module = nn.GRU(INPUT, HIDDEN, batch_first=True).to(torch.bfloat16)
    with pytest.raises(ValueError, match="bfloat16.*dtype='float32'"):
        rnnkit.from_torch(module)
    converted = rnnkit.from_torch(module, dtype="float32")
    x = rng.standard_normal((BATCH, STEPS, INPUT)).astype("float32")
    with torch.no_grad():
        want = module.float()(torch.from_numpy(x))[0].numpy()
    np.testing.assert_allclose(converted.predict(x), want, **TOLERANCES["float32"])


def test_other_modules_are_refused():
    with pytest.raises(ValueError, match="torch.nn.RNN, LSTM and GRU.*Linear"):
        rnnkit.from_torch(nn.Linear(3, 4))


def test_bad_states_and_lengths(rng):
    converted = rnnkit.from_torch(nn.LSTM(INPUT, HIDDEN, num_layers=2, batch_first=True))
    x = rng.standard_normal((BATCH, STEPS, INPUT)).astype("float32")
    h = np.zeros((2, BATCH, HIDDEN), "float32")
    with pytest.raises(ValueError, match="pair"):
        converted(x, h)
    with pytest.raises(ValueError, match=r"\(2, 5, 4\)"):
        converted(x, (h[:1], h[:1]))
    with pytest.raises(ValueError, match="lengths"):
        converted(x, lengths=[STEPS + 1] * BATCH)
