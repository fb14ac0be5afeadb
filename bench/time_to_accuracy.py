#!/usr/bin/env python
"""Time to accuracy: the library's recipe (``sinlstm_sym.fit`` defaults) against the same recipe in PyTorch.

Rows: ``library`` (``fit`` with ``cell='auto'``: the native operator where it builds; the
cell that ran is printed), ``fused`` (``fit(cell='fused')``) and ``torch`` (three
``torch.nn.LSTM`` layers (10, 20, 1) on the CPU). Everything a run does is the library's
default recipe, read from ``FitConfig()`` (so the comparison follows the recipe if it changes):

* the same windows: the torch loop iterates a ``SinBucketIter`` built with fit's arguments
  (buckets, batch size, windows per epoch, t range, seed), positioned per epoch with
  ``set_epoch`` as fit does, and converts each batch inside the timed loop (the library
  also generates its windows inside its clock);
* the same initial weights: ``params.init_params(hidden, seed, forget_bias)`` copied into
  ``nn.LSTM`` (weight_ih_l0 = i2h_weight, weight_hh_l0 = h2h_weight, biases; gate order
  i, f, g, o in both);
* the same loss: per window ``0.5 * mean_k(w_k (pred_k - label_k)^2)``, ``w_k = 1 +
  step_weight * exp(-(k - 1) / step_tau)``, averaged over the batch (MXNet's
  LinearRegressionOutput with ``rescale_grad = 1/batch`` has exactly this gradient);
* the same optimizer: Adam with the betas/epsilon of the optimizer fit creates, and the
  learning rate of update ``k`` (1-based, as MXNet counts) from :func:`cosine_warmup_lr`,
  checked against MXNet's own ``CosineScheduler`` for every update (to 1e-9).
  One known difference: MXNet adds epsilon to ``sqrt(v)``, torch to ``sqrt(v / (1 - beta2^t))``
  (1e-8 either way: no visible effect).

Checks printed before the runs (``check`` child, per seed): the schedules agree; with the torch
row, the two models give the same predictions at update 0 on the validation windows (<= 1e-5); and after
a short run of 30 updates (fit with ``num_samples=3000``, same explicit schedule) the
predictions still agree, which tests windows, loss weights, Adam and schedule together.

Validation: ``ValidationSet(range(1, 21), N, seed=seed, 'sequence', 'time')`` (held out,
never training windows), every ``--validate-every`` updates and at each epoch end, for both
sides; the library's records come from ``fit(validation_lengths=..., validate_every=...)``.
Seconds are training time only (validation excluded on both sides; the library's clock starts
after its first bind and includes the binds of new buckets; torch's starts at its first batch).

Every run is its own subprocess; rows are interleaved seed by seed (and their order rotated),
so drift of the shared machine hits every row alike. Quote the ratios, not the seconds.
PyTorch runs with ``--torch-threads`` threads; ``auto`` measures 1 and 2 threads on 300 updates
first (alternating, twice each) and takes the faster. MXNet's threads are left at its defaults.

Without PyTorch (the ``bench`` extra) only ``--rows library,fused`` run, and the check is the schedule's.
``--num-samples`` and ``--num-epoch`` shorten the recipe (its schedule follows) for a quick look.

    python bench/time_to_accuracy.py                      # seeds 0,1,2, about 3 min
    python bench/time_to_accuracy.py --seeds 0 --plot tta.png --json tta.json
    python bench/time_to_accuracy.py --seeds 0 --rows library,fused --num-samples 15000 --validate-every 50
"""
import argparse
import json
import math
import os
import statistics
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import benchkit

ROWS = ("library", "fused", "torch")
THRESHOLDS = (0.02, 0.01, 0.005, 0.003, 0.001)
VALIDATION_LENGTHS = tuple(range(1, 21))
CHECK_UPDATES = 30  # the short like-for-like run of the check child
Recipe = Dict[str, Any]
Spec = Dict[str, Any]
Run = Dict[str, Any]  # a child's result: records [(updates, seconds, max_err)], train_seconds, updates, cell
Hit = Optional[Tuple[float, int]]


def cosine_warmup_lr(update: int, base_lr: float, max_update: int, warmup_steps: int, warmup_begin_lr: float = 0.0,
                     final_lr: float = 0.0) -> float:
    """The learning rate of update ``update`` (1-based) under MXNet's CosineScheduler with linear warm-up."""
    if update < warmup_steps:
        return warmup_begin_lr + (base_lr - warmup_begin_lr) * update / warmup_steps
    if update <= max_update:
        return final_lr + (base_lr - final_lr) * (1 + math.cos(math.pi * (update - warmup_steps)
                                                                / (max_update - warmup_steps))) / 2
    return final_lr


# ----------------------------------------------------------------------------------------
# children
# ----------------------------------------------------------------------------------------
def recipe(overrides: Dict[str, int]) -> Tuple[Recipe, Any]:
    """The library's default recipe (with ``overrides``: num_samples, num_epoch) as plain values, and the
    MXNet optimizer fit would create."""
    from sinlstm_sym import FitConfig
    config = FitConfig().replace(**overrides)
    data, model = config.data, config.model
    updates = config.run.num_epoch * (data.num_samples // data.batch_size)
    schedule = dict(config.optimizer.lr_schedule or {})
    schedule.setdefault("max_update", updates)
    config = config.replace(lr_schedule=schedule)
    optimizer = config.optimizer.create(rescale_grad=1.0 / data.batch_size)
    if schedule.get("name") != "cosine" or schedule.get("warmup_mode", "linear") != "linear":
        raise SystemExit(f"this benchmark implements the cosine schedule with linear warm-up; the recipe has "
                         f"{schedule}")
    values = dict(buckets=list(data.buckets), batch_size=data.batch_size, num_samples=data.num_samples,
                  num_epoch=config.run.num_epoch, t_low=data.t_low, t_high=data.t_high,
                  hidden_sizes=list(model.hidden_sizes), forget_bias=model.forget_bias, step_weight=model.step_weight,
                  step_tau=model.step_tau, label_mode=model.label_mode, feature=model.feature,
                  optimizer=config.optimizer.name, beta1=optimizer.beta1, beta2=optimizer.beta2,
                  epsilon=optimizer.epsilon, wd=optimizer.wd, clip_gradient=optimizer.clip_gradient,
                  base_lr=config.optimizer.params.get("learning_rate"), max_update=schedule["max_update"],
                  warmup_steps=schedule.get("warmup_steps", 0), warmup_begin_lr=schedule.get("warmup_begin_lr", 0.0),
                  final_lr=schedule.get("final_lr", 0.0))
    if values["optimizer"] != "adam" or values["wd"] or values["clip_gradient"] or model.label_mode != "sequence":
        raise SystemExit(f"this benchmark mirrors Adam without wd/clipping on label_mode='sequence'; the recipe has "
                         f"{values}")
    return values, optimizer


def schedule_of(rec: Recipe, update: int) -> float:
    return cosine_warmup_lr(update, rec["base_lr"], rec["max_update"], rec["warmup_steps"], rec["warmup_begin_lr"],
                            rec["final_lr"])


def initial_params(rec: Recipe, seed: int) -> Dict[str, Any]:
    from sinlstm_sym.recurrence.params import init_params
    return init_params(rec["hidden_sizes"], seed, forget_bias=rec["forget_bias"])


def torch_model(rec: Recipe, seed: int, threads: int) -> Tuple[Any, Callable[[Any], Any]]:
    """The library's seeded initial model in torch: (its layers, forward (B, L, 1) -> (B, L))."""
    import torch
    torch.set_num_threads(threads)
    layers = benchkit.torch_lstm_layers(initial_params(rec, seed), rec["hidden_sizes"])

    def forward(x: Any) -> Any:
        for layer in layers:
            x, _ = layer(x)
        return x[:, :, 0]  # (B, L): the last layer's hidden state is the prediction

    return layers, forward


def torch_train(rec: Recipe, seed: int, threads: int, num_samples: Optional[int] = None, validation: Any = None,
                every: int = 0, max_updates: Optional[int] = None) -> Tuple[List[Tuple[int, float, float]], float,
                                                                            Callable[[Any], Any], int]:
    """Train the torch copy; returns (records [(updates, seconds, max_err)], train seconds, forward, updates)."""
    import numpy as np
    import torch

    from sinlstm_sym import SinBucketIter
    layers, forward = torch_model(rec, seed, threads)
    opt = torch.optim.Adam(layers.parameters(), lr=schedule_of(rec, 1), betas=(rec["beta1"], rec["beta2"]),
                           eps=rec["epsilon"])
    it = SinBucketIter(rec["buckets"], batch_size=rec["batch_size"], num_samples=num_samples or rec["num_samples"],
                       label_mode=rec["label_mode"], feature=rec["feature"], t_low=rec["t_low"], t_high=rec["t_high"],
                       seed=seed)
    weights: Dict[int, Any] = {}

    def step_weights(length: int) -> Any:
        if length not in weights:
            k = np.arange(length, dtype=np.float64)
            weights[length] = torch.from_numpy((1.0 + rec["step_weight"] * np.exp(-k / rec["step_tau"]))
                                               .astype(np.float32))
        return weights[length]

    records, seconds, update = [], 0.0, 0
    for epoch in range(1 if num_samples else rec["num_epoch"]):
        it.set_epoch(epoch)
        mark = time.perf_counter()
        for batch_no, batch in enumerate(it, start=1):
            x = torch.from_numpy(batch.data[0].asnumpy())
            y = torch.from_numpy(batch.label[0].asnumpy())
            update += 1
            for group in opt.param_groups:
                group["lr"] = schedule_of(rec, update)
            pred = forward(x)
            loss = (0.5 * (step_weights(x.shape[1]) * (pred - y).pow(2)).mean(dim=1)).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if validation is not None and (update % every == 0 or batch_no == len(it)):
                seconds += time.perf_counter() - mark
                records.append((update, seconds, torch_validate(forward, validation)))
                mark = time.perf_counter()
            if max_updates and update >= max_updates:
                break
        seconds += time.perf_counter() - mark
        if max_updates and update >= max_updates:
            break
    return records, seconds, forward, update


def torch_predict(forward: Callable[[Any], Any], inputs: Any) -> Any:
    import torch
    with torch.no_grad():
        return forward(torch.from_numpy(inputs)).numpy()


def torch_validate(forward: Callable[[Any], Any], validation: Any) -> float:
    import numpy as np
    return max(float(np.abs(torch_predict(forward, x) - y).max()) for x, y in validation.windows.values())


def validation_set(seed: int, samples: int) -> Any:
    from sinlstm_sym.train.validation import ValidationSet
    return ValidationSet(VALIDATION_LENGTHS, samples, seed=seed, label_mode="sequence", feature="time")


def max_diff(first: Callable[[Any], Any], second: Callable[[Any], Any], windows: Sequence[Any]) -> float:
    """The largest absolute difference of two models' predictions over ``windows``."""
    import numpy as np
    return max(float(np.abs(first(x) - second(x)).max()) for x in windows)


def child_check(spec: Spec) -> Dict[str, Any]:
    """Schedules agree; with torch, predictions agree at update 0 and after CHECK_UPDATES updates of a short run."""
    import mxnet as mx
    import numpy as np

    from sinlstm_sym import Predictor, fit
    from sinlstm_sym.native import resolve_cell
    rec, optimizer = recipe(spec["overrides"])
    reference = mx.lr_scheduler.CosineScheduler(max_update=rec["max_update"], base_lr=rec["base_lr"],
                                                final_lr=rec["final_lr"], warmup_steps=rec["warmup_steps"],
                                                warmup_begin_lr=rec["warmup_begin_lr"], warmup_mode="linear")
    sched_diff = max(max(abs(optimizer.lr_scheduler(k) - schedule_of(rec, k)), abs(reference(k) - schedule_of(rec, k)))
                     for k in range(1, rec["max_update"] + 1))
    seed, cell = spec["seed"], resolve_cell("auto")
    val = validation_set(seed, spec["validation_samples"])
    inputs = [x for x, _ in val.windows.values()]
    lib = Predictor(initial_params(rec, seed), rec["hidden_sizes"], label_mode="sequence", cell=cell)
    out = {"recipe": rec, "schedule_max_diff": sched_diff, "cell": cell,
           "init_max_error": max(float(np.abs(lib.predict(x) - y).max()) for x, y in val.windows.values())}
    if not spec["torch"]:
        return out
    _, forward = torch_model(rec, seed, 1)
    out["init_pred_max_diff"] = max_diff(lib.predict, lambda x: torch_predict(forward, x), inputs)
    # a short run of both, same schedule as the full run (max_update of the recipe), CHECK_UPDATES updates
    schedule = {"name": "cosine", "max_update": rec["max_update"], "warmup_steps": rec["warmup_steps"],
                "warmup_begin_lr": rec["warmup_begin_lr"], "final_lr": rec["final_lr"]}
    trained = fit(seed=seed, cell="auto", lr_schedule=schedule, num_samples=CHECK_UPDATES * rec["batch_size"],
                  num_epoch=1).predictor()
    _, _, forward, out["short_updates"] = torch_train(rec, seed, 1, num_samples=CHECK_UPDATES * rec["batch_size"])
    out["short_pred_max_diff"] = max_diff(trained.predict, lambda x: torch_predict(forward, x), inputs)
    out["short_pred_moved"] = max_diff(trained.predict, lib.predict, inputs)
    return out


def child_library(spec: Spec) -> Run:
    from sinlstm_sym import fit
    res = fit(cell=spec["cell"], seed=spec["seed"], validation_lengths=VALIDATION_LENGTHS,
              validation_samples=spec["validation_samples"], validate_every=spec["validate_every"],
              **spec["overrides"])
    records = [(r.global_batch, r.seconds, r.max_abs_error) for r in res.validation_history]
    return {"records": records, "train_seconds": res.progress.train_seconds, "cell": res.config.model.cell,
            "updates": res.progress.global_batch}


def child_torch(spec: Spec) -> Run:
    import torch
    rec, _ = recipe(spec["overrides"])
    val = validation_set(spec["seed"], spec["validation_samples"]) if spec["validate_every"] else None
    records, seconds, _, updates = torch_train(rec, spec["seed"], spec["threads"], validation=val,
                                               every=spec["validate_every"], max_updates=spec.get("max_updates"))
    threads = torch.get_num_threads()
    return {"records": records, "train_seconds": seconds, "updates": updates,
            "cell": f"{torch.__version__}, {threads} thread{'s' if threads > 1 else ''}"}


def child_main(spec: Spec) -> None:
    children: Dict[str, Callable[[Spec], Dict[str, Any]]] = {"check": child_check, "library": child_library,
                                                             "torch": child_torch}
    benchkit.emit_result(children[spec["kind"]](spec))


# ----------------------------------------------------------------------------------------
# parent
# ----------------------------------------------------------------------------------------
def run_child(spec: Spec, threads: Optional[int] = None) -> Dict[str, Any]:
    """One child of this script; ``threads`` sets OMP/MKL/OpenBLAS threads (MXNet's defaults without)."""
    env = dict(os.environ)
    if threads is not None:
        for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[key] = str(threads)
    return benchkit.run_child([sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)], env)


def first_reach(records: List[Tuple[int, float, float]], threshold: float) -> Hit:
    """(seconds, updates) of the first validation with max abs error <= threshold, or None."""
    for updates, seconds, err in records:
        if err <= threshold:
            return seconds, updates
    return None


def same_until(a: List[Tuple[int, float, float]], b: List[Tuple[int, float, float]], rel: float = 0.01) -> int:
    """The last update up to which two runs' validation errors agree within ``rel`` (0 if never)."""
    last = 0
    for (ua, _, ea), (ub, _, eb) in zip(a, b):
        if ua != ub or abs(ea - eb) > rel * max(ea, eb):
            break
        last = ua
    return last


def fmt_reach(hit: Hit) -> str:
    return "not reached" if hit is None else f"{hit[0]:6.2f} s / {hit[1]:4d}"


def median_or_none(values: Sequence[Optional[float]]) -> Optional[float]:
    """Median with None (not reached) as +inf; None if the median itself is not reached."""
    m = statistics.median([math.inf if v is None else v for v in values])
    return None if math.isinf(m) else m


def pick_threads(args: argparse.Namespace) -> Tuple[int, Dict[str, List[float]]]:
    """PyTorch's threads: the given count, or the faster of 1 and 2 on 300 updates (alternating, twice each)."""
    if args.torch_threads != "auto":
        return int(args.torch_threads), {}
    rates: Dict[int, List[float]] = {1: [], 2: []}
    for _ in range(2):
        for threads in (1, 2):
            out = run_child({"kind": "torch", "seed": 0, "threads": threads, "validation_samples": 1,
                             "validate_every": 0, "max_updates": 300, "overrides": args.overrides}, threads)
            rates[threads].append(out["train_seconds"] / out["updates"] * 1e3)
    best = min(rates, key=lambda t: statistics.median(rates[t]))
    print("PyTorch threads: ms per update over 300 updates, two runs each: "
          + ", ".join(f"{t} thread(s) {' '.join(f'{r:.2f}' for r in rates[t])}" for t in rates)
          + f" -> using {best}")
    return best, {str(t): r for t, r in rates.items()}


def run_checks(args: argparse.Namespace) -> Dict[int, Dict[str, Any]]:
    """The check child per seed; stops the run when the two sides do not start alike."""
    checks = {}
    torch = "torch" in args.rows
    for seed in args.seeds:
        check = run_child({"kind": "check", "seed": seed, "validation_samples": args.validation_samples,
                           "torch": torch, "overrides": args.overrides})
        checks[seed] = check
        if seed == args.seeds[0]:
            rec = check["recipe"]
            print("Recipe (FitConfig defaults): " + ", ".join(f"{k}={v}" for k, v in rec.items()))
            print(f"Schedules: max |MXNet CosineScheduler - own lr| over updates 1..{rec['max_update']} = "
                  f"{check['schedule_max_diff']:.1e} ({'OK' if check['schedule_max_diff'] <= 1e-9 else 'MISMATCH'})")
        ok = check["schedule_max_diff"] <= 1e-9
        if torch:
            ok = ok and check["init_pred_max_diff"] <= 1e-5
            print(f"seed {seed}: update 0, max |library ({check['cell']}) - torch| prediction on the validation "
                  f"windows = {check['init_pred_max_diff']:.1e} ({'OK' if ok else 'MISMATCH'}); after "
                  f"{check['short_updates']} updates of a {CHECK_UPDATES}-batch run: "
                  f"{check['short_pred_max_diff']:.1e} "
                  f"(predictions moved {check['short_pred_moved']:.1e} from update 0)")
        if not ok:
            raise SystemExit("the two sides do not start alike: no comparison")
    return checks


def per_seed_table(args: argparse.Namespace, results: Dict[int, Dict[str, Run]], rows: List[str],
                   names: Dict[str, str]) -> None:
    for seed in args.seeds:
        print(f"seed {seed}: training seconds / updates to reach max abs error <= threshold "
              f"(validation every {args.validate_every} updates, {args.validation_samples} windows per length 1..20)")
        print(f"  {'threshold':>9}  " + "  ".join(f"{names[r]:>24}" for r in rows))
        for thr in THRESHOLDS:
            print(f"  {thr:>9g}  " + "  ".join(f"{fmt_reach(first_reach(results[seed][r]['records'], thr)):>24}"
                                               for r in rows))
        print(f"  {'final':>9}  " + "  ".join(
            f"{results[seed][r]['records'][-1][2]:>12.5f} {results[seed][r]['train_seconds']:>7.2f} s   "
            for r in rows))
        for r in (r for r in rows if r != "torch" and "torch" in rows):
            split = same_until(results[seed][r]["records"], results[seed]["torch"]["records"])
            print(f"  {r} and torch: validation errors equal within 1% up to update {split} of "
                  f"{results[seed][r]['records'][-1][0]} (then float32 rounding differences grow at the peak "
                  "learning rate)" if split else f"  {r} and torch differ from the first validation")


def threshold_entry(args: argparse.Namespace, results: Dict[int, Dict[str, Run]], rows: List[str],
                    thr: float) -> Tuple[List[str], Dict[str, Any]]:
    """The summary table's cells and JSON entry of one threshold."""
    cols: List[str] = []
    entry: Dict[str, Any] = {}
    for r in rows:
        hits = [first_reach(results[s][r]["records"], thr) for s in args.seeds]
        sec = median_or_none([h[0] if h else None for h in hits])
        upd = median_or_none([h[1] if h else None for h in hits])
        entry[r] = {"median_seconds": sec, "median_updates": upd, "per_seed": hits}
        cols += ["n/r" if sec is None else f"{sec:.2f}", "n/r" if upd is None else f"{upd:g}"]
    for r in (r for r in rows if r != "torch" and "torch" in rows):
        per = []
        for s in args.seeds:
            t, lib = first_reach(results[s]["torch"]["records"], thr), first_reach(results[s][r]["records"], thr)
            per.append("n/r" if t is None or lib is None else f"{t[0] / lib[0]:.2f}")
        med_t, med_l = entry["torch"]["median_seconds"], entry[r]["median_seconds"]
        ratio = "n/r" if med_t is None or med_l is None else f"{med_t / med_l:.2f}x"
        cols.append(f"{ratio} ({' '.join(per)})")
        entry[f"torch/{r}"] = ratio
    return cols, entry


def report(args: argparse.Namespace, results: Dict[int, Dict[str, Run]], checks: Dict[int, Dict[str, Any]],
           threads: Optional[int], probe: Dict[str, List[float]]) -> None:
    rows = [r for r in ROWS if r in args.rows]
    libs = [r for r in rows if r != "torch" and "torch" in rows]
    cells = {row: sorted({results[s][row]["cell"] for s in args.seeds}) for row in rows}
    names = {row: f"{row} ({', '.join(cells[row])})" for row in rows}
    print()
    per_seed_table(args, results, rows, names)
    print()
    print(f"Median over seeds {','.join(map(str, args.seeds))} (seconds; updates; 'n/r' = the median seed did "
          f"not reach it):")
    print("| threshold | " + " | ".join(f"{names[r]} s | updates" for r in rows)
          + "".join(f" | torch / {r} (per seed)" for r in libs) + " |")
    print("|" + "---|" * (1 + 2 * len(rows) + len(libs)))
    summary = {}
    for thr in THRESHOLDS:
        cols, summary[str(thr)] = threshold_entry(args, results, rows, thr)
        print(f"| {thr:g} | " + " | ".join(cols) + " |")
    finals = {r: statistics.median(results[s][r]["records"][-1][2] for s in args.seeds) for r in rows}
    totals = {r: statistics.median(results[s][r]["train_seconds"] for s in args.seeds) for r in rows}
    print("| final max abs error | " + " | ".join(f"{finals[r]:.5f} | {totals[r]:.2f} s total" for r in rows)
          + "".join(f" | {totals['torch'] / totals[r]:.2f}x (total time)" for r in libs) + " |")
    if args.json:
        benchkit.write_json(args.json, {"args": {k: v for k, v in vars(args).items() if k != "child"},
                                        "torch_threads": threads, "thread_probe_ms_per_update": probe,
                                        "checks": checks, "summary": summary, "finals": finals,
                                        "total_seconds": totals, "runs": {str(s): results[s] for s in args.seeds}})
        print(f"wrote {args.json}")
    if args.plot:
        plot(args, results, rows, names, checks)


def plot(args: argparse.Namespace, results: Dict[int, Dict[str, Run]], rows: List[str], names: Dict[str, str],
         checks: Dict[int, Dict[str, Any]]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    colours = {"library": "tab:blue", "fused": "tab:green", "torch": "tab:red"}
    fig, axes = plt.subplots(len(args.seeds), 1, figsize=(9, 1.2 + 2.6 * len(args.seeds)), sharex=True, sharey=True,
                             squeeze=False)
    for ax, seed in zip(axes[:, 0], args.seeds):
        for row in rows:
            recs = results[seed][row]["records"]
            ax.plot([0.0] + [r[1] for r in recs], [checks[seed]["init_max_error"]] + [r[2] for r in recs],
                    color=colours[row], lw=1.2, marker=".", ms=3, label=names[row])
        for thr in THRESHOLDS:
            ax.axhline(thr, color="grey", lw=0.6, ls=":")
        ax.set_yscale("log")
        ax.set_yticks(THRESHOLDS + (0.1,))
        ax.set_yticklabels([f"{t:g}" for t in THRESHOLDS + (0.1,)])
        ax.set_ylabel(f"seed {seed}: max abs error")
        ax.grid(True, axis="x", alpha=0.25)
    axes[0, 0].legend(fontsize=8)
    axes[0, 0].set_title("Validation max abs error (lengths 1..20, every step) against training time:\n"
                         "the library's recipe and the same recipe in PyTorch", fontsize=10)
    axes[-1, 0].set_xlabel("training seconds (validation excluded)")
    fig.tight_layout()
    fig.savefig(args.plot, dpi=110)
    print(f"wrote {args.plot}")


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (windows, weights, validation set)")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated subset of {','.join(ROWS)}")
    parser.add_argument("--validate-every", type=benchkit.positive_int, default=50,
                        help="updates between validations (default 50)")
    parser.add_argument("--validation-samples", type=benchkit.positive_int, default=500,
                        help="held-out windows per length 1..20 (default 500, fit's default)")
    parser.add_argument("--num-samples", type=benchkit.positive_int,
                        help="windows per epoch instead of the recipe's (short runs; the schedule needs more "
                             "updates than its warm-up, 100 by default)")
    parser.add_argument("--num-epoch", type=benchkit.positive_int, help="epochs instead of the recipe's (short runs)")
    parser.add_argument("--torch-threads", default="auto", choices=("auto", "1", "2"),
                        help="PyTorch threads; auto: the faster of 1 and 2, measured first")
    parser.add_argument("--plot", metavar="FILE.png", help="validation max error (log) against training seconds")
    parser.add_argument("--json", metavar="FILE", help="write every record and the summary as JSON")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return args
    try:
        args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--seeds takes comma-separated integers, got {args.seeds!r}")
    args.rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = sorted(set(args.rows) - set(ROWS))
    if unknown or not args.rows or not args.seeds:
        parser.error(f"--rows must name some of {ROWS} (got unknown {unknown}); --seeds at least one")
    if "torch" in args.rows and benchkit.torch_version()[0] is None:
        parser.error("the torch row needs PyTorch (pip install -e '.[cpu,bench]'); without it, "
                     "--rows library,fused")
    args.overrides = {k: v for k, v in (("num_samples", args.num_samples), ("num_epoch", args.num_epoch)) if v}
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if args.child:
        child_main(json.loads(args.child))
        return 0
    started = time.time()
    checks = run_checks(args)
    threads, probe = pick_threads(args) if "torch" in args.rows else (None, {})
    results: Dict[int, Dict[str, Run]] = {}
    for i, seed in enumerate(args.seeds):
        results[seed] = {}
        for row in benchkit.rotated(args.rows, i):  # rotate who runs first
            spec = {"kind": "torch" if row == "torch" else "library", "seed": seed,
                    "validation_samples": args.validation_samples, "validate_every": args.validate_every,
                    "cell": "auto" if row == "library" else "fused", "threads": threads, "overrides": args.overrides}
            out = run_child(spec, threads if row == "torch" else None)
            results[seed][row] = out
            print(f"seed {seed} {row:7} ({out['cell']}): {out['updates']} updates in {out['train_seconds']:.2f} s "
                  f"training time, final max abs error {out['records'][-1][2]:.5f} (other load "
                  f"{out['foreign_load'] if out['foreign_load'] is not None else math.nan:.2f} cores)", flush=True)
    report(args, results, checks, threads, probe)
    print(f"(wall time {time.time() - started:.0f} s, load average {benchkit.load_average():.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
