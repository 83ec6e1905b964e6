"""Print the cycles of the import graph of a package and exit non-zero if there is any.

Every ``import`` / ``from ... import`` statement of every module counts, at module level and
inside functions alike (a lazy import still makes the importing module depend on the imported
one). An edge goes from a module to each module of the package it names: ``from . import x``
names the submodule ``x`` when there is one, else the package itself (its ``__init__``). Only
modules inside the package are nodes. The graph is read with ``ast``; nothing is imported.

Usage: python scripts/check_imports.py [PACKAGE_DIR]   (default: crk next to this script)
"""
import ast
import os
import sys


def module_names(package_dir):
    """{module name: file path} of every module under ``package_dir``."""
    root = os.path.dirname(os.path.abspath(package_dir))
    modules = {}
    for folder, _, files in os.walk(package_dir):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            parts = os.path.relpath(path, root)[:-3].split(os.sep)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def imported_modules(module, path, modules):
    """Modules of the package that ``module`` (at ``path``) imports anywhere in its code."""
    is_package = path.endswith("__init__.py")
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in modules:
                    found.add(sub)
                elif target in modules:
                    found.add(target)
    found.discard(module)
    return found


def cycles(graph):
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(result)


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    package_dir = argv[1] if len(argv) > 1 else os.path.join(here, os.pardir, "crk")
    modules = module_names(package_dir)
    graph = {m: imported_modules(m, p, modules) for m, p in modules.items()}
    found = cycles(graph)
    edges = sum(len(t) for t in graph.values())
    print(f"{len(modules)} modules, {edges} import edges (module- and function-level)")
    for component in found:
        print("cycle: " + " <-> ".join(component))
        for m in component:
            inside = sorted(t for t in graph[m] if t in component)
            print(f"  {m} imports {', '.join(inside)}")
    print(f"{len(found)} import cycle(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
