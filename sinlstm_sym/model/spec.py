"""``ModelSpec``: the model as the layers below the public boundary see it, checked and resolved once.

A :class:`~sinlstm_sym.config.ModelConfig` is what a user asks for (checked when it is made, its ``cell``
left as asked, e.g. ``'auto'``); a ``ModelSpec`` is that model for the devices it runs on: the cell resolved
(:func:`~sinlstm_sym.model.cells.resolve_cell`). ``fit`` and the :class:`~sinlstm_sym.infer.predictor.Predictor`
make one at their boundary; its methods (the symbol, the initializer, the layout conversions) take it as it
is and check nothing again.
"""
import functools
from dataclasses import dataclass, replace
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import mxnet as mx
import numpy as np

from ..config.fit_config import ModelConfig
from ..constants import DATA_NAME, LABEL_NAME, PRED_NAME
from ..core.checks import check_bool, check_condition, check_name
from ..recurrence.cells import Cell, cell_named
from ..recurrence.params import ParamDict, StackInit
from .batches import check_key
from .cells import builder_of, resolve_cell
from .graph import SpecSymGen, SymGenResult, weigh_steps


@dataclass(frozen=True)
class ModelSpec:
    """A checked model with its cell resolved (``cell``: the name of a declared cell, never ``'auto'``)."""

    hidden_sizes: Tuple[int, ...]
    cell: str
    label_mode: str
    feature: str
    scaling: Optional[Tuple[float, float]]
    step_weight: float
    step_tau: float
    forget_bias: float
    init: str

    @classmethod
    def from_model(cls, model: ModelConfig, contexts: Optional[Sequence[mx.Context]] = None) -> "ModelSpec":
        """The spec of ``model`` on ``contexts`` (default: the current context); the only place a cell is
        resolved, which may build the native operator once per process."""
        check_condition(isinstance(model, ModelConfig), f"model must be a ModelConfig, got {type(model).__name__}",
                        TypeError)
        return cls(hidden_sizes=model.hidden_sizes, cell=resolve_cell(model.cell, contexts),
                   label_mode=model.label_mode, feature=model.feature, scaling=model.scaling,
                   step_weight=model.step_weight, step_tau=model.step_tau, forget_bias=model.forget_bias,
                   init=model.init)

    @property
    def implementation(self) -> Cell:
        """The declaration of the resolved cell (layout, step weights, guards, memory, block rows)."""
        return cell_named(self.cell)

    def initializer(self, seed: int) -> StackInit:
        """The MXNet initializer of this model's parameters drawn from ``seed``."""
        return StackInit(self.hidden_sizes, seed, self.cell, self.forget_bias, self.init)

    def to_layout(self, params: Mapping[str, np.ndarray]) -> ParamDict:
        """Canonical-layout ``params`` in this cell's layout."""
        return self.implementation.layout.from_canonical(params, self.hidden_sizes)

    def to_canonical(self, params: Mapping[str, np.ndarray]) -> ParamDict:
        """``params`` of this cell's layout in the canonical layout."""
        return self.implementation.layout.to_canonical(params, self.hidden_sizes)

    @property
    def weighs_steps(self) -> bool:
        """Whether the loss weighs steps (``step_weight`` > 0 and a label at every step)."""
        return bool(self.step_weight) and self.label_mode == "sequence"

    def sym_gen(self, with_loss: bool = True, data_name: str = DATA_NAME, label_name: str = LABEL_NAME,
                init_seed: int = 0, writes_only: bool = False) -> SpecSymGen:
        """``sym_gen(bucket_key) -> (symbol, data_names, label_names)`` of this model (what
        :func:`~sinlstm_sym.model.symbol.make_sym_gen` returns, for a spec already checked and resolved): the
        returned ``sym_gen`` only builds symbols (no check but the bucket key's, no cell resolution, no build).

        Parameters
        ----------
        with_loss : bool, default True
            ``False`` builds the inference symbol (no label input).
        data_name, label_name : str
            Names of the data and label inputs (they must differ).
        init_seed : int, default 0
            Seed of the initial weights each parameter variable carries.
        writes_only : bool, default False
            For modules bound with grad_req 'write' (as ``fit`` binds): a cell with grad_req guards (the
            native one) without them (7 fewer copies per batch); its symbols honour grad_req 'write' and 'null'
            only, and :class:`~sinlstm_sym.model.bucketing.SafeBucketingModule` refuses any other before
            binding. The default keeps every grad_req honoured.

        Returns
        -------
        SpecSymGen
            The ``sym_gen``; its ``checkpoint_sym_gen`` builds the symbols a checkpoint stores (``None``: its own).

        Raises
        ------
        ValueError, TypeError
            A name that is not an identifier, equal names, or a flag that is not a bool.
        """
        data_name, label_name = check_name("data_name", data_name), check_name("label_name", label_name)
        check_condition(data_name != label_name, f"data_name and label_name must differ, both are {data_name!r}")
        check_bool("with_loss", with_loss)
        builder, cell = builder_of(self.cell), self.implementation
        weigh = self.weighs_steps and with_loss
        options: Dict[str, Any] = dict(weighted=weigh and cell.applies_step_weights,
                                       writes_only=check_bool("writes_only", writes_only) and cell.grad_req_guards)
        weigh = weigh and not cell.applies_step_weights
        predict = functools.partial(builder.build, **options)  # the cell chosen once
        # MXNet's own operators with the same parameters: what a module's save_checkpoint writes
        portable = (replace(self, cell=builder.checkpoint_cell).sym_gen(
            with_loss=with_loss, data_name=data_name, label_name=label_name, init_seed=init_seed)
            if builder.checkpoint_cell is not None else None)
        return SpecSymGen(functools.partial(self._symbol, predict, self.initializer(init_seed), with_loss, weigh,
                                            data_name, label_name), portable)

    def _symbol(self, predict: Any, initializer: StackInit, with_loss: bool, weigh: bool, data_name: str,
                label_name: str, bucket_key: int) -> SymGenResult:
        """The symbol of one bucket (see :meth:`sym_gen`)."""
        length = check_key(bucket_key, "sym_gen")
        pred = predict(self, data_name, length, initializer)
        if not with_loss:
            return mx.sym.identity(pred, name=PRED_NAME), (data_name,), None
        if weigh:
            pred = weigh_steps(pred, length, self.step_weight, self.step_tau)
        head = mx.sym.LinearRegressionOutput(data=pred, label=mx.sym.var(label_name), name=PRED_NAME)
        return head, (data_name,), (label_name,)


__all__ = ["ModelSpec"]
