"""Generate ``tests/data/golden.npz`` from real Keras 3 (NumPy backend).

Run from anywhere with Keras installed (rnnkit is not needed)::

    python tests/make_golden.py

Every case stores, under ``<case>.<field>`` keys:

* ``config``: JSON with the layer spec (see ``conftest.py``), dtype, and per call whether
  a mask / initial state is given and the nesting of the returned value;
* ``w<j>``: the weights in Keras ``get_weights()`` order;
* ``x<k>``, ``mask<k>``, ``init<k>_<j>``: the inputs of call ``k`` (initial states flat);
* ``out<k>_<j>``: every array call ``k`` returned (flat, Keras tree order);
* ``states_<j>``: for stateful layers, ``layer.states`` after the last call.

``__meta__`` records the Keras version and backend. float64 cases are computed in true
float64 (``conftest.import_keras`` explains why Keras's NumPy backend needs a nudge). The
specs carry no ``unroll``: the replay runs each case through every rnnkit execution path,
and the recording uses the Keras branch that is right for the case
(``conftest.keras_reference_unroll`` explains the NumPy backend's two mask quirks).
"""

import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "numpy")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from conftest import (  # noqa: E402
    CELL_SPECS,
    build_layer,
    flatten,
    import_keras,
    keras_call,
    keras_reference_spec,
    keras_states,
    random_initial_state,
    random_inputs,
    random_mask,
    random_weights,
    seed_for,
    structure,
    with_kwargs,
)

OUTPUT = os.path.join(HERE, "data", "golden.npz")
SHAPE = (5, 6, 3)  # batch 5 so the mask has its four special rows plus a random one

# Non-default activations per cell for the `<cell>_activations` cases.
ACTIVATION_KWARGS = {
    "simple_rnn": {"activation": "relu"},
    "lstm": {"activation": "softsign", "recurrent_activation": "hard_sigmoid"},
    "gru_reset_after": {"activation": "elu", "recurrent_activation": "hard_silu"},
    "gru_reset_before": {"activation": "gelu", "recurrent_activation": "tanh"},
}

STACK = {
    "layer": "RNN",
    "cells": [
        {"cell": "LSTMCell", "units": 4, "kwargs": {}},
        {"cell": "GRUCell", "units": 3, "kwargs": {"reset_after": False}},
        {"cell": "SimpleRNNCell", "units": 2, "kwargs": {}},
    ],
    "wrap": "list",
    "kwargs": {},
}


def single_calls(mask=False, initial_state=False, count=1):
    return [{"mask": mask, "initial_state": initial_state} for _ in range(count)]


def build_cases():
    """name -> (spec, dtype, calls)."""
    cases = {}
    both = {"return_sequences": True, "return_state": True}
    for cell, spec in CELL_SPECS.items():
        cases[f"{cell}_sequences_state"] = (with_kwargs(spec, **both), "float32", single_calls())
        cases[f"{cell}_last_output"] = (spec, "float32", single_calls())
        cases[f"{cell}_last_output_state_mask"] = (
            with_kwargs(spec, return_state=True),
            "float32",
            single_calls(mask=True),
        )
        cases[f"{cell}_mask"] = (with_kwargs(spec, **both), "float32", single_calls(mask=True))
        cases[f"{cell}_mask_zero_output"] = (
            with_kwargs(spec, zero_output_for_mask=True, **both),
            "float32",
            single_calls(mask=True),
        )
        cases[f"{cell}_go_backwards_mask"] = (
            with_kwargs(spec, go_backwards=True, **both),
            "float32",
            single_calls(mask=True),
        )
        cases[f"{cell}_initial_state_mask"] = (
            with_kwargs(spec, **both),
            "float32",
            single_calls(mask=True, initial_state=True),
        )
        cases[f"{cell}_stateful_two_calls"] = (
            with_kwargs(spec, stateful=True, **both),
            "float32",
            single_calls(count=2),
        )
        cases[f"{cell}_activations_no_bias"] = (
            with_kwargs(spec, use_bias=False, **ACTIVATION_KWARGS[cell], **both),
            "float32",
            single_calls(mask=True),
        )
        cases[f"{cell}_float64_mask"] = (
            with_kwargs(spec, **both),
            "float64",
            single_calls(mask=True, initial_state=True),
        )

    cases["stacked_mask"] = (with_kwargs(STACK, **both), "float32", single_calls(mask=True))
    cases["stacked_initial_state_go_backwards"] = (
        with_kwargs(STACK, go_backwards=True, **both),
        "float32",
        single_calls(mask=True, initial_state=True),
    )
    cases["stacked_cells_object_float64"] = (
        with_kwargs(dict(STACK, wrap="stacked"), **both),
        "float64",
        single_calls(mask=True),
    )
    cases["stacked_stateful_two_calls"] = (
        with_kwargs(STACK, stateful=True, **both),
        "float32",
        single_calls(count=2),
    )

    lstm_seq = with_kwargs(CELL_SPECS["lstm"], **both)
    for merge_mode in ("concat", "sum", "mul", "ave", None):
        cases[f"bidirectional_lstm_{merge_mode}_mask"] = (
            {"layer": "Bidirectional", "inner": lstm_seq, "merge_mode": merge_mode},
            "float32",
            single_calls(mask=True),
        )
    cases["bidirectional_gru_last_state_initial_state_mask"] = (
        {
            "layer": "Bidirectional",
            "inner": with_kwargs(CELL_SPECS["gru_reset_after"], return_state=True),
            "merge_mode": "concat",
        },
        "float32",
        single_calls(mask=True, initial_state=True),
    )
    cases["bidirectional_backward_layer_float64"] = (
        {
            "layer": "Bidirectional",
            "inner": with_kwargs(CELL_SPECS["lstm"], return_sequences=True),
            "backward": with_kwargs(
                CELL_SPECS["gru_reset_before"], return_sequences=True, go_backwards=True
            ),
            "merge_mode": "concat",
        },
        "float64",
        single_calls(mask=True),
    )
    return cases


def record_case(name, spec, dtype, calls, arrays):
    keras = import_keras()
    rng = np.random.default_rng(seed_for("golden", name))
    masked = any(call["mask"] for call in calls)
    layer = build_layer(keras.layers, keras_reference_spec(spec, masked), dtype, is_keras=True)
    layer.build(SHAPE)
    weights = random_weights(rng, [w.shape for w in layer.get_weights()], dtype)
    layer.set_weights(weights)
    for j, w in enumerate(weights):
        arrays[f"{name}.w{j}"] = w

    recorded_calls = []
    for k, call in enumerate(calls):
        x = random_inputs(rng, SHAPE, dtype)
        arrays[f"{name}.x{k}"] = x
        mask = initial_state = None
        init_structure = None
        if call["mask"]:
            mask = random_mask(rng, SHAPE[0], SHAPE[1])
            arrays[f"{name}.mask{k}"] = mask
        if call["initial_state"]:
            initial_state = random_initial_state(layer, SHAPE[0], rng, dtype)
            init_structure = structure(initial_state)
            for j, s in enumerate(flatten(initial_state)):
                arrays[f"{name}.init{k}_{j}"] = s
        result = keras_call(layer, x, initial_state=initial_state, mask=mask)
        for j, out in enumerate(flatten(result)):
            out = np.asarray(out)
            assert out.dtype == np.dtype(dtype), (name, out.dtype)
            arrays[f"{name}.out{k}_{j}"] = out
        recorded_calls.append(
            {
                "mask": call["mask"],
                "initial_state": init_structure,
                "result_structure": structure(result),
            }
        )

    stateful = spec.get("kwargs", {}).get("stateful", False)
    if stateful:
        for j, s in enumerate(keras_states(layer)):
            arrays[f"{name}.states_{j}"] = s
    config = {"spec": spec, "dtype": dtype, "calls": recorded_calls, "stateful": stateful}
    arrays[f"{name}.config"] = np.array(json.dumps(config, sort_keys=True))


def main():
    keras = import_keras()
    arrays = {}
    cases = build_cases()
    for name, (spec, dtype, calls) in cases.items():
        record_case(name, spec, dtype, calls, arrays)
    meta = {
        "keras_version": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "numpy_version": np.__version__,
        "float64": "true float64 (conftest.import_keras)",
        "generator": "tests/make_golden.py",
        "cases": sorted(cases),
    }
    arrays["__meta__"] = np.array(json.dumps(meta, sort_keys=True))
    os.makedirs(os.path.dirname(OUTPUT), exist_ok=True)
    np.savez_compressed(OUTPUT, **arrays)
    print(f"wrote {len(cases)} cases to {OUTPUT} ({os.path.getsize(OUTPUT)} bytes)")


if __name__ == "__main__":
    main()
