"""The library's shape: no function or method in sinlstm_sym/ longer than 60 lines, counted from the def line
to the last line (docstring included, decorators not): ``end_lineno - lineno + 1``."""
import ast
import textwrap
from pathlib import Path
from typing import Dict

PACKAGE = Path(__file__).resolve().parents[2] / "sinlstm_sym"
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


# The packages from the bottom up: a module imports only from its own package and the layers below it.
LAYERS = (
    {"constants", "version"},
    {"core"},
    {"recurrence"},
    {"native"},
    {"config"},
    {"data", "distributed", "checkpoint"},
    {"model"},
    {"infer"},
    {"train"},
    {"reference", "series"},
    {"cli"},
    {"__init__", "launch"},
)
# Modules that may sit at the package root: the package's face, names and version, and the documented
# ``python -m sinlstm_sym.launch`` command.
ROOT_MODULES = {"__init__", "constants", "version", "launch"}


def _unit_imports(path: Path) -> Dict[str, int]:
    """``{imported unit: line}`` for the relative imports of one module (units: root modules and packages)."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    base = parts[:-1]
    found: Dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            within = base[:len(base) - node.level + 1]
            target = within + (node.module.split(".") if node.module else [node.names[0].name])
            found.setdefault(target[0], node.lineno)
    return found


def test_every_module_but_the_face_names_and_launch_command_sits_in_a_package():
    loose = {path.stem for path in PACKAGE.glob("*.py")} - ROOT_MODULES
    assert not loose, f"modules at the package root: {sorted(loose)}"


def test_imports_run_one_way_from_each_layer_down():
    layer_of = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}
    units = ({path.stem for path in PACKAGE.glob("*.py")}
             | {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()})
    assert units == set(layer_of), f"units without a layer or layers without a unit: {units ^ set(layer_of)}"
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = path.relative_to(PACKAGE).parts[0].split(".")[0]
        for unit, line in _unit_imports(path).items():
            if unit != own and layer_of[unit] >= layer_of[own]:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {unit}")
    assert not upward, "imports that run sideways or up: " + "; ".join(upward)
