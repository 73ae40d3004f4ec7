"""The package's import graph: no circle between modules nor between packages, nothing outside
``mspd_edge.cli`` imports the CLI, and no module takes a ``_private`` name of another.

Every ``import`` statement counts, at module level or inside a function (a lazy import still
ties two modules together). ``from pkg import name`` is an edge to ``pkg.name`` when that is a
module, else to ``pkg``.
"""
import ast
import importlib.util
import pkgutil

import mspd_edge

CLI = "mspd_edge.cli"
MAPPED = ("mspd_edge.export", "mspd_edge.runtime", "mspd_edge.calibration")   # other folders (pyproject)


def _modules():
    found = {"mspd_edge": mspd_edge.__file__}
    for package in ("mspd_edge", *MAPPED):
        spec = importlib.util.find_spec(package)
        found[package] = spec.origin
        for info in pkgutil.walk_packages(spec.submodule_search_locations, package + "."):
            found[info.name] = importlib.util.find_spec(info.name).origin
    return found


def _resolve(module, is_package, node):
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = module if is_package else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        base = base.rpartition(".")[0]
    target = (f"{base}.{node.module}" if base else node.module) if node.module else base
    if node.level == 0:
        target = node.module
    return [f"{target}.{alias.name}" for alias in node.names] + [target]


def _graph():
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(open(path, encoding="utf-8").read())
        is_package = path.endswith("__init__.py")
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                candidates = _resolve(name, is_package, node)
                if isinstance(node, ast.ImportFrom):   # pkg.name if a module, else pkg
                    named = [c for c in candidates[:-1] if c in modules]
                    candidates = named or candidates[-1:]
                edges.update(c for c in candidates if c in modules and c != name)
        graph[name] = edges
    return graph


def _cycle(graph):
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_import_graph_has_no_circle():
    cycle = _cycle(_graph())
    assert cycle is None, " -> ".join(cycle)


def _package(module, modules):
    """A module's node in the package graph: its subpackage of ``mspd_edge`` (the mapped folders
    included), else the module itself (``mspd_edge.pipeline``)."""
    head = ".".join(module.split(".")[:2])
    return head if module.count(".") >= 2 and head in modules else module


def _package_graph(graph):
    packages = {}
    for name, edges in graph.items():
        node = _package(name, graph)
        packages.setdefault(node, set()).update(
            other for edge in edges if (other := _package(edge, graph)) != node)
    return packages


def test_the_package_graph_has_no_circle():
    """No circle between packages either (calibration -> backends -> calibration through two
    different modules of each was one)."""
    cycle = _cycle(_package_graph(_graph()))
    assert cycle is None, " -> ".join(cycle)


def test_the_package_check_sees_a_circle_that_no_module_closes():
    graph = {"mspd_edge.backends": set(), "mspd_edge.backends.exports": {"mspd_edge.calibration.bundle"},
             "mspd_edge.calibration": set(), "mspd_edge.calibration.bundle": set(),
             "mspd_edge.calibration.report": {"mspd_edge.backends"}}
    assert _cycle(graph) is None
    assert _cycle(_package_graph(graph)) == ["mspd_edge.backends", "mspd_edge.calibration",
                                             "mspd_edge.backends"]


def _style_breaks(name, path):
    """Imports against the one style: inside ``mspd_edge/`` relative ones; in the mapped folders
    relative ones for their own modules and ``mspd_edge.`` absolute ones for the rest."""
    mapped = any(name == m or name.startswith(m + ".") for m in MAPPED)
    tree = ast.parse(open(path, encoding="utf-8").read())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            absolute = node.level == 0 and (node.module or "").split(".")[0] == "mspd_edge"
            if (mapped and node.level >= 2) or (not mapped and absolute):
                found.append(f"line {node.lineno}")
        elif isinstance(node, ast.Import) and not mapped:
            found += [f"line {node.lineno}" for a in node.names if a.name.split(".")[0] == "mspd_edge"]
    return found


def test_one_import_style_in_each_folder():
    breaks = {name: found for name, path in _modules().items() if (found := _style_breaks(name, path))}
    assert breaks == {}


def test_no_module_outside_the_cli_imports_it():
    graph = _graph()
    importers = sorted(name for name, edges in graph.items()
                       if not (name == CLI or name.startswith(CLI + "."))
                       and any(e == CLI or e.startswith(CLI + ".") for e in edges))
    assert importers == []


def test_the_walk_sees_lazy_imports():
    """A function-level import counts (the guard above would miss the old cli <-> camera circle)."""
    edges = _graph()["mspd_edge.backends.builders"]
    assert "mspd_edge.torch_backend" in edges and "mspd_edge.runtime.cascade" in edges


def test_no_cli_module_is_long():
    lengths = {name: sum(1 for _ in open(path, encoding="utf-8"))
               for name, path in _modules().items() if name.startswith(CLI)}
    assert max(lengths.values()) <= 250, lengths


def _private(identifier):
    return identifier.startswith("_") and not identifier.startswith("__")


def _private_uses(name, path, modules):
    """``module._name`` texts of another module's private names that module ``name`` imports or reads
    (``from m import _x``; ``m._x`` where ``m`` is an imported module)."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    is_package = path.endswith("__init__.py")
    aliases, found = {}, []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = _resolve(name, is_package, node)[-1]
            for alias in node.names:
                if f"{target}.{alias.name}" in modules:
                    aliases[alias.asname or alias.name] = f"{target}.{alias.name}"
                elif _private(alias.name) and target in modules and target != name:
                    found.append(f"{target}.{alias.name}")
        elif isinstance(node, ast.Import):
            aliases.update({alias.asname: alias.name for alias in node.names if alias.asname})
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and _private(node.attr)
                and aliases.get(node.value.id, name) != name):
            found.append(f"{aliases[node.value.id]}.{node.attr}")
    return found


def test_no_module_uses_a_private_name_of_another():
    modules = _modules()
    uses = {name: found for name, path in modules.items() if (found := _private_uses(name, path, modules))}
    assert uses == {}


def test_the_private_name_check_sees_both_forms(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("from .protect import _load, FileOptions\nfrom . import io\nio._pixels(None)\n")
    modules = {"mspd_edge.m": str(source), "mspd_edge.protect": "", "mspd_edge.io": ""}
    assert sorted(_private_uses("mspd_edge.m", str(source), modules)) == ["mspd_edge.io._pixels",
                                                                          "mspd_edge.protect._load"]
