"""The shape of the house, read from the code with ``ast``: data flows one way and nothing climbs back up.

Imports inside functions count: a circle held together by a late import is still a circle.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OFFLINE = ("backend.corpus", "backend.train", "backend.evaluate")  # data making, training, evaluation
RUNTIME = (
    "backend.pipeline", "backend.serve", "backend.stage1", "backend.stage2", "backend.refine", "backend.speech",
    "backend.language", "backend.head", "backend.flame", "backend.audio", "backend.motion", "backend.phones",
    "backend.emotions", "backend.errors", "backend.protocol", "backend.checkpoint", "backend.device", "backend.retarget", "backend.options", "backend.files",
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in the file, as absolute names (``from . import x`` gives ``pkg.x``)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            if node.module:
                found.add(target)
            for alias in node.names:  # ``from pkg import x``: the module pkg.x, else a name of pkg itself
                sub = f"{target}.{alias.name}"
                is_module = (ROOT / sub.replace(".", "/")).with_suffix(".py").is_file() or (ROOT / sub.replace(".", "/")).is_dir()
                found.add(sub if is_module else target)
    return found


def modules(folder: str) -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in sorted((ROOT / folder).rglob("*.py"))}


def under(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_runtime_imports_nothing_offline():
    offenders = {m: sorted(i for i in imps if under(i, OFFLINE))
                 for m, imps in modules("backend").items() if under(m, RUNTIME)}
    assert {m: i for m, i in offenders.items() if i} == {}


def test_backend_imports_nothing_from_blender():
    offenders = {m: sorted(i for i in imps if under(i, ("avitalk_blender",)))
                 for m, imps in modules("backend").items()}
    assert {m: i for m, i in offenders.items() if i} == {}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Circles among the graph's own modules (an edge to a package's ``__init__`` counts when named)."""
    edges = {m: sorted(i for i in imps if i in graph and i != m) for m, imps in graph.items()}
    found, state, stack = [], {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in edges[m]:
            if state.get(n) == "open":
                found.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = "done"

    for m in sorted(edges):
        if m not in state:
            visit(m)
    return found


@pytest.mark.parametrize("folder", ["avitalk_blender", "backend"])
def test_no_import_circles(folder):
    assert cycles(modules(folder)) == []


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
