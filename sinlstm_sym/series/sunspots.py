"""The demo's public real series: yearly sunspot numbers 1700-2008 as bundled with statsmodels
(``pip install 'sinlstm-sym[data]'``), written as a CSV with columns YEAR and SUNACTIVITY."""
from pathlib import Path
from typing import Union

from ..core.outputs import AtomicOutputs, check_output_file


def write_sunspots_csv(path: Union[str, Path]) -> Path:
    """Write statsmodels' yearly sunspots data to ``path`` (atomically); return ``path``."""
    out = check_output_file("path", path, (".csv",))
    try:
        from statsmodels.datasets import sunspots
    except ImportError as err:
        raise ImportError("the sunspots data come with statsmodels: pip install 'sinlstm-sym[data]' "
                          "(or pip install statsmodels)") from err
    frame = sunspots.load_pandas().data
    lines = ["YEAR,SUNACTIVITY"] + [f"{int(y)},{v:g}" for y, v in zip(frame["YEAR"], frame["SUNACTIVITY"])]
    with AtomicOutputs() as outputs:
        outputs.stage(out).write_text("\n".join(lines) + "\n")
    return out
