"""The shape of the package (docs/design.md, "Module levels"): imports flow one way, with
no cycle, and files and functions stay small.

Run alone with ``PYTHONPATH=$PWD python -m pytest -q tests/test_architecture.py``. The
import graph is read from the source with ``ast`` (nothing is imported), so a lazy
import inside a function counts as much as one at the top of a file.
"""
import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "minilayerlr"

#: Module levels, bottom to top: a module may import its own level or below, never above.
#: The longest matching prefix decides; every module must match one (a new module gets a
#: level here, deliberately).
LEVELS = {
    # 0: plain helpers that import nothing above themselves
    "minilayerlr.errors": 0, "minilayerlr.validation": 0, "minilayerlr.tree": 0,
    "minilayerlr.paths": 0,
    # 1: the math of one layer or loss, and plain data sets
    "minilayerlr.layers": 1, "minilayerlr.losses": 1, "minilayerlr.data": 1,
    # 2: the curvature engine (and Kronecker factors of the curvature, once they exist)
    "minilayerlr.curvature": 2, "minilayerlr.kronecker": 2,
    # 3: networks and their evaluations; closed-form problems with the same protocol
    "minilayerlr.model": 3, "minilayerlr.evaluation": 3, "minilayerlr.theory": 3,
    # 4: optimizers (they see oracles, never a network)
    "minilayerlr.optim": 4,
    # 5: the training loop; the package's façade re-exports up to it
    "minilayerlr.training": 5, "minilayerlr": 5,
    # 6: experiments (bench is one, whichever folder it sits in); the derivative checkers
    "minilayerlr.experiments": 6, "minilayerlr.bench": 6, "minilayerlr.testing": 6,
    # 7: the command line
    "minilayerlr.cli": 7, "minilayerlr.__main__": 7,
}
#: ``testing`` serves tests and tutorials; only the command line's ``check`` runs it.
TESTING_USERS = ("minilayerlr.cli", "minilayerlr.testing")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    relative = Path(*name.split(".")[1:]) if "." in name else Path()
    return (PACKAGE / relative).with_suffix(".py").is_file() or (PACKAGE / relative / "__init__.py").is_file()


def imports_of(path: Path):
    """The package modules ``path`` imports (resolved: ``from . import curvature`` is a module)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "minilayerlr")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "minilayerlr":
                continue
            for alias in node.names:  # from pkg import submodule: the submodule is the edge
                sub = f"{target}.{alias.name}"
                found.add(sub if is_module(sub) else target)
    found.discard(name)
    return found


GRAPH = {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def level(name: str) -> int:
    matches = [prefix for prefix in LEVELS if name == prefix or name.startswith(prefix + ".")]
    assert matches, f"{name}: no level in LEVELS; give the new module one (docs/design.md)"
    return LEVELS[max(matches, key=len)]


@pytest.mark.parametrize("name", sorted(GRAPH))
def test_no_module_imports_from_a_level_above_it(name):
    above = {dep: level(dep) for dep in GRAPH[name] if level(dep) > level(name)}
    assert not above, f"{name} (level {level(name)}) imports from above: {above}"


def test_only_the_command_line_imports_testing():
    users = {name for name, deps in GRAPH.items()
             if any(d.startswith("minilayerlr.testing") for d in deps)}
    assert users <= {u for u in GRAPH if u.startswith(TESTING_USERS)}, users


def test_the_import_graph_has_no_cycle():
    state, path = {}, []

    def visit(name):  # depth-first search; a grey node met again closes a cycle
        state[name] = "grey"
        path.append(name)
        for dep in sorted(GRAPH.get(name, ())):
            if state.get(dep) == "grey":
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(dep):] + [dep]))
            if dep not in state:
                visit(dep)
        path.pop()
        state[name] = "black"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name)


def test_the_checks_can_fail():
    """The level and cycle checks see a violation when one exists."""
    assert level("minilayerlr.optim.layerwise") > level("minilayerlr.evaluation")
    assert "minilayerlr.curvature" in GRAPH["minilayerlr.evaluation"]  # from . import curvature
    GRAPH["minilayerlr.tree"].add("minilayerlr.optim")
    GRAPH["minilayerlr.optim"].add("minilayerlr.tree")  # already there; now closes a cycle
    try:
        with pytest.raises(AssertionError, match="from above"):
            test_no_module_imports_from_a_level_above_it("minilayerlr.tree")
        with pytest.raises(AssertionError, match="import cycle"):
            test_the_import_graph_has_no_cycle()
    finally:
        GRAPH["minilayerlr.tree"].discard("minilayerlr.optim")


# -- sizes -----------------------------------------------------------------------------------

MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60  # counted without the docstring: the equation and Args may be long
#: Functions allowed above MAX_FUNCTION_LINES, each with its reason.
LONG_FUNCTIONS: set = set()


def function_lengths(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                length -= first.end_lineno - first.lineno + 1
            yield node.name, length


FILES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_files_and_functions_are_small(path):
    relative = path.relative_to(PACKAGE.parent).as_posix()
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_FILE_LINES, f"{relative}: {lines} lines > {MAX_FILE_LINES}"
    long = {f"{relative}::{name}": n for name, n in function_lengths(path)
            if n > MAX_FUNCTION_LINES and f"{relative}::{name}" not in LONG_FUNCTIONS}
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines (docstring aside): {long}"


def test_the_allow_list_holds_only_long_functions():
    """An entry whose function got short (or gone) must leave LONG_FUNCTIONS."""
    for entry in LONG_FUNCTIONS:
        relative, name = entry.split("::")
        lengths = dict(function_lengths(PACKAGE.parent / relative))
        assert lengths.get(name, 0) > MAX_FUNCTION_LINES, f"{entry}: remove it from LONG_FUNCTIONS"


# -- self-contained docs ---------------------------------------------------------------------

#: Files that still cite the project's private design notes; their owners repoint them at
#: docs/design.md, docs/theory.md or docs/measurements.md (the theory and bench work of
#: the same issue). Entries may go stale without failing: the point is that no new one appears.
CITES_OUTSIDE_FILES: set = set()


def test_nothing_cites_a_file_outside_the_repository():
    root = PACKAGE.parent
    files = [p for pattern in ("minilayerlr/**/*.py", "tests/**/*.py", "tutorials/**/*.py",
                               "docs/**/*.md", "*.md") for p in root.glob(pattern)]
    # split so that this file cites none of them
    markers = ("DESIGN" + ".md", "DESIGN" + " §", "STYLE" + ".md", "STYLE" + " notes", "STYLE" + ":",
               "/work/" + "shared")
    offenders = sorted(p.relative_to(root).as_posix() for p in files
                       if any(m in p.read_text(encoding="utf-8") for m in markers)
                       and p.relative_to(root).as_posix() not in CITES_OUTSIDE_FILES)
    assert not offenders, f"cite docs/design.md or docs/theory.md instead: {offenders}"


def _rule_statement() -> str:
    """The one statement of the rule: the indented block of ``optim/layerwise.py``'s docstring."""
    doc = ast.get_docstring(ast.parse((PACKAGE / "optim" / "layerwise.py").read_text(encoding="utf-8")))
    start = doc.index("::\n\n") + 4
    block = doc[start:doc.index("\n\n", start)]
    assert "α_l = " in block and "EMA" in block, "the rule's statement moved; update this test"
    return block


@pytest.mark.parametrize("doc", ["README.md", "docs/design.md"])
def test_the_docs_quote_the_one_statement_of_the_rule(doc):
    text = (PACKAGE.parent / doc).read_text(encoding="utf-8")
    assert _rule_statement() in text, f"{doc}: quote the rule as optim/layerwise.py states it"


# -- docs name modules that exist ------------------------------------------------------------

ROOT = PACKAGE.parent
DOCS = sorted([ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("tutorials/*.py"),
               *ROOT.glob("tutorials/*.md")])
#: where a backticked relative ``name.py`` in the docs may live
PY_BASES = (ROOT, PACKAGE, ROOT / "tutorials", ROOT / "tests", ROOT / "docs")
#: files of other projects the docs cite (the reference implementations of the peers)
EXTERNAL_FILES = {"image_classification/optim_adahessian.py"}
#: ``minilayerlr.<suffix>`` that name files, not modules (``DIR/.minilayerlr.lock``)
FILE_SUFFIXES = ("lock", "json", "npz", "md", "png", "csv", "txt")


def _dotted_name_is_stale(name: str):
    """Why ``minilayerlr.a.b.C`` names nothing (None if it names a module, or an object
    defined in the module it is named under; a package may re-export)."""
    import importlib
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        if not is_module(module_name):
            continue
        if cut == len(parts):
            return None
        module = importlib.import_module(module_name)
        obj = getattr(module, parts[cut], None)
        if obj is None:
            return f"{module_name} has no {parts[cut]}"
        home = getattr(obj, "__module__", module_name)
        is_package = (PACKAGE / Path(*parts[1:cut]) / "__init__.py").is_file() if cut > 1 else True
        if not is_package and home != module_name:
            return f"{parts[cut]} lives in {home}, not {module_name}"
        return None
    return "no such module"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_the_docs_name_modules_and_files_that_exist(doc):
    import re
    text = doc.read_text(encoding="utf-8")
    stale = []
    for path in sorted(set(re.findall(r"minilayerlr/[\w/]+\.py", text))):
        if not (ROOT / path).is_file():
            stale.append(f"{path}: no such file")
    for name in sorted(set(re.findall(r"\bminilayerlr(?:\.[A-Za-z_]\w*)+", text))):
        if name.rpartition(".")[2] in FILE_SUFFIXES:
            continue
        why = _dotted_name_is_stale(name)
        if why:
            stale.append(f"{name}: {why}")
    for path in sorted(set(re.findall(r"`([\w/]+\.py)\b", text))):
        if path.startswith("minilayerlr/") or path in EXTERNAL_FILES:
            continue
        if not any((base / path).is_file() for base in PY_BASES):
            stale.append(f"{path}: no such file")
    assert not stale, f"{doc.relative_to(ROOT)} names what does not exist: {stale}"


# -- relative links in the docs resolve ------------------------------------------------------

def test_relative_links_in_the_docs_resolve():
    """Every [text](path) in README.md, docs/*.md and tutorials/README.md names a file or folder
    that exists (the README links to the pages its moved sections live in)."""
    pages = [ROOT / "README.md", *ROOT.glob("docs/*.md"), ROOT / "tutorials" / "README.md"]
    broken = [f"{page.relative_to(ROOT)}: {m.group(1)}"
              for page in pages
              for m in re.finditer(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8"))
              if not m.group(1).startswith(("http://", "https://"))
              and not (page.parent / m.group(1)).exists()]
    assert not broken, f"links to nothing: {broken}"
