"""The README's Python examples (```python blocks; ```py ones need the user's own files) run
as written."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def python_blocks():
    """The README's ```python blocks; a missing README fails the tests that read it."""
    assert README.is_file(), f"{README} not found: its examples are tested here"
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_examples():
    assert len(python_blocks()) >= 2


def test_readme_python_examples_run_in_order():
    namespace: dict = {}
    for block in python_blocks():
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102
    assert namespace["y"].shape == (32, 64)
