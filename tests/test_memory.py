"""Memory (docs/reliability.md, "Memory").

- No leak: resident memory stays flat over 10^5 calls through every path (fast path, validating
  path, stateful, Bidirectional, calls that raise), measured from /proc/self/statm after a
  warm-up.
- unroll=False runs 10^6 timesteps in working memory independent of the number of timesteps:
  the kernels' own account (`workspace_bytes`) does not grow with the steps, and the process's
  peak resident memory during such a call grows by far less than the unrolled projection would
  need.
- A request too large to allocate is a MemoryError, never a crash, and changes nothing.

RSS-based checks are skipped under AddressSanitizer (tools/sanitize.sh sets RNNKIT_SANITIZE),
whose allocator quarantines freed memory; the workspace and MemoryError checks still run there.
"""

import gc
import os
import sys

import numpy as np
import pytest

import rnnkit
from conftest import builtin_layers, recurrent_layer

UNDER_SANITIZER = bool(os.environ.get("RNNKIT_SANITIZE"))
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
MB = 1 << 20
linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc/self (Linux)"
)
no_sanitizer = pytest.mark.skipif(
    UNDER_SANITIZER, reason="ASan's allocator quarantines freed memory: RSS is not flat there"
)


def _rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


def _status(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def _reset_peak_rss():
    """Make VmHWM (peak RSS) restart from the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError as error:
        pytest.skip(f"cannot reset the peak RSS: {error}")


# ------------------------------------------------------------------------------- no leak
def _calls():
    """One zero-argument function per path; each allocates a few KB that a leak would keep."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 8, 4)).astype("float32")
    mask = rng.random((4, 8)) < 0.8
    states = [rng.standard_normal((4, 16)).astype("float32") for _ in range(2)]
    fast = rnnkit.LSTM(16, return_sequences=True, return_state=True)
    validating = rnnkit.LSTM(16, return_sequences=True, return_state=True)
    stateful = rnnkit.GRU(16, return_sequences=True, return_state=True, stateful=True)
    bidirectional = rnnkit.Bidirectional(rnnkit.GRU(16, return_sequences=True))
    failing = rnnkit.SimpleRNN(16)
    failing(x)
    bad_mask = np.ones((4, 7), bool)

    def raise_value_error():
        with pytest.raises(ValueError, match="mask"):
            failing(x, mask=bad_mask)

    return [
        lambda: fast(x),
        lambda: validating(x, mask=mask, initial_state=states),
        lambda: stateful(x),
        lambda: bidirectional(x, mask=mask),
        raise_value_error,
    ]


@linux_only
@no_sanitizer
def test_rss_is_flat_over_100000_calls():
    calls = _calls()
    for _ in range(2000):  # warm-up: plans, cached workspaces, allocator arenas
        for call in calls:
            call()
    gc.collect()
    objects_before = len(gc.get_objects())
    rss_before = _rss()
    samples = []
    for i in range(100_000 // len(calls)):
        for call in calls:
            call()
        if i % 2000 == 0:
            samples.append(_rss())
    gc.collect()
    growth = _rss() - rss_before
    # Tolerance 4 MB over 10^5 calls = 40 bytes per call. Every call allocates at least 2 KB
    # (outputs of 4 x 8 x 16 float32, states, a pybind11 tuple), so leaking any one object per
    # call would grow RSS by 6 MB (a 64-byte object) to 200 MB+ (an output); allocator noise
    # after the warm-up is well under 1 MB here.
    assert growth < 4 * MB, f"RSS grew by {growth / MB:.1f} MB; samples {samples}"
    # Python objects too: a leaked list or tuple per call would add 10^5 of them.
    assert len(gc.get_objects()) - objects_before < 1000


# ------------------------------------------------------------------------------- 10^6 steps
CELLS = builtin_layers(variants=True)
MILLION = 10**6


@pytest.mark.parametrize("has_mask", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", CELLS)
def test_workspace_of_unroll_false_does_not_grow_with_timesteps(kind, dtype, has_mask):
    layer = recurrent_layer(kind, 8, dtype=dtype)
    layer.build((1, 1, 3))
    kernel = layer.cell.compiled_kernel()
    for batch in (1, 7, 64):
        sizes = [kernel.workspace_bytes(batch, steps, 0, has_mask) for steps in (10**4, MILLION)]
        assert sizes[0] == sizes[1], (batch, sizes)
        assert sizes[1] <= 8 * MB  # the driver's chunk bound (4 MB of projections) + scratch
        # unroll=True (chunk -1) holds every step's projection: the account does see steps.
        unrolled = kernel.workspace_bytes(batch, MILLION, -1, has_mask)
        assert unrolled >= MILLION * batch * layer.cell.kernel.shape[1] * np.dtype(dtype).itemsize


@linux_only
@no_sanitizer
@pytest.mark.parametrize("has_mask", [False, True])
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_a_million_timesteps_run_in_bounded_memory(kind, has_mask):
    x = np.random.default_rng(0).standard_normal((1, MILLION, 2)).astype("float32")
    mask = np.random.default_rng(1).random((1, MILLION)) < 0.9 if has_mask else None
    peaks = {}
    for unroll in (False, True):
        layer = recurrent_layer(kind, 8, unroll=unroll, return_state=True)
        layer.build(x.shape)
        gc.collect()
        before = _rss()
        _reset_peak_rss()
        output, *states = layer(x, mask=mask)
        peaks[unroll] = _status("VmHWM") - before
        assert output.shape == (1, 8) and np.isfinite(output).all()
    projection = MILLION * layer.cell.kernel.shape[1] * 4  # bytes unroll=True must hold
    assert peaks[True] >= projection * 0.9, peaks  # the measurement sees a large workspace
    # unroll=False: the 4 MB chunk bound, plus slack for the allocator and the outputs.
    assert peaks[False] < 16 * MB, peaks


# ------------------------------------------------------------------------------- MemoryError
def _allocation_fails_cleanly():
    """Whether a request larger than the machine fails at allocation (not at first touch)."""
    try:
        with open("/proc/sys/vm/overcommit_memory") as mode:
            always_overcommit = mode.read().strip() == "1"
    except OSError:
        always_overcommit = False
    asan_returns_null = "allocator_may_return_null=1" in os.environ.get("ASAN_OPTIONS", "")
    return not always_overcommit and (asan_returns_null or not UNDER_SANITIZER)


needs_failing_allocation = pytest.mark.skipif(
    not _allocation_fails_cleanly(),
    reason="vm.overcommit_memory=1 (or ASan without allocator_may_return_null=1): a huge "
    "allocation would succeed and the process be killed when it touches the memory",
)


@needs_failing_allocation
@pytest.mark.parametrize("stateful", [False, True])
def test_unrolled_projection_too_large_raises_memory_error_and_changes_nothing(stateful):
    # unroll=True projects every step at once: 10^7 steps x 4096 gates x 4 bytes = 164 GB.
    layer = rnnkit.LSTM(
        1024,
        unroll=True,
        stateful=stateful,
        kernel_initializer="zeros",
        recurrent_initializer="zeros",
        bias_initializer="ones",
    )
    small = np.ones((1, 3, 1), "float32")
    before = layer(small)
    states_before = layer.states
    weights_before = layer.get_weights()
    with pytest.raises(MemoryError):
        layer(np.zeros((1, 10**7, 1), "float32"))
    for got, want in zip(layer.get_weights(), weights_before):
        np.testing.assert_array_equal(got, want)
    if stateful:
        for got, want in zip(layer.states, states_before):
            np.testing.assert_array_equal(got, want)
        layer.reset_states()
    np.testing.assert_array_equal(layer(small), before)  # and the layer still works


def test_workspace_size_past_the_address_space_is_memory_error():
    layer = rnnkit.GRU(4)
    layer.build((1, 1, 2))
    kernel = layer.cell.compiled_kernel()
    with pytest.raises(MemoryError, match="working memory"):
        kernel.workspace_bytes(2**62, 2**62, -1, True)
    with pytest.raises(MemoryError, match="working memory"):
        kernel.workspace_bytes(2**40, 2**40, 0, False)
    with pytest.raises(ValueError, match="non-negative"):
        kernel.workspace_bytes(-1, 5, 0, False)


@needs_failing_allocation
@pytest.mark.parametrize("time_major", [False, True])
def test_huge_broadcast_inputs_raise_memory_error(time_major):
    layer = rnnkit.GRU(4, time_major=time_major, return_sequences=True)
    layer(np.ones((2, 3, 5), "float32"))
    x = np.broadcast_to(np.float32(1), (2**20, 2**20, 5))  # 20 TB once made contiguous
    with pytest.raises(MemoryError):
        layer(x)
    assert layer(np.ones((2, 3, 5), "float32")).shape == (2, 3, 4)  # and the layer still works


@needs_failing_allocation
def test_weights_too_large_raise_memory_error_and_leave_the_layer_unbuilt():
    layer = rnnkit.LSTM(2**20)  # kernel (1, 4M) fits, recurrent kernel (1M, 4M) does not
    for _ in range(2):
        with pytest.raises(MemoryError):
            layer(np.ones((1, 2, 1), "float32"))
        assert not layer.built and not layer.cell.built
        assert layer.weights == [] and layer.get_weights() == []
    with pytest.raises(MemoryError, match="address space"):
        rnnkit.GRU(4).build((1, 1, 2**61))
    with pytest.raises(ValueError, match="units"):
        rnnkit.LSTM(2**40)
