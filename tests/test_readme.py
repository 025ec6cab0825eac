"""The README's code must run as printed."""
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_api_block_runs():
    blocks = python_blocks()
    assert blocks, "README lost its API example"
    namespace = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert namespace["state"].step_sizes.shape == (2,)
    assert namespace["q"].shape == (2,)
    assert namespace["qev"].layer_curvature(namespace["qev"].grads).shape == (2,)


def test_readme_test_command_is_what_ci_runs():
    ci = (README.parent / ".ci" / "run").read_text()
    assert "python -m pytest -q" in README.read_text()
    assert ci.strip().splitlines()[-1] == "python -m pytest -q"


def test_readme_is_a_front_door_of_at_most_200_lines():
    """The README stays short: what it is, install, the API, the rule, a summary, links;
    the long sections live in docs/ (tests/test_architecture.py checks the links resolve)."""
    lines = README.read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move a section to docs/"
