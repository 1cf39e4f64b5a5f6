"""The package's layers as data: no import cycle in ``grader/``, and no module importing a layer above its own.

Every ``import`` counts, the ones inside functions too (a lazy import is still a dependency), except
those under ``if TYPE_CHECKING:``. A module's layer is the first entry of ``LAYERS`` whose prefix names
it; a module may import its own layer and the layers below it (lower index), never one above.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

GRADER = Path(__file__).resolve().parents[2] / "grader"

# bottom up: each layer may import itself and the layers before it. A prefix names a module and its submodules;
# the bare package name ("grader") names only its __init__, the public API.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("leaves", ("grader.errors", "grader.atomic", "grader.progressbar")),
    ("wire", ("grader.sandbox.protocol",)),
    ("sandbox", ("grader.sandbox",)),
    ("course", ("grader.course",)),
    ("grading", ("grader.grading",)),
    ("executors", ("grader.executors",)),
    ("classroom", ("grader.classroom",)),
    ("present", ("grader.present",)),
    ("serving", ("grader.serving",)),
    ("lab", ("grader.lab",)),
    ("authoring", ("grader.authoring",)),
    ("shell", ("grader.commands", "grader.cli", "grader.__main__")),
    ("public API", ("grader",)),
)


def module_name(path: Path, package_dir: Path) -> str:
    parts = path.relative_to(package_dir.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _under_type_checking(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports_of(source: str, name: str, is_package: bool, known: set[str]) -> set[str]:
    """The modules of ``known`` that module ``name`` imports (``from pkg import mod`` names ``pkg.mod``)."""
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)) or _under_type_checking(node, parents):
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(package_dir: Path = GRADER) -> dict[str, set[str]]:
    """Each module of the package and the package modules it imports."""
    files = {module_name(p, package_dir): p for p in sorted(package_dir.rglob("*.py"))}
    known = set(files)
    return {name: imports_of(p.read_text(encoding="utf-8"), name, p.name == "__init__.py", known)
            for name, p in files.items()}


def layer_of(module: str, layers=LAYERS) -> int:
    for index, (_, prefixes) in enumerate(layers):
        if any(module == p or ("." in p and module.startswith(p + ".")) for p in prefixes):
            return index
    raise LookupError(f"{module} is in no layer of LAYERS: add its prefix to the right layer")


def upward_imports(graph: dict[str, set[str]], layers=LAYERS) -> list[str]:
    """``a -> b`` for every import of a module in a higher layer, named with both layers."""
    found = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            mine, theirs = layer_of(module, layers), layer_of(target, layers)
            if theirs > mine and target != module.rpartition(".")[0] and not module.startswith(target + "."):
                found.append(f"{module} ({layers[mine][0]}) -> {target} ({layers[theirs][0]})")
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _edges_in(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    members = set(component)
    return [f"{a} -> {b}" for a in component for b in sorted(graph[a] & members)]


# --- the checker on a graph small enough to read: it must be able to fail

TINY_LAYERS = (("low", ("p.low",)), ("high", ("p.high",)), ("top", ("p",)))  # "p" names only p/__init__


def test_the_checker_finds_a_cycle_and_names_its_edges():
    graph = {"p.low.a": {"p.low.b"}, "p.low.b": {"p.low.c"}, "p.low.c": {"p.low.a"}, "p.high.d": {"p.low.a"}}
    assert cycles(graph) == [["p.low.a", "p.low.b", "p.low.c"]]
    assert _edges_in(cycles(graph)[0], graph) == ["p.low.a -> p.low.b", "p.low.b -> p.low.c", "p.low.c -> p.low.a"]
    assert cycles({"p.low.a": {"p.low.b"}, "p.low.b": set()}) == []


def test_the_checker_finds_an_upward_import_and_allows_downward_ones():
    graph = {"p.low.a": {"p.high.d"}, "p.high.d": {"p.low.a"}, "p": {"p.high.d"}, "p.high": set()}
    assert upward_imports(graph, TINY_LAYERS) == ["p.low.a (low) -> p.high.d (high)"]
    assert upward_imports({"p.high.d": {"p.low.a"}, "p.low.a": set()}, TINY_LAYERS) == []
    with pytest.raises(LookupError, match="q.x is in no layer"):
        layer_of("q.x", TINY_LAYERS)
    with pytest.raises(LookupError, match="p.other is in no layer"):
        layer_of("p.other", TINY_LAYERS)


def test_the_checker_reads_relative_function_level_and_from_package_imports():
    known = {"p", "p.low", "p.low.a", "p.low.b", "p.high", "p.high.d"}
    source = ("from . import b\nfrom ..high.d import x\ndef f():\n    import p.high\n"
              "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from p.high import d\n")
    assert imports_of(source, "p.low.a", False, known) == {"p.low.b", "p.high.d", "p.low", "p.high"}


# --- the grader itself

def test_every_grader_module_has_a_layer():
    for module in import_graph():
        layer_of(module)


def test_the_grader_has_no_import_cycle():
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import cycles in grader/:\n" + "\n".join("  " + ", ".join(_edges_in(c, graph)) for c in found)


def test_no_grader_module_imports_a_layer_above_its_own():
    found = upward_imports(import_graph())
    assert not found, "upward imports (move the shared piece down a layer):\n  " + "\n  ".join(found)


# --- what a result becomes for a person is rendered without the sandbox

PRESENTERS = ("grader.present.feedback", "grader.present.report", "grader.present.export", "grader.present.learner")
SANDBOX_CODE = ("grader.sandbox", "fakeredis")


def _modules_after_import(module: str) -> list[str]:
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=GRADER.parent)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


@pytest.mark.parametrize("module", PRESENTERS)
def test_presenters_import_no_sandbox_code(module):
    loaded = _modules_after_import(module)
    assert module in loaded  # the check saw the module itself
    found = [m for m in loaded if any(m == bad or m.startswith(bad + ".") for bad in SANDBOX_CODE)]
    assert not found, f"importing {module} loads sandbox code: {found}"


def test_the_presenter_check_sees_sandbox_code():
    assert any(m.startswith("grader.") and "sandbox" in m for m in _modules_after_import("grader.grading.grade"))


# --- docs/ARCHITECTURE.md matches the code

ARCHITECTURE = GRADER.parent / "docs" / "ARCHITECTURE.md"


def test_architecture_page_names_only_files_and_functions_that_exist():
    text = ARCHITECTURE.read_text(encoding="utf-8")
    paths = set(re.findall(r"(?<![\w/])grader/[\w/]+(?:\.py|/)", text))
    assert {"grader/sandbox/parent.py", "grader/grading/result.py"} <= paths  # the check reads the page
    missing = sorted(p for p in paths if not (GRADER.parent / p).exists())
    assert not missing, f"docs/ARCHITECTURE.md names {missing}, which are not in grader/"
    for path, name in re.findall(r"`(grader/[\w/]+\.py)` `(\w+)`", text):
        source = (GRADER.parent / path).read_text(encoding="utf-8")
        assert re.search(rf"^(def|class) {name}\b", source, re.M), f"docs/ARCHITECTURE.md: {path} has no {name}"
    for module in re.findall(r"python -m (grader\.[\w.]+)", text):
        assert (GRADER.parent / (module.replace(".", "/") + ".py")).is_file(), module


def test_architecture_page_table_names_each_rooms_own_modules():
    rows = [line for line in ARCHITECTURE.read_text(encoding="utf-8").splitlines() if line.startswith("| ")]
    checked = 0
    for row in rows:
        room = re.search(r"`grader/(\w+)/`", row)
        if not room:
            continue
        for name in re.findall(r"`(\w+\.py)`", row):
            checked += 1
            assert (GRADER / room.group(1) / name).is_file(), f"docs/ARCHITECTURE.md: grader/{room.group(1)}/ has no {name}"
    assert checked > 20


def test_architecture_page_names_every_room():
    text = ARCHITECTURE.read_text(encoding="utf-8")
    rooms = sorted(p.name for p in GRADER.iterdir() if (p / "__init__.py").is_file())
    assert rooms and not [r for r in rooms if f"grader/{r}/" not in text]
