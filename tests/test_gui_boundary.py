"""gui/ never imports torch itself: it asks engine/ for every number, and the one engine module
that holds the reference (engine/net/reference.py) is where torch is set up, threads included.

An AST scan, so an import inside a function counts as much as one at the top."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUI = ROOT / "gui"


def torch_imports(root: Path) -> list[str]:
    """"gui.training.worker line 14" for every `import torch...` or `from torch... import`
    in the .py files under `root`."""
    found = []
    for path in sorted(root.rglob("*.py")):
        module = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            if any(name == "torch" or name.startswith("torch.") for name in names):
                found.append(f"{module} line {node.lineno}")
    return found


def test_no_gui_module_imports_torch():
    found = torch_imports(GUI)
    assert found == [], ("gui/ must not import torch; ask engine/ (engine/net/reference.py) "
                         "instead: " + ", ".join(found))


def test_the_scan_finds_an_import_of_torch_anywhere(tmp_path):
    package = tmp_path / "gui" / "training"
    package.mkdir(parents=True)
    (package / "fine.py").write_text("import numpy\nfrom engine import torch_free\n")
    (package / "top.py").write_text("import os, torch.nn\n")
    (package / "late.py").write_text("def f():\n    from torch import nn\n    return nn\n")
    assert torch_imports(tmp_path / "gui") == ["gui.training.late line 2",
                                               "gui.training.top line 1"]
