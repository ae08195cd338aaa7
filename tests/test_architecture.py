"""Structural rules of the code base that a reviewer would otherwise have to remember."""

import ast
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


# ---------------------------------------------------------------------------------------
# the Python package: dependencies point one way, modules stay readable
# ---------------------------------------------------------------------------------------

PACKAGE = ROOT / "python" / "rnnkit"
MAX_MODULE_LINES = 600


def _module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules():
    """Every module of the package by name: the .py files, and the compiled modules a .pyi
    stub declares (leaves: they import nothing of rnnkit's)."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    for stub in PACKAGE.rglob("*.pyi"):
        modules.setdefault(_module_name(stub), None)
    return modules


def _imports(name, path, modules):
    """The rnnkit modules `name` imports anywhere in its source (inside functions too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                base = ".".join(base + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # `from package import module` imports the module; `from module import name`
            # the module.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import a.b.c`: the deepest module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _cycles(graph):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _import_graph():
    modules = _modules()
    return {
        name: set() if path is None else _imports(name, path, modules)
        for name, path in modules.items()
    }


def test_the_import_graph_is_read_from_the_package():
    graph = _import_graph()
    assert "rnnkit.bench.runner" in graph and "rnnkit._core" in graph
    assert "rnnkit.layers.recurrent.rnn" in graph["rnnkit.layers.recurrent.lstm"] or (
        "rnnkit.layers.recurrent.cell_layer" in graph["rnnkit.layers.recurrent.lstm"]
    )
    assert "rnnkit._core" in graph["rnnkit.layers.recurrent.rnn"]  # `from ... import _core`
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles_among_the_python_modules():
    """Counting imports inside functions, which only defer a cycle to the first call."""
    cycles = _cycles(_import_graph())
    assert not cycles, f"modules that import each other (directly or round about): {cycles}"


def test_no_library_module_is_over_600_lines():
    long = {
        str(path.relative_to(ROOT)): lines
        for path in PACKAGE.rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"split by concept (over {MAX_MODULE_LINES} lines): {long}"


def _importorskips_of_rnnkit(source):
    """Line numbers of `importorskip("rnnkit...")` calls in a module's source."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and getattr(node.func, "attr", getattr(node.func, "id", None)) == "importorskip"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and str(node.args[0].value).split(".")[0] == "rnnkit"
    ]


def test_no_test_module_skips_itself_when_rnnkit_fails_to_import():
    """A broken build must fail the suite, not show it as skipped."""
    assert _importorskips_of_rnnkit('import pytest\nrnnkit = pytest.importorskip("rnnkit")') == [2]
    assert _importorskips_of_rnnkit('torch = pytest.importorskip("torch")') == []
    offenders = [
        f"{path.name}:{line}"
        for path in sorted((ROOT / "tests").glob("*.py"))
        for line in _importorskips_of_rnnkit(path.read_text())
    ]
    assert not offenders, f"import rnnkit plainly instead of importorskip: {offenders}"
