"""Search for the training recipe that reaches the accuracy goal of issue 9 fastest.

Goal: on fresh windows (t0 ~ U[0, 1), 3000 per length, per-step labels, feature='time')
the max abs error at every step of every length 1..20 is <= 0.003 (moonshot 0.001),
with training taking <= 20 s on 2 CPU cores.

Every configuration is a named :class:`Recipe`; ``--list`` prints them. A run trains
with its own small loop (an ``mx.mod.BucketingModule`` on a variant of the library's
fused ``sym_gen`` with optional input scaling and per-step loss weights, fed by the
library's ``SinBucketIter``) so that knobs ``fit`` does not expose (forget-gate bias,
per-step loss weights, input scaling, the t0 range of training windows) can be
measured. ``--check`` trains the plain default recipe both through ``sinlstm_sym.fit``
and through this loop and shows they give the same numbers (same weights, same
error table), and that this script's evaluation equals
``sinlstm_sym.infer.evaluation.per_length_error``.

The winning recipe is ``final`` (``best`` with Adam beta2 0.9); ``best_*`` are ``best``
with one choice changed, ``stage1`` and
``abl_*`` the earlier stage (see docs/recipe-research.md for every figure and command).

Examples:
    python bench/recipe_search.py --list
    python bench/recipe_search.py --config baseline,best --seeds 0,1,2 --json runs.jsonl
    python bench/recipe_search.py --config "best:lr=0.05:warmup=200"   # field overrides
    python bench/recipe_search.py --config best --eval-every 250       # error curve vs updates
    python bench/recipe_search.py --profile --config baseline,best     # step-1 error per t0 bin
    python bench/recipe_search.py --seed-table --config best           # the original's table beside ours
    python bench/recipe_search.py --summarize runs.jsonl               # markdown table per recipe
    python bench/recipe_search.py --check

Timing: ``train_s`` is the wall time of the training loop only (first batch to the
last update, synchronised); binding, initialisation and evaluation are excluded. It
is also printed with the 1-minute load average at the start and the end of the run
(the box is shared, so compare configurations run side by side). Evaluation windows:
3000 per length 1..20 from ``default_rng(12345)``, drawn as ``per_length_error`` draws them.
"""
import argparse
import dataclasses
import json
import logging
import math
import statistics
import time
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple

import mxnet as mx
import numpy as np

from sinlstm_sym import SinBucketIter
from sinlstm_sym.constants import NOTE_STEPS
from sinlstm_sym.data.windows import half_sine, make_windows
from sinlstm_sym.recurrence.params import init_params, layer_prefix
from sinlstm_sym.recurrence.cells import to_canonical, to_layout

HIDDEN = (10, 20, 1)
EVAL_LENGTHS = tuple(range(1, 21))
EVAL_SAMPLES = 3000
EVAL_SEED = 12345  # windows never drawn by SinBucketIter's SeedSequence-based generators
GOAL, MOONSHOT = 0.003, 0.001


@dataclass(frozen=True)
class Recipe:
    """One training configuration. ``updates = num_epoch * (num_samples // batch_size)``."""

    name: str
    buckets: Tuple[int, ...] = tuple(range(1, 10))
    length_weights: Optional[Tuple[float, ...]] = None
    batch_size: int = 300
    num_samples: int = 300000  # windows per epoch
    num_epoch: int = 1
    lr: float = 1e-3  # peak learning rate
    schedule: str = "const"  # const | cosine | factor | multifactor | poly
    warmup: int = 0  # updates of linear warm-up from warmup_begin_lr
    warmup_begin_lr: float = 0.0
    final_lr: float = 0.0  # cosine / poly
    factor: float = 0.5  # factor / multifactor
    factor_step: int = 1000  # FactorScheduler step (updates)
    milestones: Tuple[float, ...] = (0.5, 0.75)  # MultiFactorScheduler steps as fractions of all updates
    clip: Optional[float] = None  # clip_gradient
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    forget_bias: float = 1.0
    step_weight: float = 0.0  # per-step loss weight w_k = 1 + step_weight * exp(-(k - 1) / step_tau)
    step_tau: float = 1.0
    loss_norm: str = "mean"  # mean: loss per window averaged over its steps (library); sum: summed over steps
    scale: Tuple[float, float] = (1.0, 0.0)  # the network sees a * t + b
    t_low: float = 0.0  # t0 range of the training windows (evaluation always uses [0, 1))
    t_high: float = 1.0
    note: str = ""

    @property
    def updates(self) -> int:
        return self.num_epoch * (self.num_samples // self.batch_size)

    def uses_fit_only_knobs(self) -> bool:
        """True when ``sinlstm_sym.fit`` (today) could run this recipe unchanged."""
        d = Recipe(self.name)
        return (self.forget_bias == d.forget_bias and self.step_weight == 0.0 and self.loss_norm == "mean"
                and self.scale == d.scale and (self.t_low, self.t_high) == (0.0, 1.0))


# ---------------------------------------------------------------------------------------------
# symbol: the library's fused stack + input scaling + per-step loss weights
# ---------------------------------------------------------------------------------------------
def _zero_state(like: mx.sym.Symbol, size: int) -> mx.sym.Symbol:
    return mx.sym.broadcast_axis(mx.sym.zeros_like(like), axis=2, size=size)


def step_weights(recipe: Recipe, length: int) -> np.ndarray:
    k = np.arange(length, dtype=np.float64)
    return 1.0 + recipe.step_weight * np.exp(-k / recipe.step_tau)


def make_sym_gen(recipe: Recipe, with_loss: bool = True):
    """``sym_gen(L)`` with the library's parameter names (``lstm{i}_parameters``)."""
    a, b = recipe.scale

    def sym_gen(length: int):
        data = mx.sym.var("data")
        x = mx.sym.swapaxes(data, dim1=0, dim2=1)  # TNC
        if (a, b) != (1.0, 0.0):
            x = x * a + b
        first = mx.sym.slice_axis(x, axis=0, begin=0, end=1)
        for i, h in enumerate(HIDDEN):
            p = layer_prefix(i)
            x = mx.sym.RNN(data=x, parameters=mx.sym.var(p + "parameters"), state=_zero_state(first, h),
                           state_cell=_zero_state(first, h), state_size=h, num_layers=1, mode="lstm",
                           name=p + "rnn")
        pred = mx.sym.reshape(mx.sym.swapaxes(x, dim1=0, dim2=1), shape=(0, -1))  # (B, L)
        if not with_loss:
            return mx.sym.identity(pred, name="pred"), ("data",), None
        label = mx.sym.var("label")
        sq = mx.sym.square(pred - label)
        if recipe.step_weight:
            k = mx.sym.arange(start=0, stop=length, dtype="float32")  # a constant: no extra argument
            w = 1.0 + recipe.step_weight * mx.sym.exp(k * (-1.0 / recipe.step_tau))
            sq = mx.sym.broadcast_mul(sq, mx.sym.reshape(w, shape=(1, length)))
        reduce = mx.sym.sum if recipe.loss_norm == "sum" else mx.sym.mean
        loss = mx.sym.MakeLoss(0.5 * reduce(sq, axis=1), name="loss")
        return mx.sym.Group([loss, mx.sym.BlockGrad(pred, name="pred")]), ("data",), ("label",)

    return sym_gen


# ---------------------------------------------------------------------------------------------
# optimizer
# ---------------------------------------------------------------------------------------------
def make_scheduler(r: Recipe) -> Optional[mx.lr_scheduler.LRScheduler]:
    """The ``mx.lr_scheduler`` of ``r`` (counts updates); ``None`` for a constant lr without warm-up."""
    warm = dict(warmup_steps=r.warmup, warmup_begin_lr=r.warmup_begin_lr)
    if r.schedule == "const":
        if not r.warmup:
            return None
        return mx.lr_scheduler.FactorScheduler(step=max(1, r.updates), factor=1.0, base_lr=r.lr, **warm)
    if r.schedule == "cosine":
        return mx.lr_scheduler.CosineScheduler(max_update=r.updates, base_lr=r.lr, final_lr=r.final_lr, **warm)
    if r.schedule == "poly":
        return mx.lr_scheduler.PolyScheduler(max_update=r.updates, base_lr=r.lr, final_lr=r.final_lr, pwr=2,
                                             **warm)
    if r.schedule == "factor":
        return mx.lr_scheduler.FactorScheduler(step=r.factor_step, factor=r.factor, base_lr=r.lr, **warm)
    if r.schedule == "multifactor":
        steps = [int(f * r.updates) for f in r.milestones]
        return mx.lr_scheduler.MultiFactorScheduler(step=steps, factor=r.factor, base_lr=r.lr, **warm)
    raise ValueError(f"schedule must be const, cosine, poly, factor or multifactor, got {r.schedule!r}")


def optimizer_params(r: Recipe) -> Dict[str, Any]:
    """``optimizer_params`` for ``fit`` / ``mx.optimizer.create('adam', ...)`` (without rescale_grad).

    ``learning_rate`` must equal the scheduler's ``base_lr``: ``Adam`` always passes its
    ``learning_rate`` (default 0.001) to ``Optimizer``, which overwrites the scheduler's
    ``base_lr`` with it (printing a warning). Factor/MultiFactor schedulers then run
    from 0.001; Cosine keeps its own start (``base_lr_orig``) after the first update.
    """
    params: Dict[str, Any] = dict(learning_rate=r.lr, beta1=r.beta1, beta2=r.beta2, epsilon=r.epsilon)
    sched = make_scheduler(r)
    if sched is not None:
        params["lr_scheduler"] = sched
    if r.clip is not None:
        params["clip_gradient"] = r.clip
    return params


# ---------------------------------------------------------------------------------------------
# training and evaluation
# ---------------------------------------------------------------------------------------------
def _loadavg() -> float:
    with open("/proc/loadavg") as handle:
        return float(handle.read().split()[0])


def train(r: Recipe, seed: int, eval_every: int = 0, eval_samples: int = EVAL_SAMPLES) -> Dict[str, Any]:
    """Train ``r`` with ``seed``; return parameters (canonical layout), timings and optional error curve."""
    it = SinBucketIter(r.buckets, batch_size=r.batch_size, num_samples=r.num_samples,
                       length_weights=r.length_weights, label_mode="sequence", feature="time",
                       t_low=r.t_low, t_high=r.t_high, seed=seed)
    sym_gen = make_sym_gen(r)
    module = mx.mod.BucketingModule(sym_gen, default_bucket_key=it.default_bucket_key, context=mx.cpu())
    module.bind(data_shapes=it.provide_data, label_shapes=it.provide_label, for_training=True)
    params = {k: mx.nd.array(v) for k, v in to_layout(init_params(HIDDEN, seed, forget_bias=r.forget_bias),
                                                      "fused", HIDDEN).items()}
    aux: Dict[str, mx.nd.NDArray] = {}
    module.init_params(arg_params=params, aux_params=aux, allow_missing=False, force_init=True)
    opt = mx.optimizer.create("adam", rescale_grad=1.0 / r.batch_size, **optimizer_params(r))
    module.init_optimizer(kvstore="local", optimizer=opt)
    curve: List[Tuple[int, float, float]] = []  # (updates, train seconds, max abs error over 1..20)
    pending: List[mx.nd.NDArray] = []
    losses: List[float] = []
    done, train_s = 0, 0.0
    load0, cpu0 = _loadavg(), time.process_time()
    tic = time.perf_counter()
    for epoch in range(r.num_epoch):
        it.set_epoch(epoch)
        for batch in it:
            module.forward(batch, is_train=True)
            module.backward()
            module.update()
            pending.append(module.get_outputs()[0].mean())
            done += 1
            if eval_every and done % eval_every == 0:
                mx.nd.waitall()
                train_s += time.perf_counter() - tic
                err = max(row["max_abs_error"] for row in evaluate(r, canonical_params(module), eval_samples))
                curve.append((done, train_s, err))
                tic = time.perf_counter()
        if pending:
            losses.append(float(mx.nd.concat(*pending, dim=0).asnumpy().mean()))
            pending = []
    mx.nd.waitall()
    train_s += time.perf_counter() - tic
    cpu_s = time.process_time() - cpu0
    if not all(math.isfinite(x) for x in losses):
        raise FloatingPointError(f"{r.name} seed {seed}: loss became non-finite {losses}")
    return dict(params=canonical_params(module), train_s=train_s, cpu_s=cpu_s, load_start=load0,
                load_end=_loadavg(), updates=done, windows=done * r.batch_size, epoch_losses=losses, curve=curve)


def canonical_params(module: mx.mod.BucketingModule) -> Dict[str, np.ndarray]:
    args, _ = module.get_params()
    fused = {layer_prefix(i) + "parameters": args[layer_prefix(i) + "parameters"].asnumpy()
             for i in range(len(HIDDEN))}
    return to_canonical(fused, "fused", HIDDEN)


def evaluate(r: Recipe, params: Dict[str, np.ndarray], num_samples: int = EVAL_SAMPLES,
             seed: int = EVAL_SEED, lengths: Sequence[int] = EVAL_LENGTHS) -> List[Dict[str, Any]]:
    """Per length: max abs error and per-step max abs error; windows drawn as ``per_length_error`` draws them."""
    sym_gen = make_sym_gen(r, with_loss=False)
    fused = {k: mx.nd.array(v) for k, v in to_layout(params, "fused", HIDDEN).items()}
    rng = np.random.default_rng(seed)
    rows = []
    for length in lengths:
        t0 = rng.uniform(0.0, 1.0, size=num_samples)
        inputs, labels = make_windows(t0, length, 0.01, "sequence", "time", half_sine)
        sym, _, _ = sym_gen(length)
        mod = mx.mod.Module(sym, data_names=("data",), label_names=None, context=mx.cpu())
        mod.bind(data_shapes=[mx.io.DataDesc("data", (num_samples, length, 1), layout="NTC")], for_training=False)
        mod.set_params(fused, {}, allow_missing=False, force_init=True)
        mod.forward(mx.io.DataBatch([mx.nd.array(inputs.astype(np.float32))]), is_train=False)
        err = np.abs(mod.get_outputs()[0].asnumpy() - labels)
        worst = np.unravel_index(int(np.argmax(err)), err.shape)
        rows.append(dict(length=length, trained=length in r.buckets, max_abs_error=float(err.max()),
                         mse=float(np.mean(err ** 2)), per_step=err.max(axis=0).tolist(),
                         worst_step=int(worst[1]) + 1, worst_t0=float(t0[worst[0]])))
    return rows


# ---------------------------------------------------------------------------------------------
# the recipes
# ---------------------------------------------------------------------------------------------
def _recipes() -> Dict[str, Recipe]:
    R: List[Recipe] = []
    base = Recipe("baseline", note="today's fit defaults: buckets 1..9, Adam lr 1e-3, 1000 updates")
    R += [base, replace(base, name="lr1e-2_e3", lr=1e-2, num_epoch=3, note="issue probe"),
          replace(base, name="lr1e-2_e8", lr=1e-2, num_epoch=8, note="issue probe")]
    win = Recipe("stage1", buckets=tuple(range(1, 10)) + (12, 16, 20), num_epoch=4, lr=0.03, schedule="cosine",
                 step_weight=2.0, step_tau=1.0, t_low=-0.1, t_high=1.12,
                 note="cosine 3e-2, buckets 1..9+12+16+20, t0~U[-0.1,1.12), step weights 1+2exp(-(k-1))")
    R.append(win)
    A20 = tuple(range(1, 21))
    ablations = {  # stage1 with one choice changed
        "abl_t0_01": dict(t_low=0.0, t_high=1.0),
        "abl_tlow_only": dict(t_high=1.0),
        "abl_no_stepw": dict(step_weight=0.0),
        "abl_stepw4": dict(step_weight=4.0),
        "abl_stepw2_tau3": dict(step_tau=3.0),
        "abl_b1-9": dict(buckets=tuple(range(1, 10))),
        "abl_b1-20": dict(buckets=A20, num_epoch=3),
        "abl_const1e-2": dict(schedule="const", lr=0.01),
        "abl_const3e-2": dict(schedule="const"),
        "abl_cos1e-2": dict(lr=0.01),
        "abl_cos5e-2": dict(lr=0.05),
        "abl_warmup200": dict(warmup=200),
        "abl_mf": dict(schedule="multifactor", milestones=(0.5, 0.75), factor=0.2),
        "abl_poly": dict(schedule="poly"),
        "abl_fb0": dict(forget_bias=0.0),
        "abl_fb2": dict(forget_bias=2.0),
        "abl_scale2m1": dict(scale=(2.0, -1.0)),
        "abl_clip0.05": dict(clip=0.05),
        "abl_bs150": dict(batch_size=150, num_samples=150000, num_epoch=8),
        "abl_bs600": dict(batch_size=600, num_samples=600000, num_epoch=4),
        "abl_beta2_0.99": dict(beta2=0.99),
        "abl_lossnorm_sum": dict(loss_norm="sum"),
        "abl_e3": dict(num_epoch=3),
        "abl_e2": dict(num_epoch=2),
        "abl_e6": dict(num_epoch=6),
        "abl_e8": dict(num_epoch=8),
    }
    R += [replace(win, name=name, note=repr(change), **change) for name, change in ablations.items()]
    combo = replace(win, name="r2", beta2=0.99, forget_bias=0.0, step_weight=4.0,
                    note="stage1 + beta2 0.99 + forget bias 0 + step weight 4")
    R += [combo, replace(combo, name="r2_wu200", warmup=200), replace(combo, name="r2_e3", num_epoch=3),
          replace(combo, name="r2_e6", num_epoch=6), replace(combo, name="r2_e2", num_epoch=2),
          replace(combo, name="r2_e1", num_epoch=1), replace(combo, name="r2_1500", num_samples=450000, num_epoch=1),
          replace(combo, name="r2_1500_wu75", num_samples=450000, num_epoch=1, warmup=75),
          replace(combo, name="r2_e1_wu50", num_epoch=1, warmup=50),
          replace(combo, name="r2_e3_wu200", num_epoch=3, warmup=200)]
    final = replace(combo, name="recipe", num_epoch=2, warmup=100,
                    note="THE RECIPE: r2, 2 epochs of 300000 (2000 updates), 100 warm-up updates")
    R.append(final)
    final_ablations = {  # the recipe with one choice changed
        "fin_t0_01": dict(t_low=0.0, t_high=1.0),
        "fin_no_stepw": dict(step_weight=0.0),
        "fin_b1-9": dict(buckets=tuple(range(1, 10))),
        "fin_b1-20": dict(buckets=A20, num_epoch=1, num_samples=450000),
        "fin_beta2_0.999": dict(beta2=0.999),
        "fin_fb1": dict(forget_bias=1.0),
        "fin_const1e-2": dict(schedule="const", lr=0.01, warmup=0),
        "fin_cos1e-2": dict(lr=0.01),
        "fin_cos5e-2": dict(lr=0.05),
        "fin_no_warmup": dict(warmup=0),
        "fin_bs150": dict(batch_size=150, num_samples=150000, num_epoch=4, warmup=200),
        "fin_scale2m1": dict(scale=(2.0, -1.0)),
        "fin_clip0.05": dict(clip=0.05),
    }
    R += [replace(final, name=name, note=repr(change), **change) for name, change in final_ablations.items()]
    r3 = replace(final, name="r3", buckets=tuple(range(1, 10)), note="recipe on buckets 1..9 only (t0 up to 1.12)")
    R += [r3, replace(r3, name="r3_e1", num_epoch=1, warmup=50),
          replace(r3, name="r3_scale", scale=(2.0, -1.0)),
          replace(r3, name="r3_cos5e-2", lr=0.05),
          replace(r3, name="r3_bs150", batch_size=150, num_samples=150000, num_epoch=4, warmup=200),
          replace(r3, name="r3_bs150_e2", batch_size=150, num_samples=150000, num_epoch=2, warmup=100),
          replace(r3, name="r3_e3", num_epoch=3, warmup=150),
          replace(r3, name="r3_bs150_e1", batch_size=150, num_samples=150000, num_epoch=1, warmup=50),
          replace(r3, name="r3_bs100_e2", batch_size=100, num_samples=100000, num_epoch=2, warmup=100),
          replace(r3, name="r3_bs50_e2", batch_size=50, num_samples=50000, num_epoch=2, warmup=100),
          replace(r3, name="r3_bs150_e3", batch_size=150, num_samples=150000, num_epoch=3, warmup=150)]
    R += [replace(final, name="r4_bs100", batch_size=100, num_samples=100000, note="recipe at batch 100"),
          replace(final, name="r4_bs50", batch_size=50, num_samples=50000, note="recipe at batch 50"),
          replace(final, name="r4_bs150", batch_size=150, num_samples=150000, note="recipe at batch 150")]
    best = replace(final, name="best", batch_size=100, num_samples=100000,
                   note="THE WINNER: the recipe at batch 100: 2000 updates, 200000 windows")
    R += [best, replace(best, name="best_e1", num_epoch=1, warmup=50),
          replace(best, name="best_e3", num_epoch=3, warmup=150),
          replace(best, name="best_e4", num_epoch=4, warmup=200)]
    best_ablations = {  # the winner with one choice changed
        "best_t0_01": dict(t_low=0.0, t_high=1.0),
        "best_tlow_only": dict(t_high=1.0),
        "best_no_stepw": dict(step_weight=0.0),
        "best_stepw2": dict(step_weight=2.0),
        "best_b1-9": dict(buckets=tuple(range(1, 10))),
        "best_b1-20": dict(buckets=A20, num_samples=75000),
        "best_beta2_0.999": dict(beta2=0.999),
        "best_fb1": dict(forget_bias=1.0),
        "best_const1e-2": dict(schedule="const", lr=0.01, warmup=0),
        "best_const3e-3": dict(schedule="const", lr=0.003, warmup=0),
        "best_cos1e-2": dict(lr=0.01),
        "best_cos5e-2": dict(lr=0.05),
        "best_no_warmup": dict(warmup=0),
        "best_mf": dict(schedule="multifactor", milestones=(0.5, 0.75), factor=0.2),
        "best_poly": dict(schedule="poly"),
        "best_scale2m1": dict(scale=(2.0, -1.0)),
        "best_clip0.05": dict(clip=0.05),
        "best_lossnorm_sum": dict(loss_norm="sum"),
        "best_beta2_0.95": dict(beta2=0.95),
        "best_beta1_0.8": dict(beta1=0.8),
        "best_beta1_0.95": dict(beta1=0.95),
        "best_eps1e-6": dict(epsilon=1e-6),
        "best_lw_long2": dict(length_weights=(1.0,) * 9 + (2.0, 2.0, 2.0)),
        "best_lw_long05": dict(length_weights=(1.0,) * 9 + (0.5, 0.5, 0.5)),
    }
    R += [replace(best, name=name, note=repr(change), **change) for name, change in best_ablations.items()]
    final = replace(best, name="final", beta2=0.9,
                    note="THE RECIPE: best with Adam beta2 0.9 (found last): 2000 updates, 200000 windows")
    R += [final, replace(final, name="final_e1", num_epoch=1, warmup=50),
          replace(final, name="final_e3", num_epoch=3, warmup=150),
          replace(final, name="final_e4", num_epoch=4, warmup=200),
          replace(final, name="final_beta2_0.8_e1", beta2=0.8, num_epoch=1, warmup=50)]
    return {r.name: r for r in R}


RECIPES = _recipes()


def parse_recipe(spec: str) -> Recipe:
    """A registered name, optionally followed by ``:field=value:field=value`` overrides."""
    name, *overrides = spec.split(":")
    if name not in RECIPES:
        raise SystemExit(f"unknown recipe {name!r}; --list shows the names")
    r = RECIPES[name]
    types = {f.name: f.type for f in dataclasses.fields(Recipe)}
    changes: Dict[str, Any] = {}
    for item in overrides:
        key, _, value = item.partition("=")
        if key not in types:
            raise SystemExit(f"unknown field {key!r} in {spec!r}; fields: {sorted(types)}")
        changes[key] = json.loads(value) if value[:1] in "[{" or value in ("null", "true", "false") else \
            (value if key in ("schedule", "loss_norm", "name", "note") else float(value))
        if isinstance(changes[key], list):
            changes[key] = tuple(changes[key])
        if key in ("batch_size", "num_samples", "num_epoch", "warmup", "factor_step") and changes[key] is not None:
            changes[key] = int(changes[key])
    if changes:
        changes.setdefault("name", spec)
    return replace(r, **changes)


def split_top(text: str) -> List[str]:
    """Split on commas outside brackets (overrides may hold lists such as ``scale=[2,-1]``)."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "[") - (ch == "]")
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [p for p in parts + [cur] if p]


def run(r: Recipe, seed: int, eval_every: int, eval_seed: int = EVAL_SEED) -> Dict[str, Any]:
    out = train(r, seed, eval_every)
    rows = evaluate(r, out.pop("params"), seed=eval_seed)
    worst = max(rows, key=lambda row: row["max_abs_error"])
    step_profile = np.max([row["per_step"] + [0.0] * (20 - len(row["per_step"])) for row in rows], axis=0)
    return dict(recipe=r.name, seed=seed, **out, max_err=worst["max_abs_error"], worst_length=worst["length"],
                worst_step=worst["worst_step"], worst_t0=worst["worst_t0"],
                max_err_trained=max(row["max_abs_error"] for row in rows if row["trained"]),
                max_err_per_length=[row["max_abs_error"] for row in rows], max_err_per_step=step_profile.tolist(),
                settings=dataclasses.asdict(r))


def print_row(res: Dict[str, Any]) -> None:
    flag = "**" if res["max_err"] <= MOONSHOT else ("*" if res["max_err"] <= GOAL else "")
    print(f"{res['recipe'][:58]:58s} {res['seed']:>4d} {res['updates']:>6d} {res['windows']:>8d} "
          f"{res['train_s']:>6.1f} {res['load_start']:>4.1f}/{res['load_end']:>4.1f} "
          f"{res['max_err_trained']:>8.4f} {res['max_err']:>8.4f}{flag:2s} L{res['worst_length']:<2d} "
          f"s{res['worst_step']:<2d} t0={res['worst_t0']:.3f}  step1..3 "
          + " ".join(f"{e:.4f}" for e in res["max_err_per_step"][:3]), flush=True)


def step1_share(r: Recipe) -> float:
    """Share of the training loss weight that falls on step 1 (expected over the bucket mix)."""
    weights = np.asarray(r.length_weights or [1.0] * len(r.buckets), dtype=np.float64)
    shares = []
    for length in r.buckets:
        w = step_weights(r, length) if r.step_weight else np.ones(length)
        w = w / (length if r.loss_norm == "mean" else 1.0)
        shares.append((w[0], w.sum()))
    first, total = (np.asarray(x) for x in zip(*shares))
    return float((weights * first).sum() / (weights * total).sum())


PROFILE_EDGES = (0.0, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0)


def step1_profile(r: Recipe, params: Dict[str, np.ndarray], num_samples: int = 20000) -> List[float]:
    """Max abs error at step 1 (one input, t0) per t0 bin of ``PROFILE_EDGES``, on length-1 windows."""
    rng = np.random.default_rng(EVAL_SEED + 1)
    t0 = rng.uniform(0.0, 1.0, size=num_samples)
    err = np.abs(predict(r, params, t0, 1)[:, 0] - half_sine(t0 + 0.01))
    return [float(err[(t0 >= lo) & (t0 < hi)].max()) for lo, hi in zip(PROFILE_EDGES[:-1], PROFILE_EDGES[1:])]


def predict(r: Recipe, params: Dict[str, np.ndarray], t0: np.ndarray, length: int) -> np.ndarray:
    """Per-step outputs ``(N, length)`` of the network of ``r`` on the windows starting at ``t0``."""
    inputs, _ = make_windows(np.asarray(t0, dtype=np.float64), length, 0.01, "sequence", "time", half_sine)
    sym, _, _ = make_sym_gen(r, with_loss=False)(length)
    mod = mx.mod.Module(sym, data_names=("data",), label_names=None, context=mx.cpu())
    mod.bind(data_shapes=[mx.io.DataDesc("data", inputs.shape, layout="NTC")], for_training=False)
    mod.set_params({k: mx.nd.array(v) for k, v in to_layout(params, "fused", HIDDEN).items()}, {})
    mod.forward(mx.io.DataBatch([mx.nd.array(inputs.astype(np.float32))]), is_train=False)
    return mod.get_outputs()[0].asnumpy()


def profile(recipes: Sequence[Recipe], seed: int) -> None:
    """Why step 1 near t0 = 0 is the worst case: its loss share and its error per t0 bin."""
    bins = " ".join(f"[{lo:.2f},{hi:.2f})" for lo, hi in zip(PROFILE_EDGES[:-1], PROFILE_EDGES[1:]))
    print(f"step-1 max abs error per t0 bin (length-1 windows, 20000 t0 ~ U[0,1)), seed {seed}")
    print(f"{'recipe':18s} {'share':>6s} {bins}")
    for r in recipes:
        out = train(r, seed)
        prof = step1_profile(r, out["params"])
        print(f"{r.name:18s} {step1_share(r):6.3f} " + " ".join(f"{e:11.4f}" for e in prof), flush=True)


REFERENCE_LABELS, REFERENCE_TRAINED, REFERENCE_UNTRAINED = (NOTE_STEPS[k] for k in ("label", "trained model",
                                                                                  "untrained model"))


def seed_table(recipe: Recipe, seed: int) -> None:
    """The original's per-step outputs for one window beside ours: fixed task and sequence recipe.

    Our label at step k is sin(t0 + 0.01 k) / 2; t0 is chosen so that our step-1 label is
    the original's 0.3411 (t0 = asin(2 * 0.3411) - 0.01). The fixed model (``fit(buckets=[9],
    label_mode='last')``, the library's defaults) is asked windows cut to lengths 1..9 and
    answers with its last step; the recipe's model answers every step of the length-9 window.
    """
    from sinlstm_sym import fit
    t0 = float(np.arcsin(2 * REFERENCE_LABELS[0]) - 0.01)
    labels = half_sine(t0 + 0.01 * np.arange(1, 10))
    fixed = fit(buckets=[9], label_mode="last", seed=seed, log_every=1000).predictor()
    fixed_out = [float(fixed.predict_function([t0], k)[0]) for k in range(1, 10)]
    init = init_params(HIDDEN, seed, forget_bias=recipe.forget_bias)
    untrained = predict(recipe, init, [t0], 9)[0]
    out = train(recipe, seed)
    ours = predict(recipe, out["params"], [t0], 9)[0]
    rows = [("original: label (as printed)", REFERENCE_LABELS),
            ("original: trained (last label)", REFERENCE_TRAINED),
            ("original: untrained", REFERENCE_UNTRAINED), (f"ours: label sin(t)/2, t0={t0:.4f}", labels),
            ("ours: fixed fit(buckets=[9], 'last')", fixed_out),
            (f"ours: untrained (recipe's init, seed {seed})", untrained),
            (f"ours: sequence, recipe {recipe.name}", ours),
            ("ours: |recipe - label|", np.abs(np.asarray(ours) - labels))]
    print(f"seed {seed}; fixed model: windows cut to lengths 1..9, last-step output; recipe: every step of one window")
    print("| step | " + " | ".join(str(k) for k in range(1, 10)) + " |")
    print("|---|" + "---|" * 9)
    for name, values in rows:
        print(f"| {name} | " + " | ".join(f"{v:.4f}" if abs(v) >= 1e-3 else f"{v:.1e}" for v in values) + " |")


def check() -> None:
    """The loop here equals ``sinlstm_sym.fit``; the evaluation here equals ``per_length_error``."""
    from sinlstm_sym import fit
    from sinlstm_sym.infer.evaluation import per_length_error
    from sinlstm_sym.infer.predictor import Predictor
    r = RECIPES["baseline"]
    ours = train(r, seed=0)
    tic = time.perf_counter()
    theirs = fit(seed=0, num_samples=r.num_samples, log_every=1000, optimizer_params={"learning_rate": r.lr})
    fit_s = time.perf_counter() - tic
    diff = max(float(np.abs(ours["params"][k] - v).max()) for k, v in theirs.arg_params().items())
    print(f"max |param difference| this loop vs fit after {ours['updates']} updates: {diff:.2e}; "
          f"seconds: this loop {ours['train_s']:.2f} (training only), fit {fit_s:.2f} (whole call)")
    a = evaluate(r, ours["params"], seed=7)
    b = per_length_error(Predictor(ours["params"]), EVAL_LENGTHS, num_samples=EVAL_SAMPLES, seed=7)
    gap = max(abs(x["max_abs_error"] - y["max_abs_error"]) for x, y in zip(a, b))
    print(f"max |difference| of max_abs_error, this evaluation vs per_length_error: {gap:.2e}")


def summarize(paths: Sequence[str]) -> None:
    """One markdown row per recipe in JSON-lines result files: seeds, updates, windows, errors, seconds."""
    runs: Dict[str, List[Dict[str, Any]]] = {}
    for path in paths:
        with open(path) as handle:
            for line in handle:
                res = json.loads(line)
                runs.setdefault(res["recipe"], []).append(res)
    print("| recipe | seeds | updates | windows | max err 1..20: median | worst | step-1 worst | "
          "worst at | train s median (load) |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|")
    for name, rs in runs.items():
        errs = [r["max_err"] for r in rs]
        worst = max(rs, key=lambda r: r["max_err"])
        print(f"| {name} | {len(rs)} | {rs[0]['updates']} | {rs[0]['windows']} | {statistics.median(errs):.4f} | "
              f"{max(errs):.4f} | {max(r['max_err_per_step'][0] for r in rs):.4f} | "
              f"L{worst['worst_length']} step {worst['worst_step']} t0={worst['worst_t0']:.2f} | "
              f"{statistics.median(r['train_s'] for r in rs):.1f} "
              f"({statistics.median(r['load_start'] for r in rs):.1f}) |")


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="baseline",
                        help="comma-separated recipe names, each optionally with :field=value overrides")
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds")
    parser.add_argument("--eval-every", type=int, default=0, help="also record the error every N updates")
    parser.add_argument("--eval-seed", type=int, default=EVAL_SEED, help="seed of the evaluation windows")
    parser.add_argument("--json", default=None, help="append one JSON line per run to this file")
    parser.add_argument("--list", action="store_true", help="list the recipes and exit")
    parser.add_argument("--summarize", nargs="+", metavar="JSONL",
                        help="print one markdown row per recipe of these --json files and exit")
    parser.add_argument("--profile", action="store_true",
                        help="print the step-1 loss share and the step-1 error per t0 bin of each --config")
    parser.add_argument("--seed-table", action="store_true",
                        help="the original's per-step table beside ours (fixed task and the first --config)")
    parser.add_argument("--check", action="store_true", help="check this loop and evaluation against the library")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.list:
        for r in RECIPES.values():
            print(f"{r.name:28s} updates {r.updates:>6d}  {r.note}")
        return
    if args.check:
        check()
        return
    if args.summarize:
        summarize(args.summarize)
        return
    recipes = [parse_recipe(s) for s in split_top(args.config)]
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.profile:
        profile(recipes, seeds[0])
        return
    if args.seed_table:
        seed_table(recipes[0], seeds[0])
        return
    print(f"{'recipe':58s} {'seed':>4s} {'upd':>6s} {'windows':>8s} {'sec':>6s} {'load':>9s} "
          f"{'trained':>8s} {'1..20':>10s} worst")
    results = []
    for r in recipes:
        for seed in seeds:
            res = run(r, seed, args.eval_every, args.eval_seed)
            results.append(res)
            print_row(res)
            if res["curve"]:
                print("    curve (updates, s, max err): " + ", ".join(f"({u}, {s:.1f}, {e:.4f})"
                                                                    for u, s, e in res["curve"]))
            if args.json:
                with open(args.json, "a") as handle:
                    handle.write(json.dumps(res) + "\n")
    if len(seeds) > 1:
        for r in recipes:
            errs = sorted(x["max_err"] for x in results if x["settings"]["name"] == r.name)
            secs = [x["train_s"] for x in results if x["settings"]["name"] == r.name]
            print(f"{r.name}: max err over 1..20 median {statistics.median(errs):.4f} worst {errs[-1]:.4f}; "
                  f"train s median {statistics.median(secs):.1f}")


if __name__ == "__main__":
    main()
