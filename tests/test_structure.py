"""The library's shape: no function or method in sinlstm_sym/ longer than 60 lines, counted from the def line
to the last line (docstring included, decorators not): ``end_lineno - lineno + 1``."""
import ast
import textwrap
from pathlib import Path
from typing import Dict

PACKAGE = Path(__file__).resolve().parents[1] / "sinlstm_sym"
MAX_LINES = 60


def function_lengths(source: str, where: str) -> Dict[str, int]:
    """``{"<where>:<Class.method or outer.inner>": lines}`` for every function in ``source``, nested ones too."""
    lengths: Dict[str, int] = {}

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert child.end_lineno is not None
                lengths[f"{where}:{prefix}{child.name}"] = child.end_lineno - child.lineno + 1
                walk(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                walk(child, f"{prefix}{child.name}.")
            else:
                walk(child, prefix)
    walk(ast.parse(source), "")
    return lengths


def package_function_lengths() -> Dict[str, int]:
    lengths: Dict[str, int] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        lengths.update(function_lengths(path.read_text(encoding="utf-8"), path.relative_to(PACKAGE.parent).as_posix()))
    return lengths


def test_the_measure_counts_methods_nested_functions_and_docstrings():
    body = "\n".join(f"        x = {i}" for i in range(58))
    source = textwrap.dedent('''\
        class Outer:
            def method(self):
                """Doc."""
        {body}

                def inner():
                    return 1
                return inner
        ''').replace("{body}", body)
    lengths = function_lengths(source, "m.py")
    assert lengths == {"m.py:Outer.method": 64, "m.py:Outer.method.inner": 2}


def test_no_library_function_is_longer_than_60_lines():
    lengths = package_function_lengths()
    assert len(lengths) > 300  # the walk saw the package
    too_long = {name: n for name, n in lengths.items() if n > MAX_LINES}
    assert not too_long, f"functions over {MAX_LINES} lines (split them): " + ", ".join(
        f"{name} ({n} lines)" for name, n in sorted(too_long.items(), key=lambda item: -item[1]))
