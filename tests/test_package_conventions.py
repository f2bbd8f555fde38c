"""Conventions of the package that reviews would otherwise have to catch: every public function,
class and method has a docstring, and no function is longer than 60 lines."""
import ast
from pathlib import Path

from conftest import ROOT

SOURCES = sorted((ROOT / "course_utils").rglob("*.py"))
MAX_LINES = 60


def _walk(tree):
    """(qualified name, node) of every function and class, nested ones included."""
    stack = [("", n) for n in tree.body]
    while stack:
        prefix, node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield prefix + node.name, node
            stack += [(prefix + node.name + ".", n) for n in node.body]


def public_names(tree):
    """(name, node) of the module's public functions and classes, and of their classes' public methods."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            yield node.name, node
            if isinstance(node, ast.ClassDef):
                yield from ((f"{node.name}.{m.name}", m) for m in node.body
                            if isinstance(m, ast.FunctionDef) and not m.name.startswith("_"))


def test_public_names_have_docstrings():
    missing = [f"{Path(path).relative_to(ROOT)}:{node.lineno} {name}" for path in SOURCES
               for name, node in public_names(ast.parse(path.read_text(encoding="utf-8")))
               if ast.get_docstring(node) is None]
    assert not missing, "public names without a docstring:\n" + "\n".join(missing)


def test_no_function_is_longer_than_60_lines():
    long = [f"{Path(path).relative_to(ROOT)}:{node.lineno} {name} ({node.end_lineno - node.lineno + 1} lines)"
            for path in SOURCES for name, node in _walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_LINES]
    assert not long, "functions over 60 lines (split them into named steps):\n" + "\n".join(long)
