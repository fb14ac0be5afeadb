"""Command-line flags made from the configuration's declarations (:meth:`FitConfig.declarations`): each
setting's help text, bounds and choices are written once, in :mod:`sinlstm_sym.config`, and a bad value
is refused with the flag named from the setting an error carries (never from its message)."""
import argparse
import json
from typing import Any, Callable, Collection, Dict, Mapping, NoReturn, Optional, Sequence

from ..core.checks import settings_of
from ..config.fit_config import FitConfig
from ..config.settings import SettingInfo
from .args import fail, float_list, int_at_least, int_list, json_dict, json_dict_or_null


def number(text: str) -> float:
    """An argparse type: a number (its range is the configuration's to check)."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


_METAVARS = {"int": "N", "float": "X", "ints": "LIST", "floats": "LIST", "json": "JSON", "json_or_null": "JSON"}


def _value_type(info: SettingInfo) -> Optional[Callable[[str], Any]]:
    if info.kind == "int":
        return int if info.minimum is None else int_at_least(int(info.minimum))
    return {"float": number, "ints": int_list, "floats": float_list, "json": json_dict,
            "json_or_null": json_dict_or_null}.get(info.kind)


def flag_of(setting: str) -> str:
    """``'num_samples'`` -> ``'--num-samples'``."""
    return "--" + setting.replace("_", "-")


def _shown(value: Any) -> Optional[str]:
    """A default as the help text shows it (``None``: not shown)."""
    if value is None or value is False:
        return None
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return ",".join(value)  # ctx: as it is typed
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(list(value) if isinstance(value, tuple) else value)
    return str(value)


def add_setting_flags(parser: argparse.ArgumentParser, names: Sequence[str], shown: Mapping[str, Any],
                      defaults: Optional[Mapping[str, Any]] = None) -> Dict[str, str]:
    """One flag per setting in ``names`` (``--num-samples`` for ``num_samples``), its type, choices and help
    from the declaration, the help ending with ``shown``'s value. ``defaults``: the flags' values when left
    out (``None``: a flag left out is absent from the parsed namespace, so the given ones can be told
    apart). Returns ``{flag: setting}``."""
    declarations = FitConfig.declarations()
    flags = {}
    for name in names:
        info = declarations[name]
        default = defaults[name] if defaults is not None else argparse.SUPPRESS
        if isinstance(default, tuple):
            default = list(default)
        text = _shown(shown.get(name))
        help_text = info.help + (f" (default {text})" if text is not None else "")
        options: Dict[str, Any] = dict(default=default, help=help_text, dest=name)
        if info.kind == "flag":
            options["action"] = "store_true"
        else:
            options.update(metavar=info.metavar or _METAVARS.get(info.kind), type=_value_type(info))
            if info.kind == "choice":
                options["choices"] = list(info.choices)
        parser.add_argument(flag_of(name), **options)
        flags[flag_of(name)] = name
    return flags


def given_settings(args: argparse.Namespace, flags: Mapping[str, str]) -> Dict[str, Any]:
    """The settings given on the command line (flags made with ``defaults=None``)."""
    return {setting: getattr(args, setting) for setting in flags.values() if hasattr(args, setting)}


def refuse_setting(parser: argparse.ArgumentParser, err: BaseException, flags: Mapping[str, str],
                   given: Collection[str] = ()) -> NoReturn:
    """A one-line error (exit 2) naming the flags of the settings ``err`` carries: those given on the command
    line, else the first one."""
    by_setting = {setting: flag for flag, setting in flags.items()}
    named = [s for s in settings_of(err) if s in by_setting]
    chosen = [s for s in named if s in given] or named[:1]
    if chosen:
        fail(parser, "/".join(by_setting[s] for s in chosen), str(err))
    parser.error(" ".join(str(err).split()))
