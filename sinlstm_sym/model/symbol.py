"""``sym_gen`` for ``BucketingModule``: a stacked LSTM unrolled to the bucket's length.

The symbol is a pure function of the bucket key and always has the same parameter
names and shapes (see :mod:`sinlstm_sym.recurrence.params`), so every bucket shares one set. Every
parameter variable carries its own initializer (:class:`~sinlstm_sym.recurrence.params.StackInit`),
so ``module.init_params(<any MXNet initializer>)`` gives the library's seeded weights.

The only output is the prediction, ``pred_output``: ``(B, L)`` (every step) or ``(B, 1)``
(last step). With a loss it comes from ``LinearRegressionOutput``, whose gradient is
``(pred - label) / num_outputs_per_window``: the gradient of the per-window L2 loss
``0.5 * mean_over_steps((pred - label)^2)`` (as ``gluon.loss.L2Loss``). So MXNet's own
``mod.fit(..., eval_metric='mse')`` works, and reports twice that loss.

:func:`make_sym_gen` is the public, checked way in; a checked and resolved
:class:`~sinlstm_sym.model.spec.ModelSpec` builds the same with :meth:`~sinlstm_sym.model.spec.ModelSpec.sym_gen`,
each cell's part coming from :mod:`sinlstm_sym.model.cells`.
"""
from typing import Any, Dict, Sequence

from ..config.fit_config import ModelConfig
from ..constants import (DATA_NAME, DEFAULT_CELL, DEFAULT_FORGET_BIAS, DEFAULT_HIDDEN_SIZES, DEFAULT_INIT,
                        DEFAULT_LABEL_MODE, DEFAULT_STEP_TAU, LABEL_NAME)
from ..core.checks import check_bool, check_int
from .graph import SpecSymGen, SymGen, SymGenResult
from .spec import ModelSpec

__all__ = ["make_sym_gen", "SymGen", "SymGenResult", "SpecSymGen"]


def make_sym_gen(hidden_sizes: Sequence[int] = DEFAULT_HIDDEN_SIZES, label_mode: str = DEFAULT_LABEL_MODE,
                 cell: str = DEFAULT_CELL, with_loss: bool = True, data_name: str = DATA_NAME,
                 label_name: str = LABEL_NAME, init_seed: int = 0,
                 forget_bias: float = DEFAULT_FORGET_BIAS, step_weight: float = 0.0,
                 step_tau: float = DEFAULT_STEP_TAU, init: str = DEFAULT_INIT) -> SymGen:
    """Return ``sym_gen(bucket_key) -> (symbol, data_names, label_names)`` for ``BucketingModule``.

    The only output is the prediction, ``pred_output`` (``LinearRegressionOutput``: the L2 loss's
    gradient); every bucket shares one parameter set, each with its own initializer.

    Parameters
    ----------
    hidden_sizes : sequence of int, default (10, 20, 1)
        One LSTM layer per entry; the last layer's hidden state is the prediction, so the last
        size must be 1.
    label_mode : {'sequence', 'last'}
        ``'sequence'``: a label at every step, output ``(B, L)``; ``'last'``: output ``(B, 1)``.
    cell : {'auto', 'native', 'fused', 'unrolled'}
        ``'unrolled'``: ``mx.rnn.LSTMCell`` per step; ``'fused'``: one ``mx.sym.RNN`` per layer;
        ``'native'``: one C++ operator for the stack; ``'auto'``: native where it loads, else fused.
    with_loss : bool, default True
        ``False`` builds the inference symbol (no label input).
    data_name, label_name : str
        Names of the data and label inputs.
    init_seed : int, default 0
        Seed of the initial weights.
    forget_bias : float, default 0.0
        Initial forget-gate bias.
    step_weight : float, default 0.0
        With ``'sequence'``, step ``k``'s loss weighs ``1 + step_weight * exp(-(k - 1) / step_tau)``;
        0 (``fit``'s is 4) keeps the plain L2 gradient that MXNet's ``'mse'`` metric expects.
    step_tau : float, default 1.0
        How many steps the extra weight lasts.
    init : {'library', 'gluon'}
        Xavier per gate block, or Gluon's default ``U[-0.07, 0.07]``.

    Returns
    -------
    callable
        ``sym_gen(bucket_key)`` returning ``(symbol, (data_name,), (label_name,))``, by default
        ``('data',)`` and ``('label',)``, for any int key >= 1.

    Raises
    ------
    ValueError, TypeError
        An argument out of range or of the wrong kind, naming it.

    Examples
    --------
    >>> from sinlstm_sym import make_sym_gen
    >>> sym, data_names, label_names = make_sym_gen(cell="fused")(5)
    >>> sym.list_outputs(), data_names
    (['pred_output'], ('data',))
    """
    given: Dict[str, Any] = dict(hidden_sizes=hidden_sizes, label_mode=label_mode, cell=cell,
                                 forget_bias=forget_bias, step_weight=step_weight, step_tau=step_tau, init=init)
    model = ModelConfig(**given)  # checks them (and normalises hidden_sizes to a tuple)
    return ModelSpec.from_model(model).sym_gen(with_loss=check_bool("with_loss", with_loss), data_name=data_name,
                                               label_name=label_name,
                                               init_seed=check_int("init_seed", init_seed, minimum=0))
