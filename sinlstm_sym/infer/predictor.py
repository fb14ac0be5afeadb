"""Inference on windows of any length with trained parameters.

With the native cell on a CPU, a request is one direct call of the native library's forward pass
(:mod:`sinlstm_sym.native.direct`): no MXNet engine, no executor, the outputs bit-identical to the
executors'. Otherwise (other cells, or a library without that interface: one warning) windows run through
inference executors (``for_training=False``, prediction symbol only) bound per
asked length and *row bucket* (:mod:`sinlstm_sym.infer.executors`): a request of ``n`` windows runs
in the smallest power of two of rows that holds them (at least one 16-window block for the native
cell), so one window costs one window, not a chunk of ``batch_size``. Requests larger than a chunk of
``batch_size`` windows run chunk by chunk, with fewer windows per chunk for long windows: a chunk's
activations stay within ``PREDICT_CHUNK_BYTES`` (one window of length 100000 runs in memory
proportional to its length). A request whose estimated memory exceeds the ceiling of
:mod:`sinlstm_sym.config.limits` is refused before anything is allocated. Executors are kept for at most
``max_cached_lengths`` lengths (least recently used evicted first); the executors of one length share
their intermediate memory and all of them share one copy of the parameters, so a cached length holds
less than two chunks of activations. The direct call runs the same chunks and holds the activations of one
16-window block per thread. A lock serialises the requests of one predictor, so it may serve several threads.
"""
import logging
import threading
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Union

import mxnet as mx
import numpy as np

from ..core.checks import check_condition, check_int
from ..config.fit_config import FitConfig, ModelConfig
from ..constants import (DEFAULT_CELL, DEFAULT_FEATURE, DEFAULT_HIDDEN_SIZES, DEFAULT_LABEL_MODE,
                        DEFAULT_PREDICT_BATCH, DEFAULT_STEP, DEFAULT_WINDOW_LEVEL, MAX_FORECAST_STEPS)
from ..core.context import ContextSpec, resolve_contexts
from ..data.windows import half_sine, make_windows
from ..config.limits import check_memory, chunk_rows, predict_bytes
from ..native.direct import DirectStack, load_direct
from ..recurrence.cells import NATIVE, to_canonical
from ..recurrence.params import unpacked_shapes
from ..model.scaling import from_model_units, to_model_units
from ..model.spec import ModelSpec
from .executors import ExecutorCache, request_buckets, request_passes, row_bucket

logger = logging.getLogger(__name__)
# A request estimated below this many bytes is not weighed against the memory available (reading it
# costs about 10 us, a tenth of a one-window request, and no machine lacks one MiB).
SMALL_REQUEST_BYTES = 1 << 20


class Predictor:
    """Predict with a trained stacked LSTM.

    ``params`` are in the canonical layout (as ``FitResult.arg_params()``). ``predict``
    returns per-step outputs ``(N, L)`` for ``label_mode='sequence'`` models and the last
    step ``(N,)`` for ``'last'`` models. ``scaling=(center, scale)`` (a series model): windows and
    outputs are in the series' own units; the model sees ``(x - center) / scale``, or
    ``(x - x_last) / scale`` with ``window_level='last'`` (:mod:`sinlstm_sym.model.scaling`).
    """

    def __init__(self, params: Mapping[str, np.ndarray], hidden_sizes: Sequence[int] = DEFAULT_HIDDEN_SIZES,
                 label_mode: str = DEFAULT_LABEL_MODE, feature: str = DEFAULT_FEATURE, cell: str = DEFAULT_CELL,
                 ctx: ContextSpec = None, batch_size: int = DEFAULT_PREDICT_BATCH, max_cached_lengths: int = 16,
                 step: float = DEFAULT_STEP, trained_lengths: Optional[Sequence[int]] = None,
                 scaling: Optional[Sequence[float]] = None, window_level: str = DEFAULT_WINDOW_LEVEL) -> None:
        given: Dict[str, Any] = dict(hidden_sizes=hidden_sizes, label_mode=label_mode, feature=feature, cell=cell,
                                     scaling=scaling, window_level=window_level)
        model = ModelConfig(**given)  # checks them
        self._setup(params, model, ctx, batch_size=batch_size, max_cached_lengths=max_cached_lengths, step=step,
                    trained_lengths=trained_lengths)

    def _setup(self, params: Mapping[str, np.ndarray], model: ModelConfig, ctx: ContextSpec,
               batch_size: int = DEFAULT_PREDICT_BATCH, max_cached_lengths: int = 16, step: float = DEFAULT_STEP,
               trained_lengths: Optional[Sequence[int]] = None) -> None:
        """The boundary: ``ctx`` checked against the machine, the model's spec made once for it."""
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.max_cached_lengths = check_int("max_cached_lengths", max_cached_lengths, minimum=1)
        self.step = float(step)
        self.trained_lengths = tuple(trained_lengths) if trained_lengths is not None else None
        contexts = resolve_contexts(ctx)
        check_condition(len(contexts) == 1, f"ctx for prediction must be one device, got {contexts}")
        self.context = contexts[0]
        self.spec = ModelSpec.from_model(model, contexts)  # 'native' needs a CPU context and a built operator
        self.hidden_sizes, self.label_mode, self.feature = self.spec.hidden_sizes, model.label_mode, model.feature
        self.cell, self.scaling, self.window_level = self.spec.cell, model.scaling, model.window_level
        expected = unpacked_shapes(self.hidden_sizes)
        check_condition(isinstance(params, Mapping), f"params must be a dict of arrays, got {type(params).__name__}",
                        TypeError)
        missing = sorted(set(expected) - set(params))
        check_condition(not missing, f"params lacks {missing} for hidden_sizes {list(self.hidden_sizes)}")
        for name, shape in expected.items():
            got = tuple(np.shape(params[name]))
            check_condition(got == shape, f"params[{name!r}] has shape {got}, expected {shape}")
        self._canonical = {k: np.array(params[k], dtype=np.float32) for k in expected}  # what export_onnx writes
        layout = self.spec.to_layout(self._canonical)
        self._arg_params = {k: mx.nd.array(v, ctx=self.context) for k, v in layout.items()}
        # bound for inference only (no gradients): the native operator needs no grad_req guards
        sym_gen = self.spec.sym_gen(with_loss=False, writes_only=True)
        self._executors = ExecutorCache(lambda length: sym_gen(length)[0], self._arg_params, self.context,
                                        self.max_cached_lengths)
        self._min_rows = self.spec.implementation.block_rows  # the native operator: blocks of 16 windows
        self._direct = self._direct_stack(layout)
        self._lock = threading.Lock()

    def _direct_stack(self, layout: Mapping[str, np.ndarray]) -> Optional[DirectStack]:
        """The native forward pass called directly, for the native cell on a CPU where the library offers it."""
        if self.spec.implementation is not NATIVE or not self.context.device_type.startswith("cpu"):
            return None
        library = load_direct()
        if library is None:
            return None
        vectors = [layout[name] for name in NATIVE.layout.shapes(self.hidden_sizes)]
        return DirectStack(library, vectors, self.hidden_sizes)

    @property
    def serves_directly(self) -> bool:
        """Whether each request runs as one direct call of the native library's forward pass.

        ``True`` for the native cell on a CPU where the library offers that call; ``False`` where requests run
        through MXNet's executors (the other cells, other devices, or the call unavailable, which is logged
        once as a warning). Both give the same outputs.
        """
        return self._direct is not None

    @classmethod
    def from_config(cls, params: Mapping[str, np.ndarray], model: ModelConfig, ctx: ContextSpec = None,
                    **kwargs: Any) -> "Predictor":
        """A predictor for the model section of a :class:`~sinlstm_sym.config.FitConfig` (already checked)."""
        check_condition(isinstance(model, ModelConfig), f"model must be a ModelConfig, got {type(model).__name__}",
                        TypeError)
        return cls(params, hidden_sizes=model.hidden_sizes, label_mode=model.label_mode, feature=model.feature,
                   cell=model.cell, ctx=ctx, scaling=model.scaling, window_level=model.window_level, **kwargs)

    @classmethod
    def load(cls, directory: str, ctx: ContextSpec = None, best: bool = True, **kwargs: Any) -> "Predictor":
        """A predictor on the latest checkpoint in ``directory`` (written by ``fit(checkpoint=...)``), or on the
        ``ckpt-N`` directory given; its files are checked against the checkpoint's manifest first. The
        checkpoint's own devices play no part: ``ctx`` is where this predictor runs."""
        from ..checkpoint import RunDirectory, load_checkpoint
        from ..checkpoint.schema import trained_lengths
        best_dir = RunDirectory(directory).best_for() if best else None
        if best_dir is not None:
            logger.info("%s: loading the best checkpoint by validation, %s (best=False loads the latest)",
                        directory, best_dir)
        saved = load_checkpoint(best_dir or directory)
        try:
            model = FitConfig.from_settings(saved.config["settings"]).model
            params = to_canonical(saved.arg_params, model.cell, model.hidden_sizes)
            kwargs.setdefault("trained_lengths", trained_lengths(saved.config["progress"]))
            return cls.from_config(params, model, ctx=ctx, **kwargs)
        except (KeyError, ValueError, TypeError) as err:
            raise ValueError(f"{saved.path}: parameters do not match the checkpoint's settings ({err})") from None

    def canonical_params(self) -> Dict[str, np.ndarray]:
        """A copy of the parameters in the canonical layout (float32), whatever the cell.

        Returns
        -------
        dict of str to numpy.ndarray
            ``lstm{i}_i2h_weight``, ``lstm{i}_h2h_weight``, ``lstm{i}_i2h_bias``, ``lstm{i}_h2h_bias`` per layer.

        Examples
        --------
        >>> from sinlstm_sym.recurrence.params import init_params
        >>> sorted(Predictor(init_params((10, 20, 1), seed=0)).canonical_params())[:2]
        ['lstm0_h2h_bias', 'lstm0_h2h_weight']
        """
        return {k: v.copy() for k, v in self._canonical.items()}

    @property
    def cached_lengths(self) -> Sequence[int]:
        """The lengths with bound executors, least recently used first."""
        return self._executors.lengths

    def chunk_rows(self, length: int) -> int:
        """Windows per forward pass at ``length``: ``batch_size``, fewer where the chunk budget needs it."""
        return chunk_rows(length, self.hidden_sizes, self.batch_size)

    def row_bucket(self, num_windows: int, length: int) -> int:
        """The rows of the executor that runs ``num_windows`` windows of ``length`` steps.

        Parameters
        ----------
        num_windows : int
            Windows of the request (a request beyond :meth:`chunk_rows` runs in chunks: this is its first).
        length : int
            Steps per window.

        Returns
        -------
        int
            The smallest power of two that holds them (at least 16 with the native cell, whose operator
            computes blocks of 16 windows), at most :meth:`chunk_rows`.

        Raises
        ------
        ValueError
            If ``num_windows`` is below 1.

        Examples
        --------
        >>> from sinlstm_sym.recurrence.params import init_params
        >>> Predictor(init_params((10, 20, 1), seed=0), cell="fused").row_bucket(100, 20)
        128
        """
        chunk = self.chunk_rows(length)
        return row_bucket(min(check_int("num_windows", num_windows, minimum=1), chunk), self._min_rows, chunk)

    def check_request(self, num_windows: int, length: int, bytes_per_value: int = 8) -> None:
        """Refuse ``num_windows`` windows of ``length`` steps whose prediction would not fit in memory (the
        executors of the row buckets it runs in, plus ``bytes_per_value`` per window and step for the
        request's own arrays). Requests estimated below ``SMALL_REQUEST_BYTES`` always pass."""
        buckets = request_buckets(num_windows, self._min_rows, self.chunk_rows(length))
        needed = sum(predict_bytes(rows, length, self.hidden_sizes, self.cell) for rows in buckets) + \
            bytes_per_value * num_windows * length
        if needed > SMALL_REQUEST_BYTES:
            check_memory(f"predicting {num_windows} window(s) of length {length}", needed)

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """Outputs for ``windows`` of shape ``(N, L)`` or ``(N, L, 1)``, any ``N >= 1`` and ``L >= 1``."""
        x = _checked_windows(windows)
        self.check_request(x.shape[0], x.shape[1])
        x, levels = to_model_units(x, self.scaling, self.window_level)
        with self._lock:
            out = self._predict_locked(x)
        return from_model_units(out, levels, self.scaling)

    def _predict_locked(self, x: np.ndarray) -> np.ndarray:
        """Model outputs (float32) for windows ``x`` ``(N, L)`` in model units; the lock is held."""
        n, length = x.shape
        chunk = self.chunk_rows(length)
        if n <= chunk:  # one pass: the common case, without a copy of the outputs
            out = self._run(x, length, row_bucket(n, self._min_rows, chunk))
        else:
            out = np.concatenate([self._run(x[start:start + rows], length, bucket)
                                  for start, rows, bucket in request_passes(n, self._min_rows, chunk)])
        return out[:, 0] if self.label_mode == "last" else out

    def _run(self, x: np.ndarray, length: int, bucket: int) -> np.ndarray:
        """One forward pass of ``x`` (at most ``bucket`` windows; the padding rows are zeros, and each window
        is computed on its own, so they never reach real rows) in the executor of ``bucket`` rows, or directly."""
        if self._direct is not None:
            return self._direct.forward(x, self.label_mode == "last")
        return self._executors.get(length, bucket).run(x)

    def predict_function(self, t0: np.ndarray, length: int, target=half_sine) -> np.ndarray:
        """Predict on windows built from start times ``t0`` exactly as :class:`SinBucketIter` builds them."""
        length = check_int("length", length, minimum=1)
        t0 = np.atleast_1d(np.asarray(t0, dtype=np.float64))
        self.check_request(t0.size, length, bytes_per_value=40)  # windows and labels (float64) besides the outputs
        inputs, _ = make_windows(t0, length, self.step, self.label_mode, self.feature, target)
        return self.predict(inputs)

    def forecast(self, history: np.ndarray, steps: int, window: Optional[int] = None) -> np.ndarray:
        """Roll a ``feature='value'`` model forward on its own outputs: the next ``steps`` values.

        ``history`` holds past values ``target(t)`` at spacing ``step``: shape ``(H,)`` or
        ``(N, H)``. Each step feeds the last ``window`` values (default: the longest trained
        length, else all of ``history``) and appends the model's prediction of the next one.
        Returns ``(steps,)`` or ``(N, steps)``. The steps run in one go under the lock, each one direct call
        (or through the executors of their lengths, bound once), with the values kept in the model's units.
        """
        check_condition(self.feature == "value", "forecast needs a model trained with feature='value' (its inputs "
                        f"are past values); this one has feature={self.feature!r}")
        steps = check_int("steps", steps, minimum=1)
        check_condition(steps <= MAX_FORECAST_STEPS, f"steps must be at most {MAX_FORECAST_STEPS} (one model call "
                        f"per step, each fed the previous outputs), got {steps}")
        series = np.asarray(history, dtype=np.float64)
        single = series.ndim == 1
        series = series[None, :] if single else series
        check_condition(series.ndim == 2 and series.shape[1] >= 1,
                        f"history must have shape (H,) or (N, H) with H >= 1, got {np.shape(history)}")
        check_condition(bool(np.isfinite(series).all()), "history must be finite (found NaN or inf)")
        if window is None:
            window = max(self.trained_lengths) if self.trained_lengths else series.shape[1]
        window = check_int("window", window, minimum=1)
        n, known = series.shape
        self.check_request(n, min(window, known + steps - 1))
        values = np.empty((n, known + steps))
        values[:, :known] = series if self.scaling is None else (series - self.scaling[0]) / self.scaling[1]
        with self._lock:
            for end in range(known, known + steps):
                recent = values[:, max(0, end - window):end]
                if self.window_level == "last":  # around the window's last value (a 'last' label model)
                    level = recent[:, -1]
                    values[:, end] = self._predict_locked(recent - level[:, None]) + level
                    continue
                pred = self._predict_locked(recent)
                values[:, end] = pred if self.label_mode == "last" else pred[:, -1]
        out = values[:, known:]
        if self.scaling is not None:
            out = out * self.scaling[1] + self.scaling[0]
        return out[0] if single else out

    def export_onnx(self, path: Union[str, Path], opset: Optional[int] = None) -> Path:
        """Write this model as a standard ONNX file that onnxruntime runs without MXNet.

        Parameters
        ----------
        path : str or Path
            The ``.onnx`` file to write (written to a temporary name, then renamed).
        opset : int, optional
            The ONNX opset (default :data:`~sinlstm_sym.infer.onnx_export.DEFAULT_OPSET`, at least 14).

        Returns
        -------
        Path
            ``path``.

        Raises
        ------
        ImportError
            If the ``onnx`` package is not installed (``pip install 'sinlstm-sym[onnx]'``).
        ValueError
            If ``path`` does not end with ``.onnx``, its directory does not exist, or ``opset`` is out of range.

        Examples
        --------
        >>> predictor = Predictor.load("run")  # doctest: +SKIP
        >>> predictor.export_onnx("model.onnx")  # doctest: +SKIP
        PosixPath('model.onnx')

        See :func:`~sinlstm_sym.infer.onnx_export.export_onnx` for the graph's inputs, outputs and metadata.
        """
        from .onnx_export import export_onnx
        return export_onnx(self, path, opset=opset)


def _checked_windows(windows: Any) -> np.ndarray:
    """``windows`` as a finite numeric ``(N, L)`` array with ``N, L >= 1`` (messages formatted on failure only:
    this runs on every request)."""
    x = np.asarray(windows)
    if x.dtype.kind not in "fiu":
        raise TypeError(f"windows must be a numeric array, got dtype {x.dtype}")
    if x.ndim == 3 and x.shape[2] == 1:
        x = x[:, :, 0]
    if x.ndim != 2:
        raise ValueError(f"windows must have shape (N, L) or (N, L, 1), got {np.shape(windows)}")
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"windows must hold at least one step of one window, got {np.shape(windows)}")
    if not np.isfinite(x).all():
        raise ValueError("windows must be finite (found NaN or inf)")
    return x
