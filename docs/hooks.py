"""MkDocs hooks: the generated parts of the documentation site.

A page asks for a generated part with a marker on a line of its own:

- ``<!-- generated: settings -->``: every setting of ``fit`` with its default, kind, bounds, choices,
  command-line flag and help, read from the declarations in ``sinlstm_sym/config/fit_config.py`` (one table per
  section), and the settings ``FitConfig.original()`` and ``FitConfig.series()`` change;
- ``<!-- generated: cli PROGRAM -->``: ``PROGRAM --help`` as its argparse parser prints it
  (``sinlstm-train``, ``sinlstm-evaluate``, ``sinlstm-export``, ``sinlstm-series``);
- ``<!-- include: FILE -->``: a file of the checkout's top directory (``BENCHMARKS.md``, ``CHANGELOG.md``),
  its links made relative to the site.

Nothing here is typed twice: each part is made from the code when the site is built, so it cannot drift.
"""
import argparse
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^<!-- (generated|include): ([A-Za-z0-9_.\- ]+) -->$", re.MULTILINE)
HELP_COLUMNS = "100"  # argparse wraps --help to the terminal's width: the same width on every machine

with warnings.catch_warnings():  # MXNet 1.9.1 uses numpy and distutils names deprecated since: not ours to fix
    warnings.simplefilter("ignore", DeprecationWarning)
    import sinlstm_sym  # noqa: F401


def _cell(text: str) -> str:
    """Text fit for a Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _value(value: Any) -> str:
    if isinstance(value, tuple):
        value = list(value)
    return f"`{json.dumps(value) if isinstance(value, (dict, list)) else repr(value)}`"


def _bounds(info: Any) -> str:
    """The kind and bounds of a declared setting, as a reader needs them."""
    kinds = {"int": "int", "float": "number", "ints": "list of ints", "floats": "list of numbers",
             "json": "JSON object", "json_or_null": "JSON object or null", "name": "name", "path": "directory",
             "contexts": "devices", "tuple": "(center, scale)", "flag": "true/false", "choice": "one of"}
    text = kinds[info.kind]
    if info.kind == "choice":
        text += " " + ", ".join(f"`{c}`" for c in info.choices)
    if info.minimum is not None:
        text += f" {'>' if info.strict else '>='} {info.minimum:g}"
    if info.optional:
        text += ", or `None`"
    return text


def settings_reference() -> str:
    """One table per section of ``FitConfig``: setting, default, kind and bounds, flag, meaning."""
    import dataclasses

    from sinlstm_sym.cli.flags import flag_of
    from sinlstm_sym.cli.train import SETTING_FLAGS
    from sinlstm_sym.config import DataConfig, FitConfig, ModelConfig, OptimizerConfig, RunConfig
    from sinlstm_sym.config.settings import declared

    defaults = FitConfig().flat()
    out: List[str] = []
    for section, klass in (("model", ModelConfig), ("data", DataConfig), ("optimizer", OptimizerConfig),
                           ("run", RunConfig)):
        out += [f"### `{section}`: `{klass.__name__}`", "",
                "| setting | default | accepts | `sinlstm-train` flag | meaning |", "|---|---|---|---|---|"]
        fields = {f.name for f in dataclasses.fields(klass)}
        for field_name, info in declared(klass).items():
            assert field_name in fields
            flag = f"`{flag_of(info.name)}`" if info.name in SETTING_FLAGS else "-"
            out.append(f"| `{info.name}` | {_cell(_value(defaults[info.name]))} | {_cell(_bounds(info))} | {flag} | "
                       f"{_cell(info.help)} |")
        out.append("")
    out += _preset_table(FitConfig, defaults)
    return "\n".join(out)


def _preset_table(fit_config: Any, defaults: Dict[str, Any]) -> List[str]:
    """The settings in which ``FitConfig.original()`` and ``FitConfig.series()`` differ from the defaults."""
    presets = {"original": fit_config.original().flat(), "series": fit_config.series().flat()}
    changed = [k for k in defaults if any(p[k] != defaults[k] for p in presets.values())]
    out = ["### Presets", "",
           "`FitConfig.original(**changes)` is the 2018 setup, `FitConfig.series(**changes)` the recipe for real "
           "series; the settings in which they differ from the defaults:", "",
           "| setting | default | `FitConfig.original()` | `FitConfig.series()` |", "|---|---|---|---|"]
    for key in changed:
        out.append(f"| `{key}` | {_cell(_value(defaults[key]))} | {_cell(_value(presets['original'][key]))} | "
                   f"{_cell(_value(presets['series'][key]))} |")
    return out + [""]


def _parsers() -> Dict[str, Callable[[], argparse.ArgumentParser]]:
    from sinlstm_sym.cli import evaluate, export, series, train
    return {"sinlstm-train": train.build_parser, "sinlstm-evaluate": evaluate.build_parser,
            "sinlstm-series": series.build_parser, "sinlstm-export": export.build_parser}


def cli_reference(program: str) -> str:
    """``program --help``, as the program prints it, in a text block."""
    build = _parsers()[program]
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS
    try:
        text = build().format_help()
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous
    return "```text\n" + text.rstrip() + "\n```"


def included(name: str) -> str:
    """A top-level file of the checkout, its links rewritten for the site (``docs/x`` -> ``x``)."""
    text = (ROOT / name).read_text(encoding="utf-8")
    text = re.sub(r"^# .*\n", "", text, count=1)  # the page has its own title
    text = re.sub(r"\]\(docs/", "](", text)
    return re.sub(r"\]\((BENCHMARKS|CHANGELOG)\.md\)", lambda m: f"]({m.group(1).lower()}.md)", text)


def expand(markdown: str) -> str:
    """``markdown`` with every marker replaced by its part; an unknown marker is an error."""
    def part(match: "re.Match[str]") -> str:
        kind, argument = match.group(1), match.group(2).strip()
        if kind == "include":
            return included(argument)
        if argument == "settings":
            return settings_reference()
        if argument.startswith("cli "):
            return cli_reference(argument[4:].strip())
        raise ValueError(f"unknown generated part {argument!r}: settings, cli PROGRAM")
    return MARKER.sub(part, markdown)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """MkDocs hook: expand the markers of every page."""
    return expand(markdown)


SPHINX_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc):<code>(~?)([A-Za-z0-9_.]+)</code>")


def plain_roles(html: str) -> str:
    """Docstrings name objects with Sphinx roles (``:class:`~pkg.mod.Name```), which the API reference
    would show as they are: keep the name as code, as Sphinx shows it (``~``: the last part only)."""
    return SPHINX_ROLE.sub(lambda m: f"<code>{m.group(2).split('.')[-1] if m.group(1) else m.group(2)}</code>", html)


def on_page_content(html: str, **kwargs: Any) -> str:
    """MkDocs hook: the API reference's Sphinx roles as plain code."""
    return plain_roles(html)
