"""The import boundary of engine/: never Qt, pyqtgraph or gui/; torch only where the reference is;
and the one-way order of its packages: net <- files <- check <- train <- the top level.

Each check imports engine/ in a fresh interpreter whose sys.meta_path refuses the forbidden
packages, so an import anywhere in the chain fails the test, and a small AST scan finds imports
that only run inside functions. Modules are discovered, not listed: engine/ grows as issues land.
"""

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "engine"

GUI_SIDE = ("PySide6", "shiboken6", "pyqtgraph", "gui")
# The engine modules allowed to import torch: the reference itself. A module that reads files
# written by torch.save (and so needs torch to read them) joins this set by name, with a reason.
TORCH_ALLOWED = {
    "engine.net.reference",
    # reads torch.save files, which only torch's own loader (weights_only=True) can open;
    # it imports torch inside the reading function, so .dat and text files never load it
    "engine.files.readers.binary",
}

IMPORT_UNDER_BLOCK = """
import importlib, importlib.abc, json, sys, traceback

blocked, modules = json.loads(sys.argv[1]), json.loads(sys.argv[2])

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"{name} is blocked: engine/ must not import it", name=name)
        return None

sys.meta_path.insert(0, Refuse())
failed = []
for module in modules:
    try:
        importlib.import_module(module)
    except Exception:
        failed.append(module)
        print(f"--- {module}", traceback.format_exc(), sep="\\n", file=sys.stderr)
print(json.dumps(failed))
sys.exit(1 if failed else 0)
"""


def engine_modules() -> list[str]:
    """Every module of the engine package, such as "engine.net.scratch", found on disk."""
    names = ["engine"]
    names += [info.name for info in pkgutil.walk_packages([str(ENGINE)], prefix="engine.")]
    return sorted(names)


def module_file(name: str, root: Path = ROOT) -> Path:
    path = root.joinpath(*name.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def imported_names(name: str, root: Path = ROOT) -> set[str]:
    """Absolute names of everything `name` (a module under `root`) imports, at top level or
    inside functions; `from engine.net import scratch` counts as engine.net.scratch as well as
    engine.net."""
    source = module_file(name, root)
    tree = ast.parse(source.read_text(encoding="utf-8"))
    package = name if source.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def importers_of(top_level: str) -> set[str]:
    """The engine modules whose own source imports `top_level` or anything under it."""
    return {name for name in engine_modules()
            if any(n == top_level or n.startswith(f"{top_level}.") for n in imported_names(name))}


def needing_torch() -> set[str]:
    """Modules that import torch themselves, and the engine modules that import those."""
    modules = set(engine_modules())
    needs = importers_of("torch")
    grew = True
    while grew:
        grew = False
        for name in modules - needs:
            if imported_names(name) & needs:
                needs.add(name)
                grew = True
    return needs


def import_with_blocked(blocked: tuple[str, ...],
                        modules: list[str]) -> subprocess.CompletedProcess[str]:
    """Import `modules` in a fresh interpreter that refuses every package named in `blocked`;
    stdout is the JSON list of those that failed, stderr their tracebacks."""
    return subprocess.run(
        [sys.executable, "-c", IMPORT_UNDER_BLOCK, json.dumps(blocked), json.dumps(modules)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )


def test_engine_imports_without_qt_pyqtgraph_or_gui():
    result = import_with_blocked(GUI_SIDE, engine_modules())
    assert result.returncode == 0, (f"engine/ must not import {', '.join(GUI_SIDE)}; failed: "
                                    f"{result.stdout}\n{result.stderr}")


@pytest.mark.parametrize("top_level", GUI_SIDE)
def test_no_engine_module_imports_gui_side_even_lazily(top_level):
    assert importers_of(top_level) == set()


def test_only_the_allowlist_imports_torch():
    importers = importers_of("torch")
    assert "engine.net.reference" in importers, "the scan must see the reference's own torch import"
    assert importers <= TORCH_ALLOWED, (
        f"{sorted(importers - TORCH_ALLOWED)} import torch; only the reference may "
        f"({sorted(TORCH_ALLOWED)}). Keep numpy code numpy-only, or add a torch-file reader to "
        "TORCH_ALLOWED with its reason."
    )


def test_engine_without_torch():
    needs = needing_torch()
    assert "engine.net.scratch" not in needs, "the scratch engine must run on numpy alone"
    numpy_only = [name for name in engine_modules() if name not in needs]
    result = import_with_blocked(("torch", *GUI_SIDE), numpy_only)
    assert result.returncode == 0, (f"these engine modules need torch without importing it "
                                    f"directly: {result.stdout}\n{result.stderr}")


def test_the_block_catches_a_forbidden_import():
    result = import_with_blocked(("torch",), ["engine.net.reference"])
    assert result.returncode == 1
    assert json.loads(result.stdout) == ["engine.net.reference"]
    assert "torch is blocked" in result.stderr


# engine's packages in their import order: each may import those before it, never those after;
# the modules at engine's top level (session, autosave, export, budget) may import any package,
# and engine.errors is imported by all.
ORDER = ("net", "files", "check", "train")
SHARED = {"engine", "engine.errors"}


def package_of(name: str) -> str:
    """"net" for engine.net.scratch, "top" for engine.session or engine.errors."""
    parts = name.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in ORDER) else "top"


def wrong_way_imports(root: Path = ROOT) -> list[str]:
    """Every import inside engine/ under `root` that runs against ORDER, as
    "engine.net.scratch imports engine.check.mistakes"."""
    found = []
    for path in sorted((root / "engine").rglob("*.py")):
        relative = path.relative_to(root).with_suffix("")
        parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
        name = ".".join(parts)
        source = package_of(name)
        if source == "top":
            continue
        allowed = {*ORDER[:ORDER.index(source) + 1]}
        for imported in sorted(imported_names(name, root)):
            # modules only: `from engine.net.spec import NetworkSpec` names engine.net.spec
            if (not imported.startswith("engine.") or imported in SHARED
                    or not module_file(imported, root).exists()):
                continue
            target = package_of(imported)
            if target not in allowed:
                found.append(f"{name} imports {imported}")
    return found


def test_engine_packages_import_one_way():
    assert wrong_way_imports() == [], (
        "engine's packages import one way, net <- files <- check <- train <- top level; "
        "these run the other way:\n" + "\n".join(wrong_way_imports()))


def test_every_package_says_its_role_and_what_it_may_import():
    for package in ORDER:
        doc = ast.get_docstring(ast.parse((ENGINE / package / "__init__.py").read_text()))
        assert doc and "Imports:" in doc, f"engine/{package}/__init__.py must say its role"


@pytest.mark.parametrize(("module", "line", "expected"), [
    ("net/spec.py", "from engine.check.compare import compare_arrays",
     "engine.net.spec imports engine.check.compare"),
    ("files/gradset.py", "from engine.train import lockstep",
     "engine.files.gradset imports engine.train.lockstep"),
    ("check/align.py", "from engine.session import Session",
     "engine.check.align imports engine.session"),
    ("train/history.py", "from engine import export",
     "engine.train.history imports engine.export"),
])
def test_a_wrong_way_import_is_found(tmp_path, module, line, expected):
    import shutil
    shutil.copytree(ENGINE, tmp_path / "engine",
                    ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "engine" / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n\ndef late():\n    {line}\n",
                      encoding="utf-8")
    found = wrong_way_imports(tmp_path)
    assert expected in found
