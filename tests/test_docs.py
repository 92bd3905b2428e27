"""Documentation that must keep running: module doctests and the README's Python example."""

from __future__ import annotations

import doctest
import importlib
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("module", ["integrators", "systems", "hnnsim", "hnnsim.simulator"])
def test_doctests(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0


def test_readme_python_example_runs(tmp_path, monkeypatch):
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "the README lost its Python example"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    traj = namespace["traj"]
    assert len(traj) == 10_001 and (tmp_path / "pend.h5").exists()
    from hnnsim import open_trajectory

    assert len(open_trajectory(tmp_path / "pend.h5")) == 15_001  # after the resume
