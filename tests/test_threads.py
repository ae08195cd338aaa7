"""One layer, many Python threads (docs/reliability.md, "Threads").

The C++ kernels run with the GIL released, so these calls really overlap.

- Stateless layers: every call from 8 threads x 1000 calls gives bit for bit the result of the
  same call made serially, on the fast path (plain calls) and the validating path (masks,
  initial states), with calls of several shapes racing to replace the layer's fast-path plan.
- Stateful layers are safe: calls (and reset_states / states) on one layer take turns, so the
  carried states end as after *some* serial order of the calls. The test makes that checkable
  exactly: a linear SimpleRNN with identity weights adds each call's input to its state, in
  integers exact in float32, so a lost update would show as a missing contribution.
- set_weights and set_num_threads while other threads call: no error, no crash, and every call
  after them uses the new weights / thread count.

Threads are joined with a generous timeout that only detects a deadlock; nothing here is timed.
"""

import threading

import numpy as np
import pytest

import rnnkit
from conftest import builtin_layers, flatten, recurrent_layer
from rnnkit.examples import MinimalRNNCell  # Keras's documented custom cell

THREADS = 8
CALLS = 1000
HANG_TIMEOUT = 600  # seconds; a deadlock detector, not a speed requirement


def run_in_threads(work, n=THREADS):
    """Run work(index) on n threads started together; re-raise the first error in a thread."""
    barrier = threading.Barrier(n)
    errors = []

    def body(index):
        try:
            barrier.wait()
            work(index)
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(HANG_TIMEOUT)
    assert not any(t.is_alive() for t in threads), "threads did not finish: deadlock?"
    if errors:
        raise errors[0]



FULL = {"return_sequences": True, "return_state": True}
LAYERS = {
    **{
        kind: lambda kind=kind: recurrent_layer(kind, 6, seed=1, **FULL)
        for kind in builtin_layers(variants=True)
    },
    "stacked": lambda: rnnkit.RNN([rnnkit.LSTMCell(6, seed=1), rnnkit.GRUCell(5, seed=2)], **FULL),
    "bidirectional": lambda: rnnkit.Bidirectional(rnnkit.GRU(6, seed=1, **FULL)),
    "custom": lambda: rnnkit.RNN(MinimalRNNCell(6), **FULL),
}
FEATURES = 4


def _call_pool(layer, mode, size=12):
    """`size` different calls (kwargs) of a few shapes, and their serial results."""
    rng = np.random.default_rng(5)
    calls = []
    for i in range(size):
        batch, steps = (3, 5) if i % 3 else (2, 7)  # two shapes: plans get replaced
        kwargs = {"inputs": rng.standard_normal((batch, steps, FEATURES)).astype("float32")}
        if mode == "validating":
            kwargs["mask"] = rng.random((batch, steps)) < 0.8
            if i % 2 and not isinstance(layer, rnnkit.Bidirectional):
                kwargs["initial_state"] = [
                    rng.standard_normal((batch, n)).astype("float32")
                    for group in layer._groups()
                    for n in group
                ]
        calls.append(kwargs)
    expected = [flatten(layer(**kwargs)) for kwargs in calls]
    return calls, expected


@pytest.mark.parametrize("mode", ["plain", "validating"])
@pytest.mark.parametrize("kind", LAYERS)
def test_stateless_layer_gives_serial_results_from_8_threads(kind, mode):
    layer = LAYERS[kind]()
    calls, expected = _call_pool(layer, mode)
    mismatches = []

    def work(index):
        for i in range(CALLS):
            j = (index * 5 + i) % len(calls)
            got = flatten(layer(**calls[j]))
            if len(got) != len(expected[j]) or not all(
                np.array_equal(g, e) for g, e in zip(got, expected[j])
            ):
                mismatches.append((index, i, j))

    run_in_threads(work)
    assert not mismatches, f"{len(mismatches)} of {THREADS * CALLS} calls differ: {mismatches[:5]}"


def test_stateless_layer_with_two_pool_threads_from_8_threads():
    """The batch-row thread pool and Python threads together (the pool is shared)."""
    previous = rnnkit.get_num_threads()
    rnnkit.set_num_threads(2)
    try:
        layer = rnnkit.LSTM(32, seed=3, return_sequences=True)
        x = np.random.default_rng(0).standard_normal((64, 12, 16)).astype("float32")
        expected = layer(x)
        mismatches = []

        def work(index):
            for _ in range(CALLS // 4):
                if not np.array_equal(layer(x), expected):
                    mismatches.append(index)

        run_in_threads(work)
    finally:
        rnnkit.set_num_threads(previous)
    assert not mismatches


# ----------------------------------------------------------------------------- stateful
UNITS = 4


def _counter(layer_class=rnnkit.SimpleRNN, **kwargs):
    """A stateful linear SimpleRNN with identity weights: state += x at every step."""
    layer = layer_class(UNITS, activation="linear", use_bias=False, stateful=True, **kwargs)
    layer.build((1, 1, UNITS))
    layer.set_weights([np.eye(UNITS), np.eye(UNITS)])
    return layer


def _check_counter_outputs(outputs, total):
    """Every call saw the state left by another call: outputs are the partial sums of some
    serial order, so all distinct (each input > 0), each thread's increasing, the largest the
    total."""
    values = np.concatenate([np.asarray(o) for o in outputs])
    assert values.shape == (THREADS * CALLS,)
    assert len(np.unique(values)) == values.size, "two calls saw the same state: lost update"
    for thread_values in outputs:
        assert np.all(np.diff(thread_values) > 0)
    assert values.max() == total


@pytest.mark.parametrize("mode", ["plain_first_calls", "plain", "masked", "mixed"])
def test_stateful_layer_calls_take_turns(mode):
    layer = _counter()
    if mode != "plain_first_calls":  # there the threads' first calls race to make the plan
        layer(np.zeros((1, 1, UNITS), "float32"))  # fixes the batch size; state 0
    outputs = [[] for _ in range(THREADS)]

    def work(index):
        x = np.full((1, 1, UNITS), index + 1, "float32")
        mask = np.ones((1, 1), bool)
        masked = mode == "masked" or (mode == "mixed" and index % 2)
        for _ in range(CALLS):
            y = layer(x, mask=mask) if masked else layer(x)
            assert np.all(y == y[0, 0]), y  # one consistent state: all components equal
            outputs[index].append(y[0, 0])

    run_in_threads(work)
    total = sum((i + 1) * CALLS for i in range(THREADS))
    np.testing.assert_array_equal(layer.states[0], np.full((1, UNITS), total))
    _check_counter_outputs(outputs, total)


def test_stateful_states_and_reset_states_take_turns_with_calls():
    layer = _counter()
    layer(np.zeros((1, 1, UNITS), "float32"))
    done = threading.Event()
    callers = [THREADS - 1]
    count_lock = threading.Lock()
    seen = []

    def work(index):
        if index == 0:  # reads the carried states while the others call, at least once
            while True:
                (state,) = layer.states
                assert np.all(state == state[0, 0]), state
                seen.append(state[0, 0])
                if done.is_set():
                    return
        x = np.ones((1, 1, UNITS), "float32")
        try:
            for _ in range(CALLS):
                layer(x)
        finally:  # even after an error: the reader must stop
            with count_lock:
                callers[0] -= 1
                if callers[0] == 0:
                    done.set()

    run_in_threads(work)
    assert seen and max(seen) <= (THREADS - 1) * CALLS
    assert seen == sorted(seen)  # the reader saw the count grow, never a torn or stale state
    np.testing.assert_array_equal(layer.states[0], np.full((1, UNITS), (THREADS - 1) * CALLS))
    layer.reset_states()
    np.testing.assert_array_equal(layer.states[0], np.zeros((1, UNITS)))


def test_stateful_bidirectional_calls_take_turns():
    forward = _counter(return_sequences=False)
    backward = _counter(go_backwards=True)
    layer = rnnkit.Bidirectional(forward, backward_layer=backward, merge_mode=None)
    layer(np.zeros((1, 1, UNITS), "float32"))
    outputs = [[] for _ in range(THREADS)]

    def work(index):
        x = np.full((1, 1, UNITS), index + 1, "float32")
        for i in range(CALLS):
            y_forward, y_backward = layer(x) if i % 2 else layer(x, mask=np.ones((1, 1)))
            np.testing.assert_array_equal(y_forward, y_backward)  # one call updated both
            outputs[index].append(y_forward[0, 0])

    run_in_threads(work)
    total = sum((i + 1) * CALLS for i in range(THREADS))
    for state in layer.states:
        np.testing.assert_array_equal(state, np.full((1, UNITS), total))
    _check_counter_outputs(outputs, total)


def test_a_plan_waiting_for_the_states_sees_them_replaced_and_takes_the_new_ones():
    """A fast-path call that fetched the plan, then waited for the state lock while the holder
    replaced the carried states, must run on the new states (the old plan answers None)."""
    layer = _counter()
    layer(np.ones((1, 1, UNITS), "float32"))
    layer(np.ones((1, 1, UNITS), "float32"))  # state 2, through the plan
    result = []
    with layer._state_lock:
        caller = threading.Thread(target=lambda: result.append(layer(np.ones((1, 1, UNITS),
                                                                              "float32"))))
        caller.start()
        caller.join(0.2)  # it waits for the lock, GIL released
        assert caller.is_alive()
        layer.reset_states([np.full((1, UNITS), 10, "float32")])  # new carried arrays
    caller.join(HANG_TIMEOUT)
    np.testing.assert_array_equal(result[0], np.full((1, UNITS), 11))
    np.testing.assert_array_equal(layer.states[0], np.full((1, UNITS), 11))


def test_state_lock_is_reentrant_and_refuses_a_release_it_does_not_hold():
    lock = rnnkit._core.StateLock()
    with lock, lock:
        pass
    with pytest.raises(RuntimeError, match="un-acquired"):
        lock.__exit__(None, None, None)
    entered = []
    with lock:  # another thread waits (without the GIL) until this one leaves
        other = threading.Thread(target=lambda: lock.__enter__() or entered.append(1))
        other.start()
        other.join(0.2)
        assert not entered
    other.join(HANG_TIMEOUT)
    assert entered
    with pytest.raises(RuntimeError):  # held by the other thread, not this one
        lock.__exit__(None, None, None)


# ----------------------------------------------------------------------------- global changes
@pytest.mark.parametrize("kind", ["lstm", "stacked", "custom"])
def test_set_weights_while_other_threads_call(kind):
    """Calls running while the weights change may use the old or the new weights; none fails,
    and once set_weights has returned every call uses the new weights."""
    layer = LAYERS[kind]()
    x = np.random.default_rng(1).standard_normal((3, 5, FEATURES)).astype("float32")
    mask = np.ones((3, 5), bool)
    layer(x)
    rng = np.random.default_rng(2)
    weight_sets = [
        [rng.uniform(-0.5, 0.5, w.shape).astype("float32") for w in layer.get_weights()]
        for _ in range(3)
    ]
    stop = threading.Event()

    def work(index):
        if index == 0:
            try:
                for i in range(200):
                    layer.set_weights(weight_sets[i % 2])
                layer.set_weights(weight_sets[2])
            finally:  # even after an error: the callers must stop
                stop.set()
            return
        while not stop.is_set():
            for array in flatten(layer(x) if index % 2 else layer(x, mask=mask)):
                assert array.shape[0] == 3

    run_in_threads(work, n=4)
    fresh = LAYERS[kind]()
    fresh(x)
    fresh.set_weights(weight_sets[2])
    for kwargs in ({}, {"mask": mask}):
        for got, want in zip(flatten(layer(x, **kwargs)), flatten(fresh(x, **kwargs))):
            np.testing.assert_array_equal(got, want)
    for got, want in zip(layer.get_weights(), weight_sets[2]):
        np.testing.assert_array_equal(got, want)


def test_set_num_threads_while_other_threads_call():
    layer = rnnkit.GRU(32, seed=4, return_sequences=True)
    x = np.random.default_rng(3).standard_normal((64, 10, 16)).astype("float32")
    expected = layer(x)
    previous = rnnkit.get_num_threads()
    stop = threading.Event()
    try:

        def work(index):
            if index == 0:
                try:
                    for i in range(100):
                        rnnkit.set_num_threads(1 + i % 2)
                finally:
                    stop.set()
                return
            while not stop.is_set():
                # The rows may be split differently from call to call: the same numbers up to
                # the last bits of the summation order.
                np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-6)

        run_in_threads(work, n=4)
    finally:
        rnnkit.set_num_threads(previous)
    np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-6)
