"""Model files from elsewhere are untrusted input (docs/reliability.md, "Model files"): loading
one never crashes, hangs, runs code from it or takes memory out of proportion to the model; every
failure is a ValueError, TypeError, OSError or MemoryError naming the file.

Hand-made hostile files (nesting, zip bombs, missing members, lying array headers, configs
declaring more weights than the file holds), then a mutation fuzz over valid files of every
format: truncations, bit flips, swapped and renamed archive members, and structural edits of
the JSON inside (wrong dtypes, shapes, sizes, deep nesting). The number of files tried is
printed. HDF5 files are parsed by the HDF5 C library, so their mutations run in a child process:
a crash there fails the test instead of ending the suite.
"""

import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import rnnkit
from conftest import import_keras

ALLOWED = (ValueError, TypeError, OSError, MemoryError)
FUZZ_SEED = int(os.environ.get("RNNKIT_FILE_FUZZ_SEED", "0"))
FUZZ_COUNT = int(os.environ.get("RNNKIT_FILE_FUZZ_COUNT", "60"))  # per format and kind
TRIED: dict[str, int] = {}


def small_model():
    x = rnnkit.Input((None, 3))
    y = rnnkit.Dense(2)(rnnkit.LSTM(4, return_sequences=True)(rnnkit.Masking()(x)))
    return rnnkit.Model(x, y)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Valid files of every format: .rnnkit, .keras, legacy .h5, .weights.h5 with its config."""
    keras = import_keras()
    folder = tmp_path_factory.mktemp("valid")
    model = small_model()
    rnnkit.save(model, folder / "model.rnnkit")
    stateful = rnnkit.Sequential([rnnkit.Input((None, 3), batch_size=2),
                                  rnnkit.GRU(3, stateful=True)])
    stateful(np.ones((2, 4, 3), "float32"))
    rnnkit.save(stateful, folder / "stateful.rnnkit")
    k = keras.Sequential([keras.Input((None, 3)), keras.layers.Masking(),
                          keras.layers.LSTM(4, return_sequences=True), keras.layers.Dense(2)])
    k.save(folder / "model.keras")
    k.save(folder / "model.h5")
    k.save_weights(folder / "model.weights.h5")
    (folder / "config.json").write_text(k.to_json())
    return folder


def load_any(path, config=None):
    if str(path).endswith(".rnnkit"):
        return rnnkit.load(path)
    return rnnkit.load_keras(path, config=config)


def assert_clean_failure(path, config=None):
    """Loading either works or fails with an allowed error naming the file."""
    try:
        load_any(path, config)
    except ALLOWED as error:
        if not isinstance(error, (FileNotFoundError, MemoryError)):
            assert os.fspath(path) in str(error) or os.path.basename(path) in str(error), (
                f"{type(error).__name__} does not name the file: {error}")
        return error
    return None


# ----------------------------------------------------------------------------- hand-made
def rewrite_zip(source, target, replace=None, drop=(), extra=None, compression=None):
    """A copy of zip `source` with members replaced, dropped or added."""
    replace, extra = replace or {}, extra or {}
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            if info.filename in drop:
                continue
            data = replace.get(info.filename, old.read(info))
            new.writestr(info.filename, data, compress_type=compression or info.compress_type)
        for name, data in extra.items():
            new.writestr(name, data, compress_type=compression or zipfile.ZIP_DEFLATED)


def deep_json(levels):
    return ("[" * levels + "]" * levels).encode()


@pytest.mark.parametrize("name,member", [("model.keras", "config.json"),
                                         ("model.rnnkit", "rnnkit.json")])
def test_deeply_nested_configuration_is_refused(files, tmp_path, name, member):
    target = tmp_path / name
    rewrite_zip(files / name, target, replace={member: deep_json(200_000)})
    error = assert_clean_failure(target)
    assert isinstance(error, ValueError) and "nests" in str(error)


@pytest.mark.parametrize("name,member", [("model.keras", "config.json"),
                                         ("model.keras", "model.weights.h5"),
                                         ("model.rnnkit", "rnnkit.json"),
                                         ("model.rnnkit", "weights.npz")])
def test_zip_bombs_are_refused_before_they_inflate(files, tmp_path, name, member):
    target = tmp_path / name
    bomb = b"\0" * (80 << 20)  # deflates to ~80 KiB; over every limit the small model allows
    rewrite_zip(files / name, target, replace={member: bomb}, compression=zipfile.ZIP_DEFLATED)
    assert os.path.getsize(target) < (1 << 20)
    error = assert_clean_failure(target)
    assert isinstance(error, ValueError) and "refusing" in str(error)


@pytest.mark.parametrize("member", ["weights.npz", "states.npz", "rnnkit.json"])
def test_missing_members_of_an_rnnkit_file(files, tmp_path, member):
    target = tmp_path / "model.rnnkit"
    rewrite_zip(files / "stateful.rnnkit", target, drop=(member,))
    error = assert_clean_failure(target)
    assert isinstance(error, ValueError) and (member in str(error) or "not an rnnkit" in str(
        error))


def npz_with_header(shape, dtype="<f4", data=b""):
    """An .npz whose one array w0000 declares `shape` and holds `data`."""
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as npz:
        npz.writestr("w0000.npy", buffer.getvalue() + data)
    return out.getvalue()


@pytest.mark.parametrize("shape,dtype", [((10**9, 10**9), "<f4"), ((3, 16), "|O"),
                                         ((7,), "<f4")])
def test_array_headers_are_checked_before_reading(files, tmp_path, shape, dtype):
    target = tmp_path / "model.rnnkit"
    rewrite_zip(files / "model.rnnkit", target, replace={"weights.npz": npz_with_header(
        shape, dtype, b"\0" * 64)})
    error = assert_clean_failure(target)
    assert isinstance(error, ValueError)


def test_configuration_declaring_more_weights_than_the_file_holds(files, tmp_path):
    with zipfile.ZipFile(files / "model.rnnkit") as archive:
        header = json.loads(archive.read("rnnkit.json"))
    text = json.dumps(header).replace('"units": 4', '"units": 400000')
    target = tmp_path / "model.rnnkit"
    rewrite_zip(files / "model.rnnkit", target, replace={"rnnkit.json": text})
    error = assert_clean_failure(target)
    assert isinstance(error, ValueError) and "more weights than the file holds" in str(error)
    with zipfile.ZipFile(files / "model.keras") as archive:
        config = archive.read("config.json").decode().replace('"units": 4', '"units": 400000')
    target = tmp_path / "model.keras"
    rewrite_zip(files / "model.keras", target, replace={"config.json": config})
    error = assert_clean_failure(target)
    assert isinstance(error, ValueError) and "more weights than the file holds" in str(error)


def test_loading_runs_no_code(files, tmp_path):
    """A pickle where arrays should be is refused, never unpickled."""
    marker = tmp_path / "ran"
    payload = f"import pathlib; pathlib.Path({str(marker)!r}).write_text('x')"

    class Evil:
        def __reduce__(self):
            return (exec, (payload,))

    buffer = io.BytesIO()
    np.save(buffer, np.array([Evil()], dtype=object), allow_pickle=True)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as npz:
        npz.writestr("w0000.npy", buffer.getvalue())
    target = tmp_path / "model.rnnkit"
    rewrite_zip(files / "model.rnnkit", target, replace={"weights.npz": out.getvalue()})
    assert isinstance(assert_clean_failure(target), ValueError)
    assert not marker.exists()


# ----------------------------------------------------------------------------- mutation fuzz
def mutations(data, rng, count):
    """Byte-level mutants of `data`: truncations and bit flips."""
    for i in range(count):
        if i % 2 == 0:
            yield data[: int(rng.integers(0, len(data)))]
        else:
            mutant = bytearray(data)
            for position in rng.integers(0, len(data), int(rng.integers(1, 9))):
                mutant[position] ^= 1 << int(rng.integers(0, 8))
            yield bytes(mutant)


def json_mutations(text, rng, count):
    """Structural mutants of a JSON document: values swapped for wrong types and sizes, keys
    dropped, deep nesting inserted."""
    document = json.loads(text)
    paths = []

    def walk(value, path):
        paths.append(path)
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, (*path, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, (*path, index))

    walk(document, ())
    junk = [None, -1, 0, 10**12, 1e308, "float16", "object", [], {}, [[[]]], "x" * 1000,
            {"class_name": "__keras_tensor__", "config": {}}, [None, None, None], True]
    for _ in range(count):
        mutant = json.loads(text)
        path = paths[int(rng.integers(1, len(paths)))]
        parent = mutant
        for key in path[:-1]:
            parent = parent[key]
        choice = int(rng.integers(0, 3))
        if choice == 0:
            parent[path[-1]] = junk[int(rng.integers(0, len(junk)))]
        elif choice == 1 and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = json.loads(deep_json(int(rng.integers(50, 400))))
        yield json.dumps(mutant)


def member_mutations(path, rng, count):
    """Archives with members swapped, renamed or emptied."""
    with zipfile.ZipFile(path) as archive:
        members = {i.filename: archive.read(i) for i in archive.infolist()}
    names = sorted(members)
    for _ in range(count):
        a, b = (names[int(i)] for i in rng.integers(0, len(names), 2))
        kind = int(rng.integers(0, 3))
        mutant = dict(members)
        if kind == 0:
            mutant[a], mutant[b] = members[b], members[a]
        elif kind == 1:
            mutant[a + ".renamed"] = mutant.pop(a)
        else:
            mutant[a] = b""
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as new:
            for name, data in mutant.items():
                new.writestr(name, data)
        yield out.getvalue()


@pytest.mark.parametrize("name", ["model.rnnkit", "stateful.rnnkit"])
def test_fuzzed_rnnkit_files_fail_cleanly(files, tmp_path, name):
    rng = np.random.default_rng(FUZZ_SEED)
    data = (files / name).read_bytes()
    with zipfile.ZipFile(files / name) as archive:
        header = archive.read("rnnkit.json").decode()
    target = tmp_path / name
    candidates = [*mutations(data, rng, FUZZ_COUNT), *member_mutations(files / name, rng,
                                                                        FUZZ_COUNT)]
    for text in json_mutations(header, rng, FUZZ_COUNT):
        out = tmp_path / "base.rnnkit"
        rewrite_zip(files / name, out, replace={"rnnkit.json": text})
        candidates.append(out.read_bytes())
    for mutant in candidates:
        target.write_bytes(mutant)
        assert_clean_failure(target)
    TRIED[name] = len(candidates)


def test_fuzzed_keras_files_fail_cleanly_in_a_child_process(files, tmp_path):
    """.keras (zip + HDF5), legacy .h5 and .weights.h5 with a config: mutants written here,
    loaded in one child process that reports each outcome."""
    rng = np.random.default_rng(FUZZ_SEED + 1)
    cases = []
    keras_file = files / "model.keras"
    with zipfile.ZipFile(keras_file) as archive:
        config = archive.read("config.json").decode()
    kinds = {
        "keras_bytes": (mutations(keras_file.read_bytes(), rng, FUZZ_COUNT), ".keras", None),
        "keras_members": (member_mutations(keras_file, rng, FUZZ_COUNT), ".keras", None),
        "h5_bytes": (mutations((files / "model.h5").read_bytes(), rng, FUZZ_COUNT), ".h5", None),
        "weights_bytes": (mutations((files / "model.weights.h5").read_bytes(), rng, FUZZ_COUNT),
                          ".weights.h5", str(files / "config.json")),
    }
    for kind, (mutants, suffix, config_path) in kinds.items():
        for index, mutant in enumerate(mutants):
            path = tmp_path / f"{kind}_{index}{suffix}"
            path.write_bytes(mutant)
            cases.append((str(path), config_path))
    for index, text in enumerate(json_mutations(config, rng, FUZZ_COUNT)):
        path = tmp_path / f"keras_json_{index}.keras"
        rewrite_zip(keras_file, path, replace={"config.json": text})
        cases.append((str(path), None))
    script = f"""
import json, os, sys
sys.path.insert(0, {os.path.dirname(__file__)!r})
from test_hostile_files import assert_clean_failure
failures = []
for path, config in json.load(sys.stdin):
    try:
        assert_clean_failure(path, config)
    except BaseException as error:
        failures.append((path, type(error).__name__, str(error)[:300]))
print(json.dumps(failures))
"""
    result = subprocess.run([sys.executable, "-c", script], input=json.dumps(cases),
                            capture_output=True, text=True, timeout=120 + len(cases),
                            env={**os.environ, "KERAS_BACKEND": "numpy"})
    assert result.returncode == 0, f"the child process died: {result.stderr[-2000:]}"
    failures = json.loads(result.stdout.strip().splitlines()[-1])
    assert not failures, failures[:5]
    TRIED["keras formats"] = len(cases)


def test_report_how_many_files_were_tried():
    """Printed with -s (and recorded in docs/reliability.md)."""
    print(f"\nhostile-file fuzz: files tried per format {TRIED}")
