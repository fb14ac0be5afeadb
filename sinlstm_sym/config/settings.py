"""Declared settings: each field of the configuration carries its help text, kind, bounds and choices in
one place (:func:`setting`); the configuration checks the simple kinds from it (:func:`check_declared`) and
the command lines generate their flags from it (:mod:`sinlstm_sym.cli.flags`)."""
import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

from ..core.checks import check_bool, check_choice, check_float, check_int, naming

# Kinds checked here from the declaration; the others ('ints', 'floats', 'json', 'json_or_null', 'name',
# 'path', 'contexts', 'tuple') are checked by their section, under the setting's name.
_CHECKERS: Dict[str, Callable[["SettingInfo", Any], Any]] = {
    "int": lambda info, value: check_int(info.name, value, minimum=None if info.minimum is None else int(info.minimum)),
    "float": lambda info, value: check_float(info.name, value, minimum=info.minimum, strict_minimum=info.strict,
                                             maximum=info.maximum, float32=True),
    "choice": lambda info, value: check_choice(info.name, value, info.choices),
    "flag": lambda info, value: check_bool(info.name, value),
}
KINDS = tuple(_CHECKERS) + ("ints", "floats", "json", "json_or_null", "name", "path", "contexts", "tuple")


@dataclass(frozen=True)
class SettingInfo:
    """What the configuration declares about one setting (``name``: its flat ``fit`` keyword)."""

    name: str
    help: str
    kind: str
    minimum: Optional[float] = None
    strict: bool = False  # minimum excluded
    maximum: Optional[float] = None  # included
    choices: Tuple[str, ...] = ()
    metavar: Optional[str] = None
    optional: bool = False  # None is accepted (it means 'off' or 'drawn')
    flag: bool = True  # offered on the command line


def setting(default: Any = dataclasses.MISSING, *, help: str, kind: str, factory: Optional[Callable[[], Any]] = None,
            minimum: Optional[float] = None, strict: bool = False, maximum: Optional[float] = None,
            choices: Union[Sequence[str], Callable[[], Sequence[str]]] = (), metavar: Optional[str] = None,
            name: Optional[str] = None, flag: bool = True) -> Any:
    """A dataclass field with its declaration (``name``: the flat keyword when it differs from the field's).
    A ``'float'`` setting reaches MXNet: besides its bounds it must be 0 or a normal float32 number. ``choices``
    may be a function returning them (read whenever the declaration is, e.g. the cells declared so far)."""
    assert kind in KINDS, kind  # a programming error in a declaration, not a user's
    metadata = {"setting": dict(help=help, kind=kind, minimum=minimum, strict=strict, maximum=maximum,
                                choices=choices if callable(choices) else tuple(choices),
                                metavar=metavar, name=name, flag=flag)}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def declared(section: type) -> Dict[str, SettingInfo]:
    """A section's declared settings by field name."""
    infos = {}
    for f in dataclasses.fields(section):
        meta = dict(f.metadata.get("setting", {}))
        if not meta:
            continue
        optional = f.default is None
        if callable(meta["choices"]):
            meta["choices"] = tuple(meta["choices"]())
        infos[f.name] = SettingInfo(name=meta.pop("name") or f.name, optional=optional, **meta)
    return infos


def check_declared(obj: Any, set_field: Callable[[Any, str, Any], None]) -> None:
    """Check every field of ``obj`` of a simple kind against its declaration, naming the setting on failure,
    and store the normalised value with ``set_field``."""
    for field_name, info in declared(type(obj)).items():
        value = getattr(obj, field_name)
        if info.kind in _CHECKERS and not (info.optional and value is None):
            with naming(info.name):
                set_field(obj, field_name, _CHECKERS[info.kind](info, value))
