"""Inference on windows of any length with trained parameters.

One inference ``mx.mod.Module`` is bound per asked length (``for_training=False``,
prediction symbol only), for chunks of ``batch_size`` windows, or fewer for long windows:
a chunk's activations stay within ``PREDICT_CHUNK_BYTES`` (one window of length 100000
runs in memory proportional to its length). A request whose estimated memory exceeds the
ceiling of :mod:`sinlstm_sym.limits` is refused before anything is allocated. Bound
modules are kept in an LRU cache of at most ``max_cached_lengths`` lengths, so asking
for many lengths never grows memory without bound; an evicted length is simply bound again when asked for. A lock
serialises the use of the bound modules, so one predictor may serve several threads.
"""
import logging
import threading
from collections import OrderedDict
from typing import Any, Dict, Mapping, Optional, Sequence

import mxnet as mx
import numpy as np

from ..checks import check_condition, check_int
from ..config import FitConfig, ModelConfig
from ..constants import (DATA_LAYOUT, DATA_NAME, DEFAULT_CELL, DEFAULT_FEATURE, DEFAULT_HIDDEN_SIZES,
                        DEFAULT_LABEL_MODE, DEFAULT_PREDICT_BATCH, DEFAULT_STEP, DEFAULT_WINDOW_LEVEL,
                        FUSED_LAYOUT_CELLS)
from ..context import ContextSpec, resolve_contexts
from ..data.windows import half_sine, make_windows
from ..limits import check_memory, chunk_rows, predict_bytes
from ..params import canonical_from, unpacked_shapes
from ..train.progress import Progress
from ..model.batches import BatchSpec, check_batch
from ..model.scaling import from_model_units, to_model_units
from ..model.spec import ModelSpec
from ..model.symbol import spec_sym_gen

logger = logging.getLogger(__name__)
_SPEC = BatchSpec(label_name=None)


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
        layout = self.spec.to_layout({k: params[k] for k in expected})
        self._arg_params = {k: mx.nd.array(v, ctx=self.context) for k, v in layout.items()}
        # bound for inference only (no gradients): the native operator needs no grad_req guards
        self._sym_gen = spec_sym_gen(self.spec, with_loss=False, writes_only=True)
        self._modules: "OrderedDict[int, mx.mod.Module]" = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, params: Mapping[str, np.ndarray], model: ModelConfig, ctx: ContextSpec = None,
                    **kwargs: Any) -> "Predictor":
        """A predictor for the model section of a :class:`~sinlstm_sym.config.FitConfig` (already checked)."""
        check_condition(isinstance(model, ModelConfig), f"model must be a ModelConfig, got {type(model).__name__}",
                        TypeError)
        predictor = cls.__new__(cls)
        predictor._setup(params, model, ctx, **kwargs)
        return predictor

    @classmethod
    def load(cls, directory: str, ctx: ContextSpec = None, best: bool = True, **kwargs: Any) -> "Predictor":
        """A predictor on the latest checkpoint in ``directory`` (written by ``fit(checkpoint=...)``), or on the
        ``ckpt-N`` directory given; its files are checked against the checkpoint's manifest first. The
        checkpoint's own devices play no part: ``ctx`` is where this predictor runs."""
        from ..checkpoint import RunDirectory, load_checkpoint
        best_dir = RunDirectory(directory).best_for() if best else None
        if best_dir is not None:
            logger.info("%s: loading the best checkpoint by validation, %s (best=False loads the latest)",
                        directory, best_dir)
        saved = load_checkpoint(best_dir or directory)
        try:
            model = FitConfig.from_settings(saved.config["settings"]).model
            params = canonical_from(saved.arg_params, model.cell in FUSED_LAYOUT_CELLS, model.hidden_sizes)
            kwargs.setdefault("trained_lengths", Progress.from_json(saved.config["progress"]).trained_lengths)
            return cls.from_config(params, model, ctx=ctx, **kwargs)
        except (KeyError, ValueError, TypeError) as err:
            raise ValueError(f"{saved.path}: parameters do not match the checkpoint's settings ({err})") from None

    @property
    def cached_lengths(self) -> Sequence[int]:
        """The lengths with a bound module, least recently used first."""
        return tuple(self._modules)

    def chunk_rows(self, length: int) -> int:
        """Windows per forward pass at ``length``: ``batch_size``, fewer where the chunk budget needs it."""
        return chunk_rows(length, self.hidden_sizes, self.batch_size)

    def check_request(self, num_windows: int, length: int, bytes_per_value: int = 8) -> None:
        """Refuse ``num_windows`` windows of ``length`` steps whose prediction would not fit in memory
        (a forward chunk plus ``bytes_per_value`` per window and step for the request's own arrays)."""
        needed = predict_bytes(self.chunk_rows(length), length, self.hidden_sizes, self.cell) + \
            bytes_per_value * num_windows * length
        check_memory(f"predicting {num_windows} window(s) of length {length}", needed)

    def _module(self, length: int) -> mx.mod.Module:
        if length in self._modules:
            self._modules.move_to_end(length)
            return self._modules[length]
        symbol, data_names, _ = self._sym_gen(length)
        module = mx.mod.Module(symbol, data_names=data_names, label_names=None, context=self.context)
        rows = self.chunk_rows(length)
        module.bind(data_shapes=[mx.io.DataDesc(data_names[0], (rows, length, 1), layout=DATA_LAYOUT)],
                    for_training=False)
        module.set_params(self._arg_params, {}, allow_missing=False, force_init=True)
        self._modules[length] = module
        while len(self._modules) > self.max_cached_lengths:
            self._modules.popitem(last=False)
        return module

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """Outputs for ``windows`` of shape ``(N, L)`` or ``(N, L, 1)``, any ``N >= 1`` and ``L >= 1``."""
        x = np.asarray(windows)
        check_condition(x.dtype.kind in "fiu", f"windows must be a numeric array, got dtype {x.dtype}", TypeError)
        if x.ndim == 2:
            x = x[:, :, None]
        check_condition(x.ndim == 3 and x.shape[2] == 1,
                        f"windows must have shape (N, L) or (N, L, 1), got {np.shape(windows)}")
        n, length = x.shape[0], x.shape[1]
        check_condition(n >= 1 and length >= 1, f"windows must hold at least one step of one window, got {x.shape}")
        check_condition(bool(np.isfinite(x).all()), "windows must be finite (found NaN or inf)")
        self.check_request(n, length)
        x, levels = to_model_units(x, self.scaling, self.window_level)
        with self._lock:
            out = self._predict_locked(x, n, length)
        return from_model_units(out, levels, self.scaling)

    def _predict_locked(self, x: np.ndarray, n: int, length: int) -> np.ndarray:
        module = self._module(length)
        size = self.chunk_rows(length)
        outputs = []
        for start in range(0, n, size):
            chunk = x[start:start + size].astype(np.float32)
            rows = chunk.shape[0]
            if rows < size:
                chunk = np.concatenate([chunk, np.zeros((size - rows, length, 1), np.float32)])
            data = mx.nd.array(chunk, ctx=self.context)
            batch = mx.io.DataBatch([data], bucket_key=length, provide_data=[mx.io.DataDesc(DATA_NAME, data.shape)])
            check_batch(batch, _SPEC, f"prediction batch of length {length}")
            module.forward(batch, is_train=False)
            outputs.append(module.get_outputs()[0].asnumpy()[:rows])
        out = np.concatenate(outputs)
        return out[:, 0] if self.label_mode == "last" else out

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
        Returns ``(steps,)`` or ``(N, steps)``.
        """
        check_condition(self.feature == "value", "forecast needs a model trained with feature='value' (its inputs "
                        f"are past values); this one has feature={self.feature!r}")
        steps = check_int("steps", steps, minimum=1)
        series = np.asarray(history, dtype=np.float64)
        single = series.ndim == 1
        series = series[None, :] if single else series
        check_condition(series.ndim == 2 and series.shape[1] >= 1,
                        f"history must have shape (H,) or (N, H) with H >= 1, got {np.shape(history)}")
        if window is None:
            window = max(self.trained_lengths) if self.trained_lengths else series.shape[1]
        window = check_int("window", window, minimum=1)
        out = np.empty((series.shape[0], steps))
        for i in range(steps):
            recent = series[:, -window:]
            pred = self.predict(recent)
            out[:, i] = pred if self.label_mode == "last" else pred[:, -1]
            series = np.concatenate([series, out[:, i:i + 1]], axis=1)
        return out[0] if single else out
