"""The package's import rules: one direction through the layers, no circles.

Every `import` in `symjac/` (module-level and function-level alike) is read with `ast`, and each
module is assigned to one layer of the pipeline (`docs/architecture.md`, "Layers"):

    errors -> base -> language | numeric -> symbolic -> checking -> display -> faces

A module may import its own layer or a lower one. The one upward edge allowed is the display hook
(`_printable`, whose methods reach `symjac._latex`/`_display`/`_plot` lazily). A module missing from
`LAYERS` fails the test, so a new module has to be placed on purpose.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "symjac"

ORDER = ("errors", "base", "language", "numeric", "symbolic", "checking", "display", "faces")

LAYERS = {
    "_errors": "errors",
    # pure helpers that know no other symjac concept
    "_floats": "base",
    "_budget": "base",
    "_cost": "base",
    "_dag": "base",
    "_products": "base",
    "_deadline": "base",
    "_stable": "base",
    "_determinant": "base",
    # text, callables, traced torch code -> symbolic arrays over one vocabulary
    "ops": "language",
    "_vocabulary": "language",
    "_parse": "language",
    "_trace": "language",
    # evaluation: values, tolerances, generated code, backends (know no Function class)
    "_values": "numeric",
    "_tolerance": "numeric",
    "_finite_diff": "numeric",
    "_symengine": "numeric",
    "_source": "numeric",
    "_codegen": "numeric",
    "_entry_plan": "numeric",
    "backends": "numeric",
    "backends._numpy": "numeric",
    "backends._torch": "numeric",
    "backends._torch_tensor": "numeric",
    # build once: Function, exact derivatives
    "_function": "symbolic",
    "_jacobian": "symbolic",
    "_adjoint": "symbolic",
    "_hessian": "symbolic",
    "_printable": "symbolic",
    # judge: routes at points, comparisons, reports
    "_arbitrate": "checking",
    "_report": "checking",
    "_engine": "checking",
    "_check": "checking",
    "_domain": "checking",
    "_sampling": "checking",
    "strategies": "checking",
    "_verify": "checking",
    "_closed_form": "checking",
    "_second_order": "checking",
    "_backward_contract": "checking",
    "_cotangents": "checking",
    "_implementations": "checking",
    # show (read-only)
    "_latex": "display",
    "_display": "display",
    "_plot": "display",
    # entry points and built-in data
    "__init__": "faces",
    "_cli": "faces",
    "_worker": "faces",
    "_pytest_plugin": "faces",
    "_catalog": "faces",
    "_examples": "faces",
    "suite": "faces",
    "suite._corpus": "faces",
    "suite._field": "faces",
    "suite.test_catalog": "faces",
    "suite.test_corpus": "faces",
}

# The one upward edge: the display hook's methods import the display layer on first use.
ALLOWED_UPWARD = {("_printable", "_latex"), ("_printable", "_display"), ("_printable", "_plot")}


def _modules() -> dict[str, pathlib.Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1] or ("__init__",)
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: pathlib.Path, modules) -> set[str]:
    """The symjac modules `name` imports anywhere in its file (relative or absolute)."""
    package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
    if name == "__init__":
        package = []
    edges = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and (node.module == "symjac" or node.module.startswith("symjac.")):
                target = node.module[len("symjac."):] if node.module != "symjac" else ""
            else:
                continue
            subs = [f"{target}.{a.name}".lstrip(".") for a in node.names]
            subs = [s for s in subs if s in modules]
            if subs:
                edges.update(subs)
            elif target in modules:
                edges.add(target)
            elif target == "":
                edges.add("__init__")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("symjac."):
                    edges.add(alias.name[len("symjac."):])
                elif alias.name == "symjac":
                    edges.add("__init__")
    edges.discard(name)
    return edges


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_every_module_has_a_layer():
    missing = sorted(set(_modules()) - set(LAYERS))
    assert not missing, f"place these modules in tests/test_layers.py LAYERS: {missing}"


def _upward_edges(graph) -> list[tuple[str, str]]:
    rank = {layer: i for i, layer in enumerate(ORDER)}
    bad = []
    for source, targets in graph.items():
        for target in targets:
            if target == "__init__" and LAYERS.get(source) == "faces":
                continue
            if (source, target) in ALLOWED_UPWARD:
                continue
            if rank[LAYERS[target]] > rank[LAYERS[source]]:
                bad.append((source, target))
    return sorted(bad)


def test_imports_go_down_the_layers():
    bad = _upward_edges(_graph())
    assert not bad, "upward imports (module -> a higher layer): " + ", ".join(
        f"{s} ({LAYERS[s]}) -> {t} ({LAYERS[t]})" for s, t in bad)


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (iterative Tarjan)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
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
    return found


def test_no_import_circles():
    """No circles once the display hook's lazy upward edges are set aside (they are the leaf's door)."""
    graph = {k: {t for t in v if t != "__init__" and (k, t) not in ALLOWED_UPWARD} for k, v in _graph().items()}
    assert _cycles(graph) == []


@pytest.mark.parametrize(("graph", "expected"), [
    ({"a": {"b"}, "b": {"a"}, "c": set()}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
])
def test_the_circle_finder_finds_circles(graph, expected):
    assert _cycles(graph) == expected


def test_the_layer_rule_finds_an_upward_import():
    assert _upward_edges({"_errors": {"_check"}}) == [("_errors", "_check")]
    assert _upward_edges({"_check": {"_errors"}}) == []
