"""The extension's shape, read with ``ast`` (no bpy): no import circle, modules by role, one protocol."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "avitalk_blender"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set:
    """The extension's own modules that ``path`` imports anywhere (inside functions too)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".") if package else []
            base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                child = f"{target}.{alias.name}" if target else alias.name
                found.add(child if (PACKAGE / Path(*child.split("."))).with_suffix(".py").exists()
                          or (PACKAGE / Path(*child.split("."))).is_dir() else target)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("avitalk_blender."):
                    found.add(alias.name.removeprefix("avitalk_blender."))
    return {m for m in found if m != name}


def _graph() -> dict:
    return {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def test_no_import_circle_counting_imports_inside_functions():
    graph = _graph()
    # the package itself ("") is __init__: registration, imported only by the entry scripts (bench, demo)
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_modules_by_role_and_the_old_names_are_gone():
    names = {p.stem for p in PACKAGE.glob("*.py")}
    assert {"ops_head", "ops_generate", "ops_takes", "ops_backend", "panels", "properties", "preferences"} <= names
    assert not names & {"operators", "workflow", "workflow_ops", "runner"}
    assert not (PACKAGE / "core" / "batch.py").exists()


def test_core_is_bpy_free():
    for path in (PACKAGE / "core").glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
                     and not n.level}
        assert not imported & {"bpy", "aud", "mathutils", "torch"}, path.name


def test_init_registers_only():
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert functions == {"register", "unregister"}
    assert not any(isinstance(n, ast.ClassDef) for n in tree.body)


def test_the_client_takes_the_protocol_from_the_backend():
    core = PACKAGE / "core"
    assert "protocol = backend_ref.protocol()" in (core / "client.py").read_text()
    assert "protocol = backend_ref.protocol()" in (core / "job.py").read_text()
    session = (core / "session.py").read_text()
    assert "import BackendConfig, BackendError, BackendProcess, protocol" in session
    for path in core.glob("*.py"):
        assert "PROTOCOL = " not in path.read_text(), path.name
    for literal in ('"ready"', '"result"', '"progress"', '"error"', '"cancel"', '"lip_seal"', '"stage1"'):
        assert literal not in session, literal
