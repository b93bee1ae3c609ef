"""The package layout holds: no import loop anywhere (imports inside functions and TYPE_CHECKING blocks
count), every import points down the floors, and the light entry points stay light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hardware", "zoo", "methods", "sweep")

FLOORS = {
    "hardware": 0,
    "zoo": 1,
    "methods": 2,
    "sweep.plots": 3,  # a leaf: plots of curves, used by the trials and the report
    "sweep.config": 3,
    "sweep.experiment": 4,
    "sweep.tracking": 5,
    "sweep.execution": 6,  # the only floor that imports Ray
    "sweep.report": 6,  # beside execution, never importing it: reading a report loads no Ray
    "sweep.commands": 7,
    "sweep.cli": 8,  # the parser of every command
    "sweep.__main__": 9,
    "sweep": 10,  # the package itself: a docstring
}
"""Each module may import modules of lower floors and of its own sub-package only."""


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `name` imports, anywhere in the file (functions and TYPE_CHECKING included)."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `import a.b.c` of a name: the module that holds it
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports(name, path, set(mods)) for name, path in mods.items()}


def floor(module: str) -> tuple[str, int]:
    key = max((k for k in FLOORS if module == k or module.startswith(k + ".")), key=len)
    return key, FLOORS[key]


def test_the_graph_sees_the_packages() -> None:
    g = graph()
    assert {"hardware", "zoo", "methods", "sweep.config", "sweep.execution.runner", "sweep.report"} <= set(g)
    assert "sweep.config" in g["sweep.execution.runner"] and "zoo" in g["methods.train"]


def test_no_import_loop() -> None:
    g = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(g[node]):
            if state.get(nxt) == 1:
                loop = path[path.index(nxt) :] + [nxt]
                pytest.fail("import loop: " + " -> ".join(loop))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node)


def test_imports_point_down_the_floors() -> None:
    wrong = []
    for module, targets in graph().items():
        home, level = floor(module)
        for target in targets:
            target_home, target_level = floor(target)
            if target_home != home and target_level >= level:
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports that point up or sideways: " + ", ".join(sorted(wrong))


def test_packages_use_each_other_through_their_public_api() -> None:
    """Between hardware, zoo, methods and sweep only the package itself is imported (its `__init__`
    is the API), never one of its modules."""
    around = []
    for module, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                sources = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                sources = [node.module]  # `from methods import train` names the package, whatever `train` is
            else:
                continue
            for source in sources:
                top = source.split(".")[0]
                if top in PACKAGES and top != module.split(".")[0] and source != top:
                    around.append(f"{module} -> {source}")
    assert not around, "imports around a package's API: " + ", ".join(sorted(around))


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("sweep.report", "ray"),  # `sweep report` reads MLflow only
        ("sweep.tracking", "ray"),
        ("sweep.config", "ray"),
        ("zoo.models", "methods"),  # the zoo registers no training method
        ("sweep.cli", "torch"),  # `sweep --help` stays quick
    ],
)
def test_light_imports(module: str, absent: str) -> None:
    code = f"import sys, {module}; print({absent!r} in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False", f"importing {module} loads {absent}"
