"""Imports point down the layers, and no modules import each other in a circle.

Every ``.py`` file under ``src/ganforge`` is parsed with :mod:`ast`, and every import in it is found,
wherever it stands: at the top, inside a function, under ``if TYPE_CHECKING:`` (an import inside a
function is still an import). The forms understood are ``import ganforge.x``, ``from ganforge.x import y``,
``from . import x``, ``from ..x import y`` and ``importlib.import_module("ganforge.x")``. Each is resolved to
one module of the package (one file; a package is its ``__init__.py``): ``from .x import y`` is the module
``x`` when ``y`` is a name defined in it and the module ``x.y`` when ``x/y.py`` (or ``x/y/``) exists. The
parent packages that Python imports on the way are not counted as imported.

The rules:

1. Layers. Every top-level module or package of ``ganforge`` has a place in :data:`LAYERS` (an unknown one
   fails, saying to add it there), and a module may import modules of its own layer and lower ones only.
   Layer 0 is ordered within itself (version < errors < registry < io < config < checkpoint).
2. No cycles between modules (Tarjan's strongly connected components over the import graph), with one
   exemption: a package's ``__init__.py`` importing its own direct submodules, the registration pattern
   (``tasks/__init__.py`` defines ``Task`` and imports ``gan`` at its bottom; ``gan.py`` imports ``Task``
   from the package). Those edges are left out of the cycle search; they are still under rule 1, and the
   submodules' imports of their package are not exempt. Whether such an ``__init__`` defines what its
   submodules need before importing them is not checked here: if not, importing the package fails at once.
3. Spelled out although rule 1 covers it: nothing under models, data, metrics, tasks or train imports the
   public API (``ganforge.api``, or the package face ``ganforge`` that re-exports it).

The checker is tried first on a small fake package with a known upward import and a known cycle, so these
tests cannot pass by finding nothing.
"""

from __future__ import annotations

import ast
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "ganforge"

# Top-level modules and packages of ganforge, lowest layer first: a module may import its own layer and the
# layers below it. Layer 0 is ordered (0.0 < 0.1 < ...). A new module or package needs one line here.
LAYERS: dict[str, tuple[int, ...]] = {
    "version": (0, 0),  # imports nothing
    "errors": (0, 1),
    "registry": (0, 2),
    "io": (0, 3),
    "config": (0, 4),
    "checkpoint": (0, 5),
    "threads": (0, 6),
    "models": (1,),
    "losses": (2,),
    "augment": (2,),  # differentiable augmentation of what D sees (DiffAugment, ADA's p)
    "style": (2,),  # Gram matrix, style losses and feature networks (fast-style's task uses them)
    "data": (3,),
    "viz": (4,),
    "metrics": (5,),
    "pipelines": (6,),
    "tasks": (7,),
    "families": (7, 5),  # one description per model family, and the list of them all
    "train": (8,),
    "latent": (9,),  # a module or a package
    "translation": (9,),
    "export": (9,),
    "style_transfer": (9,),  # ganforge.stylize: the Gatys optimisation and its record
    "doctor": (9, 4),  # ganforge doctor: findings over a run's metrics and samples (training watches with it)
    "training": (9, 5),  # ganforge.train / resume / plan_resume
    "toy_runs": (9, 6),  # ganforge toy's runs and side-by-side comparisons
    "api": (10,),
    "cli": (11,),
    "cli_latent": (11,),
    "cli_eval": (11,),
    "cli_translate": (11,),
    "cli_export": (11,),
    "cli_studio": (11,),
    "cli_style": (11,),
    "cli_toy": (11,),
    "cli_doctor": (11,),
    "studio": (11,),
    "__main__": (11,),
    "__init__": (11,),  # ganforge/__init__.py: the package face, which re-exports the API
}

NO_API = ("models", "data", "metrics", "tasks", "train")  # rule 3: these never import the public API
API = ("api", "__init__")  # ganforge.api, and ganforge itself (it re-exports the API)


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module name, e.g. "ganforge.data.paired"
    target: str  # the imported module, e.g. "ganforge.data.derived"
    line: int


@dataclass
class Report:
    """What :func:`check` found, each as readable lines."""

    unknown: list[str] = field(default_factory=list)  # modules without a layer
    unresolved: list[str] = field(default_factory=list)  # imports of modules that do not exist
    upward: list[str] = field(default_factory=list)  # imports from a lower layer to a higher one
    cycles: list[str] = field(default_factory=list)
    api: list[str] = field(default_factory=list)  # rule 3


def find_modules(root: Path, package: str) -> dict[str, Path]:
    """Every module of the package in ``root``: dotted name -> file (a package -> its ``__init__.py``)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join([package, *parts])] = path
    return found


def _top(module: str) -> str:
    """The top-level name a module's layer is looked up by ("__init__" for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _named_modules(node: ast.AST, module: str, path: Path, package: str) -> list[str]:
    """The dotted names one import statement (or import_module call) names, before resolution."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name == package or a.name.startswith(package + ".")]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
            if node.level - 1 >= len(here):  # above the package: no module of it, reported by _resolve
                source = "." * node.level + (node.module or "")
            else:
                base = ".".join(here[:len(here) - (node.level - 1)])
                source = f"{base}.{node.module}" if node.module else base
        elif node.module and (node.module == package or node.module.startswith(package + ".")):
            source = node.module
        else:
            return []
        return [f"{source}.{a.name}" for a in node.names] + [source]  # sorted out by _resolve
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        value = node.args[0].value
        if name in ("import_module", "__import__") and isinstance(value, str) and (
                value == package or value.startswith(package + ".")):
            return [value]
    return []


def _resolve(node: ast.AST, named: list[str], modules: dict[str, Path]) -> tuple[list[str], list[str]]:
    """(modules imported, names that are no module) for what ``_named_modules`` gave."""
    if not isinstance(node, ast.ImportFrom):
        return [n for n in named if n in modules], [n for n in named if n not in modules]
    *members, source = named
    submodules = [m for m in members if m in modules]
    plain = len(submodules) < len(members)  # some names are attributes of the source module
    if plain and source not in modules:
        return submodules, [source]
    return submodules + ([source] if plain else []), []


def find_imports(root: Path, package: str) -> tuple[dict[str, Path], list[Import], list[str]]:
    """(modules, every import between them, every import of a module of ``package`` that does not exist)."""
    modules = find_modules(root, package)
    imports, missing = [], []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            named = _named_modules(node, module, path, package)
            if not named:
                continue
            targets, unknown = _resolve(node, named, modules)
            imports += [Import(module, t, node.lineno) for t in dict.fromkeys(targets) if t != module]
            missing += [f"{path}:{node.lineno}: {module} imports {n}, which is no module of {package}"
                        for n in unknown]
    imports.sort(key=lambda i: (i.importer, i.line, i.target))  # ast.walk goes breadth first
    return modules, imports, missing


def _exempt(edge: Import, modules: dict[str, Path]) -> bool:
    """A package's __init__ importing one of its own direct submodules (the registration pattern)."""
    return modules[edge.importer].name == "__init__.py" and edge.target.rpartition(".")[0] == edge.importer


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the strongly connected components of ``graph`` with more than one node."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _one_cycle(start: str, graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest path start -> ... -> start inside ``component`` (breadth first), as a list of nodes."""
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(graph[v] & component):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if w not in came_from:
                    came_from[w] = v
                    following.append(w)
        frontier = following
    raise AssertionError(f"{start} is in a strongly connected component but on no cycle")


def _layer(top: str, layers: dict[str, tuple[int, ...]]) -> str:
    name = "the package itself (__init__.py)" if top == "__init__" else top
    return f"{name} is layer {'.'.join(str(n) for n in layers[top])}"


def check(root: Path, package: str, layers: dict[str, tuple[int, ...]], shown_from: Path) -> Report:
    """Apply the three rules of the module docstring to the package in ``root``."""
    modules, imports, missing = find_imports(root, package)
    report = Report(unresolved=missing)

    def where(module: str, line: int | None = None) -> str:
        shown = os.path.relpath(modules[module], shown_from)
        return f"{shown}:{line}" if line is not None else shown

    for top in sorted({_top(m) for m in modules} - set(layers)):
        first = min(m for m in modules if _top(m) == top)
        report.unknown.append(f"{where(first)}: the top-level module {top!r} has no layer; add a line "
                              f"\"{top}\": (N,), to LAYERS in tests/test_layers.py")
    for edge in imports:
        low, high = _top(edge.importer), _top(edge.target)
        if low not in layers or high not in layers:
            continue
        text = f"{where(edge.importer, edge.line)}: {edge.importer} imports {edge.target}"
        if layers[low] < layers[high]:
            report.upward.append(f"{text}, but {_layer(low, layers)} and {_layer(high, layers)}: a module may "
                                 f"import only its own layer and lower ones")
        if low in NO_API and high in API:
            what = "the public API" if high == "api" else "the package face, which re-exports the public API"
            report.api.append(f"{text} ({what}): {low} must work without ganforge.api; move what it needs "
                              f"down to {low} or below, or let the API pass it in")

    graph: dict[str, set[str]] = defaultdict(set)
    lines: dict[tuple[str, str], list[int]] = defaultdict(list)
    for edge in imports:
        if not _exempt(edge, modules):
            graph[edge.importer].add(edge.target)
            lines[edge.importer, edge.target].append(edge.line)
    for component in strongly_connected(graph):
        cycle = _one_cycle(component[0], graph, set(component))
        steps = [f"{where(a)}:{','.join(str(n) for n in sorted(lines[a, b]))} imports {b}"
                 for a, b in zip(cycle, cycle[1:], strict=False)]
        others = f" (the cycle's component also holds {', '.join(sorted(set(component) - set(cycle)))})" \
            if len(set(component) - set(cycle)) else ""
        report.cycles.append("import cycle: " + " -> ".join(steps) + others)
    return report


def _fail_unless_empty(found: list[str], what: str) -> None:
    assert not found, f"{len(found)} {what}:\n  " + "\n  ".join(found)


# ---------------------------------------------------------------------------------------------- the checker


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_the_checker_finds_an_upward_import_a_cycle_and_an_unknown_module(tmp_path):
    _write(tmp_path / "fake", {
        "__init__.py": "from .api import run\n",
        "errors.py": "class FakeError(Exception):\n    pass\n",
        "registry.py": "from .errors import FakeError\n",
        "config.py": "def load():\n    from .checkpoint import read  # upward within layer 0\n",
        "checkpoint.py": "from .errors import FakeError\n",
        "api.py": "from .tasks import Task\n\ndef run():\n    pass\n",
        "models/__init__.py": "",
        "models/a.py": "from .b import helper\n",
        "models/b.py": "import fake.models\n\ndef helper():\n    from . import a  # a cycle through a function\n",
        "data/__init__.py": "from ..errors import FakeError\n\n\ndef load():\n    from ..api import run\n",
        "tasks/__init__.py": "class Task:\n    pass\n\n\nfrom . import gan  # registration, not a cycle\n",
        "tasks/gan.py": "from . import Task\nfrom ..models.a import helper\n",
        "mystery.py": "import os\n",
    })
    layers = {"errors": (0, 0), "registry": (0, 1), "config": (0, 2), "checkpoint": (0, 3), "models": (1,),
              "data": (3,), "tasks": (7,), "api": (10,), "__init__": (11,)}
    report = check(tmp_path / "fake", "fake", layers, tmp_path)

    assert report.unknown == ["fake/mystery.py: the top-level module 'mystery' has no layer; add a line "
                              "\"mystery\": (N,), to LAYERS in tests/test_layers.py"]
    assert report.unresolved == []
    assert sorted(report.upward) == [
        "fake/config.py:2: fake.config imports fake.checkpoint, but config is layer 0.2 and checkpoint is "
        "layer 0.3: a module may import only its own layer and lower ones",
        "fake/data/__init__.py:5: fake.data imports fake.api, but data is layer 3 and api is layer 10: a module "
        "may import only its own layer and lower ones",
    ]
    assert report.cycles == ["import cycle: fake/models/a.py:1 imports fake.models.b -> fake/models/b.py:4 imports "
                             "fake.models.a"]
    assert report.api == ["fake/data/__init__.py:5: fake.data imports fake.api (the public API): data must work "
                          "without ganforge.api; move what it needs down to data or below, or let the API pass it in"]


def test_the_checker_resolves_every_form_of_import(tmp_path):
    _write(tmp_path / "fake", {
        "__init__.py": "",
        "errors.py": "",
        "io.py": "X = 1\n",
        "models/__init__.py": "",
        "models/unet.py": "",
        "data/__init__.py": "",
        "data/sub/__init__.py": "",
        "data/sub/deep.py": (
            "import importlib\n"
            "import fake.models.unet as unet\n"
            "from fake import errors\n"
            "from ... import io\n"
            "from ...io import X\n"
            "from .. import sub\n"
            "from . import deep2\n"
            "from ...nowhere import thing\n"
            "from .... import above\n"
            "if True:\n"
            "    importlib.import_module('fake.models')\n"
        ),
        "data/sub/deep2.py": "",
    })
    modules, imports, missing = find_imports(tmp_path / "fake", "fake")
    assert [(i.line, i.target) for i in imports if i.importer == "fake.data.sub.deep"] == [
        (2, "fake.models.unet"), (3, "fake.errors"), (4, "fake.io"), (5, "fake.io"), (6, "fake.data.sub"),
        (7, "fake.data.sub.deep2"), (11, "fake.models"),
    ]
    deep = modules["fake.data.sub.deep"]
    assert missing == [f"{deep}:8: fake.data.sub.deep imports fake.nowhere, which is no module of fake",
                       f"{deep}:9: fake.data.sub.deep imports ...., which is no module of fake"]


# ---------------------------------------------------------------------------------------------- ganforge


def _ganforge() -> Report:
    return check(SRC, "ganforge", LAYERS, REPO)


def test_every_module_has_a_layer_and_every_import_a_module():
    report = _ganforge()
    _fail_unless_empty(report.unknown, "top-level modules without a layer")
    _fail_unless_empty(report.unresolved, "imports of modules that do not exist")


def test_imports_point_down_the_layers():
    _fail_unless_empty(_ganforge().upward, "imports from a lower layer to a higher one")


def test_no_import_cycles():
    _fail_unless_empty(_ganforge().cycles, "import cycles")


def test_models_data_metrics_tasks_and_train_never_import_the_api():
    _fail_unless_empty(_ganforge().api, "imports of the public API from below it")
