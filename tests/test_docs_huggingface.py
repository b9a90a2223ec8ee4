"""docs/huggingface.md's Python blocks run as written (offline, on images they make), so the page never rots."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parent.parent / "docs" / "huggingface.md"
BLOCKS = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)


def test_the_page_has_python_blocks():
    assert len(BLOCKS) == 3, "docs/huggingface.md: one block each for the processor, the pipeline and datasets"


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_python_block_runs_as_written(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    exec(compile(BLOCKS[index], f"docs/huggingface.md python block {index + 1}", "exec"), namespace)
