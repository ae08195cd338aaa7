"""A fault inside one of rnnkit's worker threads (an allocation failing inside a product, or
any exception) reaches the caller as a Python exception, MemoryError for allocation failures;
the process goes on, the layer stays usable and its carried states are as before the call
(docs/reliability.md, "Threads"). Faults come from the pool's test hook
`_core._inject_worker_fault(after, kind)`: the task after `after` more tasks throws."""

import numpy as np
import pytest

import rnnkit
from rnnkit import _core


@pytest.fixture
def two_threads():
    saved = rnnkit.get_num_threads()
    rnnkit.set_num_threads(2)
    yield
    _core._inject_worker_fault(-1)
    rnnkit.set_num_threads(saved)


# (batch, units): rows shared out over the threads; one row with a wide step (split steps,
# the threads meeting at a barrier after every step).
RUNS = {"row slices": (256, 64), "split steps": (1, 256)}


def make(kind, stateful=False, cell="LSTM"):
    batch, units = RUNS[kind]
    layer = getattr(rnnkit, cell)(units, return_sequences=True, stateful=stateful)
    x = np.random.default_rng(0).standard_normal((batch, 64, 16)).astype("float32")
    layer(x)
    if stateful:
        layer.reset_states()
    return layer, x


@pytest.mark.parametrize("kind", sorted(RUNS))
@pytest.mark.parametrize("fault", ["memory", "runtime"])
@pytest.mark.parametrize("after", [0, 1])
def test_a_worker_fault_is_an_exception_and_the_layer_stays_usable(two_threads, kind, fault,
                                                                   after):
    layer, x = make(kind)
    expected = layer(x)
    calls = [lambda: layer(x)]
    if kind == "row slices":  # a masked batch of one row runs on the calling thread alone
        calls.append(lambda: layer(x, mask=np.ones(x.shape[:2], bool)))
    for call in calls:
        _core._inject_worker_fault(after, fault)
        with pytest.raises(MemoryError if fault == "memory" else RuntimeError):
            call()
        _core._inject_worker_fault(-1)
        np.testing.assert_array_equal(layer(x), expected)


@pytest.mark.parametrize("kind", sorted(RUNS))
@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
def test_a_failed_stateful_call_leaves_the_states_as_they_were(two_threads, kind, cell):
    layer, x = make(kind, stateful=True, cell=cell)
    layer(x)  # carried states now nonzero; the fast path writes them in place
    before = [np.array(s) for s in rnnkit.layers.symbolic.flatten(layer.states)]
    _core._inject_worker_fault(0, "memory")
    with pytest.raises(MemoryError):
        layer(x)
    _core._inject_worker_fault(-1)
    after = [np.array(s) for s in rnnkit.layers.symbolic.flatten(layer.states)]
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    # and it goes on from them as if the failed call had not happened
    twin, _ = make(kind, stateful=True, cell=cell)
    twin.set_weights(layer.get_weights())
    twin.reset_states([np.array(s) for s in before])
    np.testing.assert_array_equal(layer(x), twin(x))


def test_bidirectional_and_stacks_recover(two_threads):
    x = np.random.default_rng(1).standard_normal((256, 10, 8)).astype("float32")
    for layer in (rnnkit.Bidirectional(rnnkit.GRU(32, return_sequences=True)),
                  rnnkit.RNN([rnnkit.LSTMCell(32), rnnkit.GRUCell(16)], return_sequences=True)):
        expected = layer(x)
        _core._inject_worker_fault(0, "memory")
        with pytest.raises(MemoryError):
            layer(x)
        _core._inject_worker_fault(-1)
        np.testing.assert_array_equal(layer(x), expected)


def test_the_hook_refuses_unknown_kinds():
    with pytest.raises(ValueError, match="kind"):
        _core._inject_worker_fault(0, "segfault")
