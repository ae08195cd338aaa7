"""Structural rules of the code base that a reviewer would otherwise have to remember."""

import pathlib

import rnnkit

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_cpp_core_never_includes_python_or_pybind11():
    core = [*ROOT.glob("cpp/include/**/*.hpp"), *ROOT.glob("cpp/src/**/*.cpp")]
    assert core, "the C++ core was not found"
    for path in core:
        text = path.read_text()
        assert "pybind11" not in text and "Python.h" not in text, path


def test_compiled_once_code_reaches_the_kernels_only_through_api_hpp():
    # runtime/ and the bindings are built once, with baseline flags; kernels/ is built once per
    # SIMD level. Only api.hpp's plain data may cross between them.
    once = [*ROOT.glob("cpp/include/rnnkit/runtime/*.hpp"), *ROOT.glob("cpp/src/runtime/*.cpp"),
            *ROOT.glob("cpp/bindings/*")]
    assert once, "the compiled-once code was not found"
    for path in once:
        assert '"rnnkit/kernels/' not in path.read_text(), path
    for path in ROOT.glob("cpp/include/rnnkit/kernels/**/*.hpp"):
        assert '"rnnkit/runtime/' not in path.read_text(), path


def test_no_native_arch_flag_in_the_build():
    for line in (ROOT / "CMakeLists.txt").read_text().splitlines():
        code = line.split("#", 1)[0]
        assert "march=native" not in code, line


def test_every_compiled_level_is_a_portable_one():
    assert set(rnnkit.compiled_isas()) <= {"generic", "v1", "v3", "v4"}
    assert rnnkit.supported_isas()[0] in ("generic", "v1")  # the baseline always runs
    assert rnnkit.active_isa() in rnnkit.supported_isas()
