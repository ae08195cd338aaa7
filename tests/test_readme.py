"""The README's Python examples (```python blocks; ```py ones need the user's own files) run
as written."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.skipif(not README.exists(), reason="README.md not found next to tests/")
def test_readme_python_examples_run_in_order():
    namespace: dict = {}
    for block in BLOCKS:
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102
    assert namespace["y"].shape == (32, 64)
