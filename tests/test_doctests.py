"""The examples in the docstrings run and print what they say (docs/design.md points to them)."""
import doctest
import importlib

import pytest

MODULES = ["minilayerlr.evaluation", "minilayerlr.optim.layerwise", "minilayerlr.theory.problems"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name}: no example found"
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"
