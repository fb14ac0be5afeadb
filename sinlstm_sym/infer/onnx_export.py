"""Export a trained model as a standard ONNX file, run anywhere by onnxruntime without MXNet.

The graph is built with ``onnx.helper`` from the standard ONNX ``LSTM`` operator, one node per layer
of the stack, with dynamic batch and length axes:

- input ``windows``: ``double``, shape ``(batch, length)``, the windows exactly as
  :meth:`Predictor.predict <sinlstm_sym.infer.predictor.Predictor.predict>` takes them (time stamps for a
  ``feature='time'`` model, past values for ``feature='value'``), in the series' own units for a series
  model: its scaling ``(x - center) / scale`` is the graph's first operation (in double, as the
  Predictor computes it) and ``y * scale + center`` its last (with ``window_level='last'`` each window's
  last value takes the place of ``center``);
- output ``prediction``: ``double``, shape ``(batch, length)`` (``label_mode='sequence'``) or
  ``(batch,)`` (``'last'``), the Predictor's outputs.

The model's metadata (``onnxruntime.InferenceSession(...).get_modelmeta().custom_metadata_map``) holds
``label_mode``, ``feature``, ``hidden_sizes``, ``scaling`` (``center,scale`` or empty), ``window_level``, ``step``,
``trained_lengths`` and ``sinlstm_sym_version``. Step weights of the training loss play no part at
inference. The ``onnx`` package is needed only here (``pip install 'sinlstm-sym[onnx]'``).
"""
import logging
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Protocol, Sequence, Tuple, Union

import numpy as np

from ..core.checks import check_condition, check_int
from ..core.outputs import AtomicOutputs, check_output_file
from ..recurrence.params import layer_prefix
from ..version import __version__

logger = logging.getLogger(__name__)

INPUT_NAME = "windows"
OUTPUT_NAME = "prediction"
DEFAULT_OPSET = 17
MIN_OPSET = 14  # Squeeze and Unsqueeze take their axes as inputs from opset 13; LSTM-14 is the current LSTM
INSTALL_HINT = "pip install 'sinlstm-sym[onnx]'"
# MXNet's gates are (input, forget, cell, output), ONNX's (input, output, forget, cell): block order for ONNX.
_ONNX_GATE_ORDER = (0, 3, 1, 2)


def require_onnx() -> Any:
    """The ``onnx`` module.

    Returns
    -------
    module
        ``onnx``.

    Raises
    ------
    ImportError
        If it is not installed, naming ``pip install 'sinlstm-sym[onnx]'``.

    Examples
    --------
    >>> require_onnx().__name__  # doctest: +SKIP
    'onnx'
    """
    try:
        import onnx
    except ImportError as err:
        raise ImportError(f"exporting to ONNX needs the onnx package: {INSTALL_HINT}") from err
    return onnx


def _onnx_gates(values: np.ndarray, hidden: int) -> np.ndarray:
    """Rows (or entries) of a parameter in MXNet's gate order, reordered into ONNX's."""
    blocks = [values[k * hidden:(k + 1) * hidden] for k in range(4)]
    return np.concatenate([blocks[k] for k in _ONNX_GATE_ORDER]).astype(np.float32)


def lstm_weights(params: Mapping[str, np.ndarray], layer: int, hidden: int) -> Tuple[np.ndarray, ...]:
    """ONNX ``LSTM`` inputs ``W (1, 4h, n_in)``, ``R (1, 4h, h)``, ``B (1, 8h)`` of one layer from the canonical
    layout (:mod:`sinlstm_sym.recurrence.params`).

    Parameters
    ----------
    params : mapping of str to numpy.ndarray
        The canonical parameters (``lstm{i}_i2h_weight`` ...).
    layer : int
        The layer, from 0.
    hidden : int
        Its hidden size.

    Returns
    -------
    tuple of numpy.ndarray
        ``W``, ``R``, ``B`` in float32, gates in ONNX's order (input, output, forget, cell).

    Raises
    ------
    KeyError
        If ``params`` lacks a parameter of the layer.

    Examples
    --------
    >>> from sinlstm_sym.recurrence.params import init_params
    >>> w, r, b = lstm_weights(init_params((10, 20, 1), seed=0), 1, 20)
    >>> w.shape, r.shape, b.shape
    ((1, 80, 10), (1, 80, 20), (1, 160))
    """
    p = layer_prefix(layer)
    w = _onnx_gates(np.asarray(params[p + "i2h_weight"]), hidden)[None]
    r = _onnx_gates(np.asarray(params[p + "h2h_weight"]), hidden)[None]
    b = np.concatenate([_onnx_gates(np.asarray(params[p + "i2h_bias"]), hidden),
                        _onnx_gates(np.asarray(params[p + "h2h_bias"]), hidden)])[None]
    return w, r, b


class _Graph:
    """Nodes and constants of the graph being built, with fresh names."""

    def __init__(self, onnx: Any) -> None:
        self.onnx, self.helper, self.nodes, self.constants = onnx, onnx.helper, [], []  # type: ignore[var-annotated]

    def constant(self, name: str, value: np.ndarray) -> str:
        self.constants.append(self.onnx.numpy_helper.from_array(value, name))
        return name

    def flat_shape(self) -> str:
        """The shape ``[-1]`` for Reshape, made once when first needed."""
        if not any(c.name == "flat" for c in self.constants):
            self.constant("flat", np.array([-1], np.int64))
        return "flat"

    def node(self, op: str, inputs: Sequence[str], outputs: Sequence[str], **attrs: Any) -> str:
        self.nodes.append(self.helper.make_node(op, list(inputs), list(outputs), **attrs))
        return outputs[0]


def _scale_in(g: _Graph, scaling: Optional[Tuple[float, float]], window_level: str) -> str:
    """The windows in the model's units, float32 ``(batch, length)``; with ``window_level='last'`` each
    window's last value (``level``, ``(batch, 1)``) takes the place of the center."""
    x = INPUT_NAME
    if window_level == "last":
        ends = g.constant("level_end", np.array([np.iinfo(np.int64).max], np.int64))
        level = g.node("Slice", [x, g.constant("level_start", np.array([-1], np.int64)), ends,
                                 g.constant("level_axis", np.array([1], np.int64))], ["level"])
        x = g.node("Sub", [x, level], ["centered"])
        scale = 1.0 if scaling is None else scaling[1]
        x = g.node("Div", [x, g.constant("scale", np.array(scale, np.float64))], ["scaled"])
    elif scaling is not None:
        x = g.node("Sub", [x, g.constant("center", np.array(scaling[0], np.float64))], ["centered"])
        x = g.node("Div", [x, g.constant("scale", np.array(scaling[1], np.float64))], ["scaled"])
    return g.node("Cast", [x], ["windows_f32"], to=g.onnx.TensorProto.FLOAT)


def _stack(g: _Graph, x: str, params: Mapping[str, np.ndarray], hidden_sizes: Sequence[int],
           last: bool) -> str:
    """The LSTM nodes: ``x`` (batch, length) -> the last layer's output, (length, batch) or (batch,)."""
    x = g.node("Transpose", [x], ["steps"], perm=[1, 0])  # ONNX LSTM takes (length, batch, features)
    x = g.node("Unsqueeze", [x, g.constant("axis_2", np.array([2], np.int64))], ["steps_nc"])
    one_axis = g.constant("axis_1", np.array([1], np.int64))
    for i, hidden in enumerate(hidden_sizes):
        p = layer_prefix(i)
        w, r, b = lstm_weights(params, i, hidden)
        names = [x, g.constant(p + "W", w), g.constant(p + "R", r), g.constant(p + "B", b)]
        if last and i == len(hidden_sizes) - 1:  # Y_h (1, batch, 1): the last step's hidden state
            g.node("LSTM", names, ["", p + "Y_h"], hidden_size=hidden, name=p + "lstm")
            return g.node("Reshape", [p + "Y_h", g.flat_shape()], ["last_step"])
        y = g.node("LSTM", names, [p + "Y"], hidden_size=hidden, name=p + "lstm")  # (length, 1, batch, h)
        x = g.node("Squeeze", [y, one_axis], [p + "out"])
    return g.node("Squeeze", [x, g.constant("axis_2b", np.array([2], np.int64))], ["steps_out"])


def _scale_out(g: _Graph, y: str, scaling: Optional[Tuple[float, float]], last: bool, window_level: str) -> None:
    """The output in double (and the series' units), transposed to (batch, length) for 'sequence'."""
    if not last:
        y = g.node("Transpose", [y], ["per_window"], perm=[1, 0])
    if window_level == "last":  # a 'last' label model: y is (batch,), the level (batch, 1)
        y = g.node("Cast", [y], ["prediction_f64"], to=g.onnx.TensorProto.DOUBLE)
        y = g.node("Mul", [y, "scale"], ["rescaled"])
        g.node("Add", [y, g.node("Reshape", ["level", g.flat_shape()], ["level_flat"])], [OUTPUT_NAME])
        return
    if scaling is None:
        g.node("Cast", [y], [OUTPUT_NAME], to=g.onnx.TensorProto.DOUBLE)
        return
    y = g.node("Cast", [y], ["prediction_f64"], to=g.onnx.TensorProto.DOUBLE)
    y = g.node("Mul", [y, "scale"], ["rescaled"])
    g.node("Add", [y, "center"], [OUTPUT_NAME])


def metadata(label_mode: str, feature: str, hidden_sizes: Sequence[int], scaling: Optional[Sequence[float]],
             step: float, trained_lengths: Optional[Sequence[int]], window_level: str = "none") -> Dict[str, str]:
    """The model's metadata entries, all strings (ONNX ``metadata_props``).

    Parameters
    ----------
    label_mode, feature : str
        As :class:`~sinlstm_sym.config.ModelConfig`.
    hidden_sizes : sequence of int
        The layers' sizes.
    scaling : (float, float) or None
        A series model's ``(center, scale)``.
    step : float
        The spacing of the windows' steps.
    trained_lengths : sequence of int or None
        The window lengths the model was trained on.
    window_level : {'none', 'last'}
        Whether each window is modelled around its last value.

    Returns
    -------
    dict of str to str
        ``label_mode``, ``feature``, ``hidden_sizes`` (``'10,20,1'``), ``scaling`` (``'center,scale'`` or
        ``''``), ``window_level``, ``step``, ``trained_lengths`` (``'1,2,...'`` or ``''``),
        ``sinlstm_sym_version``.

    Raises
    ------
    TypeError
        If a value cannot be written as numbers.

    Examples
    --------
    >>> metadata("last", "value", (10, 20, 1), (2.0, 3.0), 0.01, None)["scaling"]
    '2.0,3.0'
    """
    def join(values: Optional[Sequence[Any]]) -> str:
        return "" if values is None else ",".join(repr(v) for v in values)
    return {"label_mode": label_mode, "feature": feature, "hidden_sizes": join([int(h) for h in hidden_sizes]),
            "scaling": join(None if scaling is None else [float(v) for v in scaling]), "window_level": window_level,
            "step": repr(float(step)),
            "trained_lengths": join(None if trained_lengths is None else [int(v) for v in trained_lengths]),
            "sinlstm_sym_version": __version__}


def build_onnx_model(params: Mapping[str, np.ndarray], hidden_sizes: Sequence[int], label_mode: str,
                     scaling: Optional[Sequence[float]] = None, opset: int = DEFAULT_OPSET,
                     properties: Optional[Mapping[str, str]] = None, window_level: str = "none") -> Any:
    """The ONNX model (``onnx.ModelProto``) of a stack's canonical ``params``, checked by ``onnx.checker``.

    Parameters
    ----------
    params : mapping of str to numpy.ndarray
        Canonical parameters (as ``FitResult.arg_params()``).
    hidden_sizes : sequence of int
        The layers' sizes (the last is 1).
    label_mode : {'sequence', 'last'}
        Output every step ``(batch, length)`` or the last one ``(batch,)``.
    scaling : (float, float), optional
        A series model's ``(center, scale)``, applied inside the graph.
    opset : int
        The ONNX opset, ``MIN_OPSET`` up to what the installed onnx knows.
    properties : mapping of str to str, optional
        Metadata entries (:func:`metadata`).
    window_level : {'none', 'last'}
        ``'last'`` (a ``'last'`` label model): each window is modelled around its last value,
        ``(x - x_last) / scale``, inside the graph.

    Returns
    -------
    onnx.ModelProto
        The model; save it with ``onnx.save``.

    Raises
    ------
    ImportError
        If the ``onnx`` package is not installed.
    ValueError
        If ``label_mode`` or ``opset`` is not accepted.

    Examples
    --------
    >>> from sinlstm_sym.recurrence.params import init_params
    >>> model = build_onnx_model(init_params((10, 20, 1), seed=0), (10, 20, 1), "sequence")
    >>> [node.op_type for node in model.graph.node].count("LSTM")
    3
    """
    onnx = require_onnx()
    check_condition(label_mode in ("sequence", "last"), f"label_mode must be 'sequence' or 'last', got {label_mode!r}")
    opset = _checked_opset(onnx, opset)
    last = label_mode == "last"
    scale = None if scaling is None else (float(scaling[0]), float(scaling[1]))
    g = _Graph(onnx)
    check_condition(window_level in ("none", "last") and (window_level == "none" or last), "window_level must be "
                    f"'none' or 'last' (with label_mode='last'), got {window_level!r} with label_mode={label_mode!r}")
    _scale_out(g, _stack(g, _scale_in(g, scale, window_level), params, hidden_sizes, last), scale, last,
               window_level)
    return _model(g, last, opset, properties)


def _checked_opset(onnx: Any, opset: int) -> int:
    newest = int(onnx.defs.onnx_opset_version())
    opset = check_int("opset", opset, minimum=MIN_OPSET)
    check_condition(opset <= newest, f"opset must be between {MIN_OPSET} and {newest} (the installed onnx "
                    f"{onnx.__version__}), got {opset}")
    return opset


def _model(g: _Graph, last: bool, opset: int, properties: Optional[Mapping[str, str]]) -> Any:
    """The checked model of the graph ``g``."""
    onnx = g.onnx
    tensor = onnx.helper.make_tensor_value_info
    double = onnx.TensorProto.DOUBLE
    graph = onnx.helper.make_graph(
        g.nodes, "sinlstm_sym", [tensor(INPUT_NAME, double, ["batch", "length"])],
        [tensor(OUTPUT_NAME, double, ["batch"] if last else ["batch", "length"])], g.constants)
    opsets = [onnx.helper.make_opsetid("", opset)]
    model = onnx.helper.make_model(graph, opset_imports=opsets, producer_name="sinlstm-sym",
                                   producer_version=__version__,
                                   doc_string="Stacked LSTM predictor exported by sinlstm-sym")
    model.ir_version = onnx.helper.find_min_ir_version_for(opsets)  # the oldest runtimes that know the opset
    onnx.helper.set_model_props(model, dict(properties or {}))
    onnx.checker.check_model(model, full_check=True)
    return model


class ExportableModel(Protocol):
    """What :func:`export_onnx` reads of a model: a :class:`~sinlstm_sym.infer.predictor.Predictor` has it."""

    hidden_sizes: Tuple[int, ...]
    label_mode: str
    feature: str
    scaling: Any
    step: float
    trained_lengths: Any
    window_level: str

    def canonical_params(self) -> Dict[str, np.ndarray]:
        """The parameters in the canonical (unpacked) layout."""


def export_onnx(predictor: ExportableModel, path: Union[str, Path], opset: Optional[int] = None) -> Path:
    """Write ``predictor``'s model to ``path`` as ONNX (temporary name, then renamed).

    Parameters
    ----------
    predictor : Predictor
        The model to export (any cell: the parameters are the same).
    path : str or Path
        The ``.onnx`` file.
    opset : int, optional
        The ONNX opset (default ``DEFAULT_OPSET``).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ImportError
        If the ``onnx`` package is not installed.
    ValueError
        If ``path`` is not a writable ``.onnx`` file name or ``opset`` is not accepted.
    FileNotFoundError
        If ``path``'s directory does not exist.

    Examples
    --------
    >>> from sinlstm_sym import Predictor
    >>> from sinlstm_sym.recurrence.params import init_params
    >>> export_onnx(Predictor(init_params((10, 20, 1), seed=0)), "model.onnx")  # doctest: +SKIP
    PosixPath('model.onnx')
    """
    out = check_output_file("path", path, (".onnx",))
    onnx = require_onnx()
    props = metadata(predictor.label_mode, predictor.feature, predictor.hidden_sizes, predictor.scaling,
                     predictor.step, predictor.trained_lengths, predictor.window_level)
    model = build_onnx_model(predictor.canonical_params(), predictor.hidden_sizes, predictor.label_mode,
                             predictor.scaling, DEFAULT_OPSET if opset is None else opset, props,
                             predictor.window_level)
    with AtomicOutputs() as outputs:
        onnx.save(model, str(outputs.stage(out)))
    logger.info("wrote %s (%d LSTM layers, opset %s)", out, len(predictor.hidden_sizes),
                model.opset_import[0].version)
    return out


__all__: List[str] = ["export_onnx", "build_onnx_model", "require_onnx", "lstm_weights", "metadata", "INPUT_NAME",
                      "OUTPUT_NAME", "DEFAULT_OPSET", "MIN_OPSET", "INSTALL_HINT"]
