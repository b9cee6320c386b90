"""The layers hold: toolkit below study below the command line (docs/design.md §1).

Every module of the toolkit (``aicircle/*.py``, ``aicircle/compiler/``) is parsed with ``ast``
and every import in it, at the top or inside a function, is read; none may reach the study
(``aicircle.study``). Only the command line and the package's face may import it; the study
itself never imports the command line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "aicircle"
MAY_IMPORT_THE_STUDY = {"cli.py", "__init__.py", "__main__.py"}
TOOLKIT = sorted(p for p in PACKAGE.rglob("*.py")
                 if "study" not in p.relative_to(PACKAGE).parts and p.name not in MAY_IMPORT_THE_STUDY)
STUDY = sorted((PACKAGE / "study").rglob("*.py"))


def imported(path: Path, root: Path = PACKAGE) -> set[str]:
    """Every module ``path`` (a file of the package at ``root``) imports, as an absolute dotted name
    (relative imports resolved)."""
    package = ["aicircle", *path.relative_to(root).parent.parts]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[:len(package) - node.level + 1], *([node.module] if node.module else [])])
            # `from . import study` names the module in the alias
            names |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return names


def reaches(names: set[str], module: str) -> list[str]:
    return sorted(n for n in names if n == module or n.startswith(module + "."))


def test_the_layers_are_found():
    assert PACKAGE / "calibrate.py" in TOOLKIT and PACKAGE / "compiler" / "lowering.py" in TOOLKIT
    assert PACKAGE / "study" / "outcomes.py" in STUDY and PACKAGE / "cli.py" not in TOOLKIT


@pytest.mark.parametrize("path", TOOLKIT, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_toolkit_module_imports_the_study(path):
    assert reaches(imported(path), "aicircle.study") == []


@pytest.mark.parametrize("path", STUDY, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_study_never_imports_the_command_line(path):
    assert reaches(imported(path), "aicircle.cli") == []


def test_the_import_reader_sees_relative_imports_inside_functions(tmp_path):
    probe = tmp_path / "aicircle" / "compiler" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("def f():\n    from ..study import outcomes\n    from . import ir\n", encoding="utf-8")
    names = imported(probe, root=tmp_path / "aicircle")
    assert reaches(names, "aicircle.study") == ["aicircle.study", "aicircle.study.outcomes"]
    assert "aicircle.compiler.ir" in names
