"""The docstring examples are collected by the README's test command (docs/design.md §9).

``python -m pytest -q`` runs them itself (``--doctest-modules`` over the package, set in
pyproject.toml); this file checks that it still does, and that the modules the docs
point to still hold an example, so that neither can silently stop.
"""
import doctest
import importlib
import re
from pathlib import Path

import pytest

MODULES = ["minilayerlr.evaluation", "minilayerlr.optim.layerwise", "minilayerlr.theory.problems"]
PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def test_the_test_command_collects_the_package_doctests():
    text = PYPROJECT.read_text()
    assert re.search(r'^addopts = ".*--doctest-modules', text, re.M), "no --doctest-modules"
    assert re.search(r'^testpaths = \[.*"minilayerlr"', text, re.M), "the package is not collected"


@pytest.mark.parametrize("name", MODULES)
def test_the_modules_the_docs_name_hold_examples(name):
    tests = doctest.DocTestFinder().find(importlib.import_module(name))
    assert sum(len(t.examples) for t in tests) > 0, f"{name}: no example found"
