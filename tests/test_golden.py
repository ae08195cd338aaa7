"""rnnkit against numbers recorded from Keras 3; runs without Keras installed.

Two sources of truth:

* ``tests/data/golden.npz``, written by ``tests/make_golden.py`` from real Keras 3: every
  case is replayed through every rnnkit execution path (``conftest.PATHS``: C++ scan, C++
  unrolled, C++ scan in chunks of 1 and 3 steps, NumPy reference loop);
* the golden numbers hard-coded in Keras's own tests
  (``keras/src/layers/rnn/{simple_rnn,lstm,gru,rnn,bidirectional,stacked_rnn_cells}_test.py``,
  Keras 3.15.1): the input construction and expected values are copied verbatim, each case
  names the Keras test it comes from. Keras builds those layers with
  ``initializers.Constant(0.01 / 0.02 / 0.03)`` for kernel / recurrent kernel / bias; here
  the same constant weights are set with ``set_weights`` (with Keras's ``unit_forget_bias``
  default an LSTM bias initializer yields 1.0 for the forget gate block).
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

import rnnkit
from conftest import (
    PATHS,
    TOLERANCES,
    assert_results_close,
    build_layer,
    execution_path,
    flatten,
    unflatten,
    with_unroll,
)

GOLDEN_PATH = Path(__file__).parent / "data" / "golden.npz"
GOLDEN = np.load(GOLDEN_PATH)
GOLDEN_META = json.loads(str(GOLDEN["__meta__"]))

# ---------------------------------------------------------------------------------------
# tests/data/golden.npz
# ---------------------------------------------------------------------------------------


def test_golden_file_records_keras_provenance():
    assert GOLDEN_META["keras_version"].startswith("3.")
    assert GOLDEN_META["keras_backend"] == "numpy"
    names = {key.split(".")[0] for key in GOLDEN.files if key != "__meta__"}
    assert names == set(GOLDEN_META["cases"])
    assert GOLDEN_PATH.stat().st_size < 300_000


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("name", GOLDEN_META["cases"])
def test_golden_case_matches_keras_recording(name, path):
    config = json.loads(str(GOLDEN[f"{name}.config"]))
    dtype = config["dtype"]
    unroll, context = execution_path(path)
    layer = build_layer(rnnkit, with_unroll(config["spec"], unroll), dtype)
    layer.build(GOLDEN[f"{name}.x0"].shape)
    n_weights = sum(key.startswith(f"{name}.w") for key in GOLDEN.files)
    layer.set_weights([GOLDEN[f"{name}.w{j}"] for j in range(n_weights)])

    with context:
        for k, call in enumerate(config["calls"]):
            mask = GOLDEN[f"{name}.mask{k}"] if call["mask"] else None
            initial_state = None
            if call["initial_state"] is not None:
                n = len(flatten(call["initial_state"]))
                leaves = [GOLDEN[f"{name}.init{k}_{j}"] for j in range(n)]
                initial_state = unflatten(call["initial_state"], leaves)
            result = layer(GOLDEN[f"{name}.x{k}"], initial_state=initial_state, mask=mask)
            n = len(flatten(call["result_structure"]))
            expected = [GOLDEN[f"{name}.out{k}_{j}"] for j in range(n)]
            expected = unflatten(call["result_structure"], expected)
            if len(expected) == 1:  # a bare output array, not a return_state tuple
                (expected,) = expected
            assert_results_close(result, expected, dtype, label=f"{name} call {k}")

    if config["stateful"]:
        n = sum(key.startswith(f"{name}.states_") for key in GOLDEN.files)
        expected_states = [GOLDEN[f"{name}.states_{j}"] for j in range(n)]
        assert_results_close(
            flatten(layer.states), expected_states, dtype, label=f"{name} layer.states"
        )


# ---------------------------------------------------------------------------------------
# Keras's own hard-coded golden numbers
# ---------------------------------------------------------------------------------------

KERAS_CONSTANTS = (0.01, 0.02, 0.03)  # kernel, recurrent kernel, bias


def seq_2x3x4():
    return np.arange(24).reshape((2, 3, 4)).astype("float32")


def seq_2x4x3():
    return np.arange(24).reshape((2, 4, 3)).astype("float32")


def seq_3x6x4():
    return np.arange(72).reshape((3, 6, 4)).astype("float32")


MASK_A = np.array([[True, True, False, True], [True, False, False, True]])
MASK_B = np.array([[True, True, True, False], [True, True, False, False]])
BACKWARDS_MASK = np.array([[False, True, True, True], [False, False, True, True]])


def layer_spec(kind, units, **kwargs):
    return {"layer": kind, "units": units, "kwargs": kwargs}


def bidi(inner, merge_mode="concat", backward=None):
    return {
        "layer": "Bidirectional",
        "inner": inner,
        "merge_mode": merge_mode,
        "backward": backward,
    }


@dataclass
class KerasNumbers:
    """One hard-coded case of a Keras test.

    ``expected`` lists ``(selector, array)``: selector ``None`` is the whole returned value,
    an int picks an element of a returned tuple (or a batch row, as Keras's tests do with
    ``output[0]``), a tuple of ints indexes deeper. ``calls`` is how many times the layer is
    called on ``x`` before the check (stateful tests); ``repeat_after_reset`` re-runs the
    calls after ``reset_states()`` and checks the same numbers again, as Keras's
    test_statefulness does.
    """

    source: str
    spec: dict
    x: np.ndarray
    expected: list
    call_kwargs: dict = field(default_factory=dict)
    constants: tuple = KERAS_CONSTANTS
    backward_constants: tuple = KERAS_CONSTANTS
    calls: int = 1
    repeat_after_reset: bool = False
    tolerance: dict = None


def constant_weights(spec, shapes, constants):
    """Constant weights for one recurrent layer, as Keras's Constant initializers give."""
    kernel, recurrent, bias = constants
    out = [np.full(shapes[0], kernel, "float32"), np.full(shapes[1], recurrent, "float32")]
    if len(shapes) == 3:
        b = np.full(shapes[2], bias, "float32")
        kwargs = spec.get("kwargs", {})
        if spec["layer"] == "LSTM" and kwargs.get("unit_forget_bias", True):
            units = spec["units"]
            b[units : 2 * units] = 1.0
        out.append(b)
    return out


def layer_constant_weights(case, layer):
    shapes = [w.shape for w in layer.get_weights()]
    if case.spec["layer"] != "Bidirectional":
        return constant_weights(case.spec, shapes, case.constants)
    half = len(shapes) // 2
    backward = case.spec.get("backward") or case.spec["inner"]
    return constant_weights(case.spec["inner"], shapes[:half], case.constants) + (
        constant_weights(backward, shapes[half:], case.backward_constants)
    )


def select(result, selector):
    if selector is None:
        return result
    for index in (selector,) if isinstance(selector, int) else selector:
        result = result[index]
    return result


S = "simple_rnn_test.py::SimpleRNNTest"
L = "lstm_test.py::LSTMTest"
G = "gru_test.py::GRUTest"
B = "bidirectional_test.py::SimpleRNNTest"  # (sic: Keras's class name in that file)

SIMPLE_RNN_CORRECT = np.array([[0.405432] * 4, [0.73605347] * 4])
SIMPLE_RNN_BACKWARDS = np.array([[0.11144729] * 4, [0.5528889] * 4])
LSTM_CORRECT = np.array([[0.6288687] * 3, [0.86899155] * 3, [0.9460773] * 3])
GRU_CORRECT = np.array(
    [
        [0.5217289, 0.5217289, 0.5217289],
        [0.6371659, 0.6371659, 0.6371659],
        [0.39384964, 0.39384964, 0.3938496],
    ]
)
GRU_INITIAL = np.array([[0.23774096, 0.33508456], [0.83659905, 1.0227708]])
GRU_INITIAL_BACKWARDS = np.array([[0.13486053, 0.23261218], [0.78257304, 0.9691353]])
LSTM_INITIAL_STATE = [
    np.arange(4).reshape((2, 2)).astype("float32"),
    np.arange(4).reshape((2, 2)).astype("float32"),
]
BIDI_INITIAL_STATE = [np.arange(4).reshape((2, 2)).astype("float32") * k for k in (1, 2, 3, 4)]

# fmt: off
KERAS_NUMBERS = [
    # --- simple_rnn_test.py -----------------------------------------------------------
    KerasNumbers(f"{S}::test_correctness", layer_spec("SimpleRNN", 4), seq_2x3x4(),
                 [(None, SIMPLE_RNN_CORRECT)]),
    KerasNumbers(f"{S}::test_correctness[unroll]", layer_spec("SimpleRNN", 4, unroll=True),
                 seq_2x3x4(), [(None, SIMPLE_RNN_CORRECT)]),
    KerasNumbers(f"{S}::test_correctness[go_backwards]",
                 layer_spec("SimpleRNN", 4, go_backwards=True), seq_2x3x4(),
                 [(None, SIMPLE_RNN_BACKWARDS)]),
    KerasNumbers(f"{S}::test_correctness[go_backwards,unroll]",
                 layer_spec("SimpleRNN", 4, go_backwards=True, unroll=True), seq_2x3x4(),
                 [(None, SIMPLE_RNN_BACKWARDS)]),
    KerasNumbers(f"{S}::test_statefulness", layer_spec("SimpleRNN", 4, stateful=True),
                 seq_2x3x4(), [(None, np.array([[0.40559256] * 4, [0.7361247] * 4]))],
                 calls=2, repeat_after_reset=True),
    KerasNumbers(f"{S}::test_pass_initial_state", layer_spec("SimpleRNN", 4), seq_2x4x3(),
                 [(None, np.array([[0.33621645] * 4, [0.6262637] * 4]))],
                 call_kwargs={"initial_state": np.arange(8).reshape((2, 4)).astype("float32")}),
    KerasNumbers(f"{S}::test_pass_initial_state[go_backwards]",
                 layer_spec("SimpleRNN", 4, go_backwards=True), seq_2x4x3(),
                 [(None, np.array([[0.07344437] * 4, [0.43043602] * 4]))],
                 call_kwargs={"initial_state": np.arange(8).reshape((2, 4)).astype("float32")}),
    KerasNumbers(f"{S}::test_masking[unroll]", layer_spec("SimpleRNN", 4, unroll=True),
                 seq_2x4x3(), [(None, np.array([[0.32951632] * 4, [0.61799484] * 4]))],
                 call_kwargs={"mask": MASK_A}),
    KerasNumbers(f"{S}::test_masking[return_sequences]",
                 layer_spec("SimpleRNN", 2, return_sequences=True), seq_2x4x3(),
                 [(0, np.array([[0.0599281] * 2, [0.15122814] * 2, [0.15122814] * 2,
                                [0.32394567] * 2])),
                  (1, np.array([[0.3969304] * 2, [0.3969304] * 2, [0.3969304] * 2,
                                [0.608085] * 2]))],
                 call_kwargs={"mask": MASK_A}),
    KerasNumbers(f"{S}::test_masking[zero_output_for_mask]",
                 layer_spec("SimpleRNN", 2, return_sequences=True, zero_output_for_mask=True),
                 seq_2x4x3(),
                 [(0, np.array([[0.0599281] * 2, [0.15122814] * 2, [0.0] * 2,
                                [0.32394567] * 2])),
                  (1, np.array([[0.3969304] * 2, [0.0] * 2, [0.0] * 2, [0.608085] * 2]))],
                 call_kwargs={"mask": MASK_A}),
    KerasNumbers(f"{S}::test_masking[go_backwards]",
                 layer_spec("SimpleRNN", 4, go_backwards=True), seq_2x4x3(),
                 [(None, np.array([[0.07376196] * 4, [0.43645123] * 4]))],
                 call_kwargs={"mask": MASK_A}),
    # --- lstm_test.py -----------------------------------------------------------------
    KerasNumbers(f"{L}::test_correctness", layer_spec("LSTM", 3), seq_3x6x4(),
                 [(None, LSTM_CORRECT)]),
    KerasNumbers(f"{L}::test_correctness[go_backwards]",
                 layer_spec("LSTM", 3, go_backwards=True), seq_3x6x4(),
                 [(None, np.array([[0.35622165] * 3, [0.74789524] * 3, [0.8872726] * 3]))]),
    KerasNumbers(f"{L}::test_correctness[unroll]", layer_spec("LSTM", 3, unroll=True),
                 seq_3x6x4(), [(None, LSTM_CORRECT)]),
    KerasNumbers(f"{L}::test_correctness[unit_forget_bias=False]",
                 layer_spec("LSTM", 3, unit_forget_bias=False), seq_3x6x4(),
                 [(None, np.array([[0.57019705] * 3, [0.8661914] * 3, [0.9459622] * 3]))]),
    KerasNumbers(f"{L}::test_correctness[use_bias=False]",
                 layer_spec("LSTM", 3, use_bias=False), seq_3x6x4(),
                 [(None, np.array([[0.54986924] * 3, [0.86226785] * 3, [0.9443936] * 3]))]),
    KerasNumbers(f"{L}::test_statefulness", layer_spec("LSTM", 4, stateful=True), seq_2x3x4(),
                 [(None, np.array([[0.3124785] * 4, [0.6863672] * 4]))],
                 calls=2, repeat_after_reset=True),
    KerasNumbers(f"{L}::test_pass_initial_state", layer_spec("LSTM", 2), seq_2x4x3(),
                 [(None, np.array([[0.20574439, 0.3558822], [0.64930826, 0.66276]]))],
                 call_kwargs={"initial_state": LSTM_INITIAL_STATE}),
    KerasNumbers(f"{L}::test_pass_initial_state[go_backwards]",
                 layer_spec("LSTM", 2, go_backwards=True), seq_2x4x3(),
                 [(None, np.array([[0.13281618, 0.2790356], [0.5839337, 0.5992567]]))],
                 call_kwargs={"initial_state": LSTM_INITIAL_STATE}),
    KerasNumbers(f"{L}::test_masking[unroll]", layer_spec("LSTM", 2, unroll=True), seq_2x4x3(),
                 [(None, np.array([[0.11755939] * 2, [0.28556206] * 2]))],
                 call_kwargs={"mask": MASK_B}),
    KerasNumbers(f"{L}::test_masking[return_sequences]",
                 layer_spec("LSTM", 2, return_sequences=True), seq_2x4x3(),
                 [(0, np.array([[0.01588910] * 2, [0.05552048] * 2, [0.11755939] * 2,
                                [0.11755939] * 2])),
                  (1, np.array([[0.14185596] * 2, [0.28556206] * 2, [0.28556206] * 2,
                                [0.28556206] * 2]))],
                 call_kwargs={"mask": MASK_B}),
    KerasNumbers(f"{L}::test_masking[zero_output_for_mask]",
                 layer_spec("LSTM", 2, return_sequences=True, zero_output_for_mask=True),
                 seq_2x4x3(),
                 [(0, np.array([[0.01588910] * 2, [0.05552048] * 2, [0.11755939] * 2,
                                [0.0] * 2])),
                  (1, np.array([[0.14185596] * 2, [0.28556206] * 2, [0.0] * 2, [0.0] * 2]))],
                 call_kwargs={"mask": MASK_B}),
    KerasNumbers(f"{L}::test_masking[go_backwards]", layer_spec("LSTM", 2, go_backwards=True),
                 seq_2x4x3(), [(None, np.array([[0.15341201] * 2, [0.3844719] * 2]))],
                 call_kwargs={"mask": BACKWARDS_MASK}),
    # --- gru_test.py ------------------------------------------------------------------
    KerasNumbers(f"{G}::test_correctness", layer_spec("GRU", 3), seq_3x6x4(),
                 [(None, GRU_CORRECT)]),
    KerasNumbers(f"{G}::test_correctness[go_backwards]",
                 layer_spec("GRU", 3, go_backwards=True), seq_3x6x4(),
                 [(None, np.array([[0.24406259] * 3, [0.611516] * 3, [0.3928808] * 3]))]),
    KerasNumbers(f"{G}::test_correctness[unroll]", layer_spec("GRU", 3, unroll=True),
                 seq_3x6x4(), [(None, GRU_CORRECT)]),
    KerasNumbers(f"{G}::test_correctness[reset_after=False]",
                 layer_spec("GRU", 3, reset_after=False), seq_3x6x4(),
                 [(None, np.array([[0.51447755] * 3, [0.6426879] * 3, [0.40208298] * 3]))]),
    KerasNumbers(f"{G}::test_correctness[use_bias=False]",
                 layer_spec("GRU", 3, use_bias=False), seq_3x6x4(),
                 [(None, np.array([[0.49988455] * 3, [0.64701194] * 3, [0.4103359] * 3]))]),
    KerasNumbers(f"{G}::test_statefulness", layer_spec("GRU", 4, stateful=True), seq_2x3x4(),
                 [(None, np.array([[0.29542392] * 4, [0.5885018] * 4]))],
                 calls=2, repeat_after_reset=True),
    KerasNumbers(f"{G}::test_pass_initial_state", layer_spec("GRU", 2), seq_2x4x3(),
                 [(None, GRU_INITIAL)],
                 call_kwargs={"initial_state": np.arange(4).reshape((2, 2)).astype("float32")}),
    KerasNumbers(f"{G}::test_pass_initial_state[go_backwards]",
                 layer_spec("GRU", 2, go_backwards=True), seq_2x4x3(),
                 [(None, GRU_INITIAL_BACKWARDS)],
                 call_kwargs={"initial_state": np.arange(4).reshape((2, 2)).astype("float32")}),
    KerasNumbers(f"{G}::test_pass_return_state", layer_spec("GRU", 2, return_state=True),
                 seq_2x4x3(), [(0, GRU_INITIAL), (1, GRU_INITIAL)],
                 call_kwargs={"initial_state": np.arange(4).reshape((2, 2)).astype("float32")}),
    KerasNumbers(f"{G}::test_pass_return_state[go_backwards]",
                 layer_spec("GRU", 2, return_state=True, go_backwards=True), seq_2x4x3(),
                 [(0, GRU_INITIAL_BACKWARDS), (1, GRU_INITIAL_BACKWARDS)],
                 call_kwargs={"initial_state": np.arange(4).reshape((2, 2)).astype("float32")}),
    KerasNumbers(f"{G}::test_masking[unroll]", layer_spec("GRU", 2, unroll=True), seq_2x4x3(),
                 [(None, np.array([[0.19393763] * 2, [0.30818558] * 2]))],
                 call_kwargs={"mask": MASK_A}),
    KerasNumbers(f"{G}::test_masking[return_sequences]",
                 layer_spec("GRU", 2, return_sequences=True), seq_2x4x3(),
                 [(0, np.array([[0.03606692] * 2, [0.09497581] * 2, [0.09497581] * 2,
                                [0.19393763] * 2])),
                  (1, np.array([[0.16051409] * 2, [0.16051409] * 2, [0.16051409] * 2,
                                [0.30818558] * 2]))],
                 call_kwargs={"mask": MASK_A}),
    KerasNumbers(f"{G}::test_masking[zero_output_for_mask]",
                 layer_spec("GRU", 2, return_sequences=True, zero_output_for_mask=True),
                 seq_2x4x3(),
                 [(0, np.array([[0.03606692] * 2, [0.09497581] * 2, [0.0] * 2,
                                [0.19393763] * 2])),
                  (1, np.array([[0.16051409] * 2, [0.0] * 2, [0.0] * 2, [0.30818558] * 2]))],
                 call_kwargs={"mask": MASK_A}),
    KerasNumbers(f"{G}::test_masking[go_backwards]", layer_spec("GRU", 2, go_backwards=True),
                 seq_2x4x3(), [(None, np.array([[0.11669192] * 2, [0.28380975] * 2]))],
                 call_kwargs={"mask": MASK_A}),
    # --- bidirectional_test.py --------------------------------------------------------
    KerasNumbers(f"{B}::test_correctness[concat]", bidi(layer_spec("SimpleRNN", 2)),
                 seq_2x3x4(),
                 [(None, np.array([[0.39687276, 0.39687276, 0.10004295, 0.10004295],
                                   [0.7237238, 0.7237238, 0.53391594, 0.53391594]]))]),
    KerasNumbers(f"{B}::test_correctness[ave]", bidi(layer_spec("SimpleRNN", 2), "ave"),
                 seq_2x3x4(), [(None, np.array([[0.24845785] * 2, [0.6288199] * 2]))]),
    KerasNumbers(f"{B}::test_correctness[None]", bidi(layer_spec("SimpleRNN", 2), None),
                 seq_2x3x4(),
                 [(0, np.array([[0.39687276] * 2, [0.7237238] * 2])),
                  (1, np.array([[0.10004295] * 2, [0.53391594] * 2]))]),
    KerasNumbers(f"{B}::test_correctness[mul,backward_layer]",
                 bidi(layer_spec("SimpleRNN", 2), "mul",
                      backward=layer_spec("SimpleRNN", 2, go_backwards=True)),
                 seq_2x3x4(), [(None, np.array([[0.08374989] * 2, [0.6740834] * 2]))],
                 backward_constants=(0.03, 0.02, 0.01)),
    KerasNumbers(f"{B}::test_correctness[sum,GRU]",
                 bidi(layer_spec("GRU", 2, return_sequences=True), "sum"), seq_2x3x4(),
                 [(None, np.array([[[0.20937867] * 2, [0.34462988] * 2, [0.40290534] * 2],
                                   [[0.59829646] * 2, [0.6734641] * 2, [0.6479671] * 2]]))]),
    KerasNumbers(f"{B}::test_statefulness", bidi(layer_spec("LSTM", 2, stateful=True)),
                 seq_2x4x3(),
                 [(None, np.array([[0.26234663, 0.26234663, 0.16959146, 0.16959146],
                                   [0.6137073, 0.6137073, 0.5381646, 0.5381646]]))],
                 calls=2, repeat_after_reset=True),
    KerasNumbers(f"{B}::test_pass_initial_state", bidi(layer_spec("LSTM", 2)), seq_2x4x3(),
                 [(None, np.array([[0.20794602, 0.4577124, 0.14046375, 0.48191673],
                                   [0.6682636, 0.6711909, 0.60943645, 0.60950446]]))],
                 call_kwargs={"initial_state": BIDI_INITIAL_STATE}),
    KerasNumbers(f"{B}::test_masking", bidi(layer_spec("GRU", 2)), seq_2x4x3(),
                 [(None, np.array([[0.19393763, 0.19393763, 0.11669192, 0.11669192],
                                   [0.30818558, 0.30818558, 0.28380975, 0.28380975]]))],
                 call_kwargs={"mask": MASK_A}),
    KerasNumbers(f"{B}::test_return_state", bidi(layer_spec("LSTM", 2, return_state=True)),
                 seq_2x4x3(),
                 [(0, np.array([[0.1990008, 0.1990008, 0.12659755, 0.12659755],
                                [0.52335435, 0.52335435, 0.44717982, 0.44717982]])),
                  (1, np.array([[0.1990008, 0.1990008], [0.52335435, 0.52335435]])),
                  (2, np.array([[0.35567185, 0.35567185], [1.0492687, 1.0492687]])),
                  (3, np.array([[0.12659755, 0.12659755], [0.44717982, 0.44717982]])),
                  (4, np.array([[0.2501858, 0.2501858], [0.941473, 0.941473]]))]),
]
# fmt: on


def case_id(case):
    return case.source.split("::", 1)[0].removesuffix(".py") + "::" + case.source.split("::")[-1]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", KERAS_NUMBERS, ids=case_id)
def test_keras_hardcoded_numbers_match(case, path):
    # Keras's `unroll=True` sub-cases expect the same numbers as the others, and every
    # case runs through all three rnnkit paths here, whatever unroll Keras's test used.
    unroll, context = execution_path(path)
    layer = build_layer(rnnkit, with_unroll(case.spec, unroll), "float32")
    layer.build(case.x.shape)
    layer.set_weights(layer_constant_weights(case, layer))
    tolerance = case.tolerance or TOLERANCES["float32"]
    with context:
        for attempt in range(2 if case.repeat_after_reset else 1):
            if attempt:
                layer.reset_states()
            for _ in range(case.calls):
                result = layer(case.x, **case.call_kwargs)
            for selector, expected in case.expected:
                got = select(result, selector)
                assert isinstance(got, np.ndarray) and got.dtype == np.float32
                assert got.shape == expected.shape, (got.shape, expected.shape)
                np.testing.assert_allclose(got, expected, **tolerance, err_msg=case.source)


# --- rnn_test.py / stacked_rnn_cells_test.py: Keras's custom test cells ------------------
# Copied from keras/src/layers/rnn/rnn_test.py unchanged apart from the imports
# (keras.layers.Layer -> rnnkit.Layer, ops.matmul -> np.matmul).


class OneStateRNNCell(rnnkit.Layer):
    def __init__(self, units, state_size=None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = state_size if state_size else units

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(input_shape[-1], self.units),
            initializer="ones",
            name="kernel",
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, self.units),
            initializer="ones",
            name="recurrent_kernel",
        )

    def call(self, inputs, states):
        prev_output = states[0]
        h = np.matmul(inputs, self.kernel)
        output = h + np.matmul(prev_output, self.recurrent_kernel)
        return output, [output]


class TwoStatesRNNCell(rnnkit.Layer):
    def __init__(self, units, state_size=None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = state_size if state_size else [units, units]
        self.output_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(input_shape[-1], self.units),
            initializer="ones",
            name="kernel",
        )
        self.recurrent_kernel_1 = self.add_weight(
            shape=(self.units, self.units),
            initializer="ones",
            name="recurrent_kernel_1",
        )
        self.recurrent_kernel_2 = self.add_weight(
            shape=(self.units, self.units),
            initializer="ones",
            name="recurrent_kernel_2",
        )

    def call(self, inputs, states):
        prev_1 = states[0]
        prev_2 = states[0]
        h = np.matmul(inputs, self.kernel)
        output_1 = h + np.matmul(prev_1, self.recurrent_kernel_1)
        output_2 = h + np.matmul(prev_2, self.recurrent_kernel_2)
        output = output_1 + output_2
        return output, [output_1, output_2]


def one(units):
    return (OneStateRNNCell, units)


def two(units):
    return (TwoStatesRNNCell, units)


def pair(value, rows):
    return np.array([[value, value]] * rows)


R = "rnn_test.py::RNNTest"
K = "stacked_rnn_cells_test.py::StackedRNNTest"
ONES_1x2x3 = ("ones", (1, 2, 3))
ONES_2x3x2 = ("ones", (2, 3, 2))
ARANGE_2x3x4 = ("arange", (2, 3, 4))
ARANGE_2x4x3 = ("arange", (2, 4, 3))

# (source, cells, rnn kwargs, input, call kwargs, calls, expected returned arrays (flat))
# fmt: off
CUSTOM_CELL_NUMBERS = [
    (f"{R}::test_forward_pass_single_state", [one(2)], {}, ONES_1x2x3, {}, 1,
     [np.array([[9.0, 9.0]])]),
    (f"{R}::test_forward_pass_single_state[return_sequences]", [one(2)],
     {"return_sequences": True}, ONES_1x2x3, {}, 1, [np.array([[[3.0, 3.0], [9.0, 9.0]]])]),
    (f"{R}::test_forward_pass_single_state[return_state]", [one(2)], {"return_state": True},
     ONES_1x2x3, {}, 1, [np.array([[9.0, 9.0]]), np.array([[9.0, 9.0]])]),
    (f"{R}::test_forward_pass_single_state[return_sequences,return_state]", [one(2)],
     {"return_sequences": True, "return_state": True}, ONES_1x2x3, {}, 1,
     [np.array([[[3.0, 3.0], [9.0, 9.0]]]), np.array([[9.0, 9.0]])]),
    (f"{R}::test_forward_pass_two_states", [two(2)], {}, ONES_1x2x3, {}, 1,
     [np.array([[18.0, 18.0]])]),
    (f"{R}::test_forward_pass_two_states[return_sequences]", [two(2)],
     {"return_sequences": True}, ONES_1x2x3, {}, 1, [np.array([[[6.0, 6.0], [18.0, 18.0]]])]),
    (f"{R}::test_forward_pass_two_states[return_state]", [two(2)], {"return_state": True},
     ONES_1x2x3, {}, 1,
     [np.array([[18.0, 18.0]]), np.array([[9.0, 9.0]]), np.array([[9.0, 9.0]])]),
    (f"{R}::test_forward_pass_two_states[return_sequences,return_state]", [two(2)],
     {"return_sequences": True, "return_state": True}, ONES_1x2x3, {}, 1,
     [np.array([[[6.0, 6.0], [18.0, 18.0]]]), np.array([[9.0, 9.0]]),
      np.array([[9.0, 9.0]])]),
    (f"{R}::test_passing_initial_state_single_state", [one(2)], {}, ONES_2x3x2,
     {"initial_state": np.ones((2, 2))}, 1, [pair(22.0, 2)]),
    (f"{R}::test_passing_initial_state_single_state[return_state]", [one(2)],
     {"return_state": True}, ONES_2x3x2, {"initial_state": np.ones((2, 2))}, 1,
     [pair(22.0, 2), pair(22.0, 2)]),
    (f"{R}::test_passing_initial_state_two_states", [two(2)], {}, ONES_2x3x2,
     {"initial_state": [np.ones((2, 2)), np.ones((2, 2))]}, 1, [pair(44.0, 2)]),
    (f"{R}::test_passing_initial_state_two_states[return_state]", [two(2)],
     {"return_state": True}, ONES_2x3x2,
     {"initial_state": [np.ones((2, 2)), np.ones((2, 2))]}, 1,
     [pair(44.0, 2), pair(22.0, 2), pair(22.0, 2)]),
    (f"{R}::test_statefulness_single_state", [one(2)], {"stateful": True}, ONES_1x2x3, {}, 2,
     [np.array([[45.0, 45.0]])]),
    (f"{R}::test_statefulness_single_state[return_state]", [one(2)],
     {"stateful": True, "return_state": True}, ONES_1x2x3, {}, 2,
     [np.array([[45.0, 45.0]]), np.array([[45.0, 45.0]])]),
    (f"{R}::test_statefulness_two_states", [two(2)], {"stateful": True}, ONES_1x2x3, {}, 2,
     [np.array([[90.0, 90.0]])]),
    (f"{R}::test_statefulness_two_states[return_state]", [two(2)],
     {"stateful": True, "return_state": True}, ONES_1x2x3, {}, 2,
     [np.array([[90.0, 90.0]]), np.array([[45.0, 45.0]]), np.array([[45.0, 45.0]])]),
    (f"{R}::test_go_backwards", [one(2)], {"go_backwards": True}, ARANGE_2x3x4, {}, 2,
     [np.array([[202.0, 202.0], [538.0, 538.0]])]),
    (f"{R}::test_go_backwards[stateful,return_state]", [one(2)],
     {"stateful": True, "return_state": True}, ARANGE_2x3x4, {}, 2,
     [np.array([[954.0, 954.0], [3978.0, 3978.0]]),
      np.array([[954.0, 954.0], [3978.0, 3978.0]])]),
    (f"{R}::test_masking[unroll=False]", [one(2)], {"unroll": False}, ARANGE_2x4x3,
     {"mask": MASK_B}, 1, [np.array([[57.0, 57.0], [126.0, 126.0]])]),
    (f"{R}::test_masking[unroll=True]", [one(2)], {"unroll": True}, ARANGE_2x4x3,
     {"mask": MASK_B}, 1, [np.array([[57.0, 57.0], [126.0, 126.0]])]),
    (f"{R}::test_masking[return_sequences]", [one(2)], {"return_sequences": True},
     ARANGE_2x4x3, {"mask": MASK_B}, 1,
     [np.array([[[3.0, 3.0], [18.0, 18.0], [57.0, 57.0], [57.0, 57.0]],
                [[39.0, 39.0], [126.0, 126.0], [126.0, 126.0], [126.0, 126.0]]])]),
    (f"{K}::test_correctness_single_state_stack", [one(3), one(2)], {}, ARANGE_2x3x4, {}, 1,
     [np.array([[786.0, 786.0], [4386.0, 4386.0]])]),
    (f"{K}::test_correctness_single_state_stack[return_sequences]", [one(3), one(2)],
     {"return_sequences": True}, ARANGE_2x3x4, {}, 1,
     [np.array([[[18.0, 18.0], [156.0, 156.0], [786.0, 786.0]],
                [[162.0, 162.0], [1020.0, 1020.0], [4386.0, 4386.0]]])]),
    (f"{K}::test_correctness_single_state_stack[return_state]", [one(3), one(2)],
     {"return_state": True}, ARANGE_2x3x4, {}, 1,
     [np.array([[786.0, 786.0], [4386.0, 4386.0]]),
      np.array([[158.0, 158.0, 158.0], [782.0, 782.0, 782.0]]),
      np.array([[786.0, 786.0], [4386.0, 4386.0]])]),
    (f"{K}::test_correctness_two_states_stack", [two(3), two(2)], {}, ARANGE_2x3x4, {}, 1,
     [np.array([[3144.0, 3144.0], [17544.0, 17544.0]])]),
    (f"{K}::test_correctness_two_states_stack[return_sequences]", [two(3), two(2)],
     {"return_sequences": True}, ARANGE_2x3x4, {}, 1,
     [np.array([[[72.0, 72.0], [624.0, 624.0], [3144.0, 3144.0]],
                [[648.0, 648.0], [4080.0, 4080.0], [17544.0, 17544.0]]])]),
    (f"{K}::test_correctness_two_states_stack[return_state]", [two(3), two(2)],
     {"return_state": True}, ARANGE_2x3x4, {}, 1,
     [np.array([[3144.0, 3144.0], [17544.0, 17544.0]]),
      np.array([[158.0, 158.0, 158.0], [782.0, 782.0, 782.0]]),
      np.array([[158.0, 158.0, 158.0], [782.0, 782.0, 782.0]]),
      np.array([[1572.0, 1572.0], [8772.0, 8772.0]]),
      np.array([[1572.0, 1572.0], [8772.0, 8772.0]])]),
    (f"{K}::test_statefullness_single_state_stack", [one(3), one(2)], {"stateful": True},
     ARANGE_2x3x4, {}, 2, [np.array([[34092.0, 34092.0], [173196.0, 173196.0]])]),
    (f"{K}::test_statefullness_two_states_stack", [two(3), two(2)], {"stateful": True},
     ARANGE_2x3x4, {}, 2, [np.array([[136368.0, 136368.0], [692784.0, 692784.0]])]),
]
# fmt: on


def make_input(kind_shape):
    kind, shape = kind_shape
    if kind == "ones":
        return np.ones(shape)
    return np.arange(int(np.prod(shape))).reshape(shape).astype("float32")


@pytest.mark.parametrize(
    "source, cells, rnn_kwargs, x, call_kwargs, calls, expected",
    CUSTOM_CELL_NUMBERS,
    ids=[case[0].split("::")[-1] for case in CUSTOM_CELL_NUMBERS],
)
def test_keras_custom_cell_numbers_match(
    source, cells, rnn_kwargs, x, call_kwargs, calls, expected
):
    cells = [cell_class(units) for cell_class, units in cells]
    layer = rnnkit.RNN(cells if len(cells) > 1 else cells[0], **rnn_kwargs)
    for _ in range(calls):
        result = layer(make_input(x), **call_kwargs)
    # Keras's own test unpacks e.g. `output, state_1, state_2 = layer(x)`: the arrays are
    # compared in order; how a stack of custom single-state cells nests them is not part
    # of these numbers.
    assert_results_close(flatten(result), expected, "float32", label=source, check_structure=False)


def test_keras_stacked_lstm_cell_mask_numbers_match():
    # stacked_rnn_cells_test.py::StackedRNNTest::test_stacked_lstm_cell_mask. Keras checks
    # these four-digit numbers with atol=1e-4; so does this test (the numbers carry no more).
    sequence = np.ones((2, 3, 4))
    mask = np.array([[True, True, True], [True, True, False]])
    layer = rnnkit.RNN([rnnkit.LSTMCell(1), rnnkit.LSTMCell(1)])
    layer.build(sequence.shape)
    # kernel_initializer="ones", recurrent_initializer="ones", default bias (zeros with
    # unit_forget_bias: forget gate 1.0)
    bias = np.array([0.0, 1.0, 0.0, 0.0], "float32")
    layer.set_weights(
        [
            np.ones((4, 4), "float32"),
            np.ones((1, 4), "float32"),
            bias,
            np.ones((1, 4), "float32"),
            np.ones((1, 4), "float32"),
            bias,
        ]
    )
    output = layer(sequence, mask=mask)
    assert output.dtype == np.float32 and output.shape == (2, 1)
    np.testing.assert_allclose(output, np.array([[0.7793], [0.5998]]), atol=1e-4)
