"""The package tree is the architecture: four rooms, imports in one direction, no circles, small modules,
and nothing after the search loads Ray."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "search"
# Imports flow one way: a module may import its own layer and the layers after it, never one before it.
LAYERS = ["search.cli", "search.api", "search.winner", "search.engines", "search.rundir", "search.experiment",
          "search.errors"]
LAYER_OF = {"search.migration": "search.api", "search._lazy": "search.errors"}
MAX_LINES = 350


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


MODULES = _modules()


def _layer(module: str) -> int:
    name = LAYER_OF.get(module) or next(prefix for prefix in LAYERS if module == prefix or
                                        module.startswith(prefix + "."))
    return LAYERS.index(name)


class _Imports(ast.NodeVisitor):
    """Every import a module makes, at module level or inside functions, but not under ``if TYPE_CHECKING``."""

    def __init__(self):
        self.found: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        if isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.found.update(alias.name for alias in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:  # `from search.engines import recorder` imports a module
            name = f"{node.module}.{alias.name}"
            self.found.add(name if name in MODULES else node.module)


def _imports(path: Path) -> set[str]:
    visitor = _Imports()
    visitor.visit(ast.parse(path.read_text()))
    return visitor.found


def _graph() -> dict[str, set[str]]:
    """Module -> the search modules it imports (the top package, a facade of lazy names, is left out)."""
    return {name: {m for m in _imports(path) if m in MODULES and m != "search"}
            for name, path in MODULES.items() if name != "search"}


def test_the_package_has_the_four_rooms_and_the_command():
    rooms = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert rooms == {"cli", "experiment", "engines", "rundir", "winner"}  # cli: the command's parser and handlers


def test_imports_flow_one_way():
    wrong = [f"{module} imports {target}" for module, targets in _graph().items() for target in targets
             if _layer(target) < _layer(module)]
    assert not wrong, wrong


def test_no_import_circle():
    graph, state, circles = _graph(), {}, []

    def visit(module, path):
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                circles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not circles, circles


@pytest.mark.parametrize("room", ["search.experiment", "search.rundir"])
def test_what_the_user_asked_for_and_what_a_run_leaves_use_no_engine_and_no_keras(room):
    heavy = ("ray", "optuna", "keras", "keras_tuner", "tensorflow")
    used = {f"{name}: {m}" for name, path in MODULES.items() if name.startswith(room)
            for m in _imports(path) if m.split(".")[0] in heavy}
    assert not used, used


def test_no_module_is_over_the_size_limit():
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_the_search_driver_never_imports_tensorflow():
    """`run` and `resume` start Ray without waiting for TensorFlow: only the trial workers import it."""
    probe = ("import sys\n"
             "import search.cli, search.api, search.engines.ray_tune, search.engines.trainable, search.engines.recorder\n"
             "from search.experiment.config import load_experiment\n"
             "from search.experiment.prepared import prepare\n"
             "prepare(load_experiment('configs/glyphs.yaml'))\n"
             "print(sorted(m for m in ('keras', 'tensorflow') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-1] == "[]"


def test_nothing_after_the_search_imports_ray():
    """What `export`, `evaluate`, `predict`, `finetune`, `report`, `results`, `migrate` and `dashboard` need loads
    no Ray; retraining, imported next in the same process, does (so the probe sees Ray where it is used)."""
    probe = ("import sys\n"
             "import search.cli, search.api, search.migration, search.winner.exporting, search.winner.using\n"
             "import search.winner.report, search.rundir.records, search.rundir.leaderboard, search.rundir.render\n"
             "import search.winner.dashboard\n"
             "print('ray' in sys.modules)\n"
             "import search.winner.retraining\n"
             "print('ray' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["False", "True"]
