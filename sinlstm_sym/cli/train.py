"""``sinlstm-train`` (and ``python examples/bucket_train.py``):
train the stacked-LSTM sine predictor on variable-length windows with a BucketingModule.

Defaults: the library's recipe (FitConfig's defaults): lengths 1..9, 12, 16, 20 with per-step labels, Adam
at 0.03 with 100 warm-up updates and a cosine decay, two epochs of 100000 windows in batches of 100.
``--fixed`` is the original 2018 setup (FitConfig.original()). Prints progress, then the error per length on
fresh windows (lengths 1..20 by default; lengths that had no training batch are marked); with ``--fixed``
also the outputs at every step of the 2018 note's window beside the note's. Ctrl-C or SIGTERM stops at the next
batch boundary (with a checkpoint under --checkpoint and the command to resume) and exits 130 or 143.
"""
import argparse
import json
import logging
import signal
import sys
from typing import Any, Dict, List, NoReturn, Optional

import numpy as np

from ..callback_errors import UpdaterError
from ..checkpoint import DiskFullError, RunDirectory
from ..config import FitConfig
from ..constants import (CELLS, DEFAULT_CLI_SEED, DEFAULT_STEP, FEATURES, INITS, KVSTORES, LABEL_MODES, NOTE_STEPS,
                         NOTE_T0, ORIGINAL_T_RANGE)
from ..data.windows import half_sine
from ..evaluation import format_error_table, per_length_error, step_outputs
from ..reference.gluon import check_reference_settings
from ..limits import check_evaluation
from ..params import init_params
from ..train.loop import NonFiniteLossError, StopAtOnce, TrainingDivergedError, TrainingInterrupted
from ..fitting import fit
from .args import (Parser, check_output_flags, fail, flags_named, float_list, int_at_least, int_list, json_dict,
                   json_dict_or_null, plot_file, resume_command)

# flag -> fit setting; each flag's value is checked on its own (with the settings it needs) before training
FLAG_SETTINGS = {"--buckets": "buckets", "--length-weights": "length_weights", "--hidden-sizes": "hidden_sizes",
                 "--batch-size": "batch_size", "--num-samples": "num_samples", "--num-epoch": "num_epoch",
                 "--label-mode": "label_mode", "--feature": "feature", "--cell": "cell", "--init": "init",
                 "--optimizer": "optimizer",
                 "--optimizer-params": "optimizer_params", "--ctx": "ctx", "--kvstore": "kvstore", "--seed": "seed",
                 "--log-every": "log_every", "--checkpoint": "checkpoint", "--checkpoint-every": "checkpoint_every",
                 "--resume": "resume", "--overwrite": "overwrite", "--lr-schedule": "lr_schedule",
                 "--extend-schedule": "extend_schedule",
                 "--validation-lengths": "validation_lengths",
                 "--validation-samples": "validation_samples", "--validate-every": "validate_every",
                 "--target-max-error": "target_max_error", "--patience": "patience"}
_NEEDS = {"length_weights": ("buckets",), "checkpoint_every": ("checkpoint",), "resume": ("checkpoint",),
          "overwrite": ("checkpoint", "resume"),
          "optimizer_params": ("optimizer",), "num_samples": ("batch_size",),
          "extend_schedule": ("optimizer", "optimizer_params", "lr_schedule"),
          "validate_every": ("validation_lengths",), "target_max_error": ("validation_lengths",),
          "patience": ("validation_lengths",), "validation_samples": ("validation_lengths",),
          "ctx": ("batch_size", "num_samples")}
INTERRUPTED_EXIT = 130
logger = logging.getLogger(__name__)


def _d(setting: str) -> Any:
    """The library's default of a fit setting (the defaults live in one place: FitConfig)."""
    value = FitConfig().flat()[setting]
    return list(value) if isinstance(value, tuple) else value


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="sinlstm-train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--buckets", type=int_list, default=None,
                   help=f"window lengths to train on, one bucket each, e.g. '1-9' or '3,6,9' (default {_d('buckets')})")
    p.add_argument("--length-weights", type=float_list, default=None,
                   help="relative frequency of each bucket, in the order of --buckets (default: equal)")
    p.add_argument("--hidden-sizes", type=int_list, default=None,
                   help="one stacked LSTM layer per size; the last must be 1 (it is the prediction; default "
                        f"{_d('hidden_sizes')})")
    p.add_argument("--batch-size", type=int_at_least(1), default=None,
                   help=f"windows per batch (default {_d('batch_size')})")
    p.add_argument("--num-samples", type=int_at_least(1), default=None,
                   help=f"windows per epoch (default {_d('num_samples')})")
    p.add_argument("--num-epoch", type=int_at_least(1), default=None,
                   help=f"passes over fresh windows (default {_d('num_epoch')})")
    p.add_argument("--label-mode", choices=list(LABEL_MODES), default=None,
                   help="'sequence': a label at every step; 'last': the step after the window only")
    p.add_argument("--feature", choices=list(FEATURES), default=None,
                   help="input at each step: the time stamp t (as the original) or sin(t)/2")
    p.add_argument("--cell", choices=list(CELLS), default=None,
                   help="'auto' (default): 'native' (one C++ operator for the stack) where it builds, else 'fused' "
                        "(one mx.sym.RNN per layer); 'unrolled': mx.rnn.LSTMCell per step; the same parameters, "
                        "outputs equal within about 1e-5 (not bit for bit)")
    p.add_argument("--init", choices=list(INITS), default=None,
                   help="initial weights, drawn from --seed: 'library' (Xavier per gate block; the default) or "
                        "'gluon' (Gluon's default, every weight U[-0.07, 0.07], the original's)")
    p.add_argument("--optimizer", default=None, help="an MXNet optimizer name, e.g. adam or sgd")
    p.add_argument("--optimizer-params", type=json_dict, default=None,
                   help=f"JSON object of optimizer arguments (default {json.dumps(_d('optimizer_params'))})")
    p.add_argument("--lr-schedule", type=json_dict_or_null, default=None,
                   help="JSON learning-rate schedule, e.g. '{\"name\": \"cosine\", \"warmup_steps\": 100}' "
                        "(names: cosine, poly, factor, multifactor; max_update defaults to the run's updates; "
                        f"default {json.dumps(_d('lr_schedule'))}; 'null' for a constant rate)")
    p.add_argument("--extend-schedule", type=float, default=None, metavar="RATE",
                   help="with --resume and a larger --num-epoch than the checkpoint's schedule covers: append a "
                        "cosine from RATE down to the schedule's final rate over the extra updates (e.g. a tenth "
                        "of the peak rate); without it such a resume is refused")
    p.add_argument("--ctx", default=None, help="'cpu', 'cpu:0,1', 'gpu', 'gpu:0,1' (GPUs need the GPU build)")
    p.add_argument("--kvstore", choices=list(KVSTORES), default=None,
                   help="gradient aggregation: local/device for several --ctx devices, dist_* for workers started "
                        "by python -m sinlstm_sym.launch (then only rank 0 prints the report)")
    p.add_argument("--seed", type=int_at_least(0), default=None,
                   help="seed of windows and initial weights (default 0; with --resume, the checkpoint's)")
    p.add_argument("--log-every", type=int_at_least(1), default=None, help="log the mean loss every N batches")
    p.add_argument("--checkpoint", metavar="DIR", default=None,
                   help="write an atomic checkpoint to DIR after every epoch (see sinlstm-evaluate)")
    p.add_argument("--checkpoint-every", type=int_at_least(1), default=None, metavar="N",
                   help="also checkpoint every N batches (needs --checkpoint)")
    p.add_argument("--resume", action="store_true", default=None,
                   help="continue from the latest checkpoint in --checkpoint")
    p.add_argument("--overwrite", action="store_true", default=None,
                   help="start a new run in a --checkpoint directory that holds another run's checkpoints; they are "
                        "removed once this run's first checkpoint is complete (without it, such a directory is "
                        "refused)")
    p.add_argument("--validation-lengths", type=int_list, default=None,
                   help="score held-out windows of these lengths while training (e.g. '1-20'); keeps the best "
                        "parameters (and DIR/best with --checkpoint)")
    p.add_argument("--validation-samples", type=int_at_least(1), default=None, help="held-out windows per length")
    p.add_argument("--validate-every", type=int_at_least(1), default=None, metavar="N",
                   help="also validate every N batches (always at each epoch end)")
    p.add_argument("--target-max-error", type=float, default=None,
                   help="stop once the held-out max abs error is this small")
    p.add_argument("--patience", type=int_at_least(1), default=None,
                   help="stop after this many validations without improvement")
    p.add_argument("--eval-lengths", type=int_list, default=list(range(1, 21)),
                   help="lengths of the error table (fresh windows; lengths that had no batch are marked)")
    p.add_argument("--eval-samples", type=int_at_least(1), default=3000,
                   help="fresh windows per length in the error table")
    p.add_argument("--plot", metavar="FILE.png", type=plot_file, default=None,
                   help="save, per evaluated length, prediction vs label at every step of the worst of 32 fresh "
                        "windows (largest abs error) and the max and median error per step over the 32 (.png, "
                        ".pdf or .svg; needs matplotlib)")
    p.add_argument("--fixed", action="store_true",
                   help="the original 2018 setup: 9 steps, last-step label, batch 300, 300000 windows, one epoch, "
                        "t0 in [0, 1), the optimizer at its default rate (Adam 0.001, SGD 0.01), no schedule, "
                        "Gluon's initial weights (other flags still apply); also prints the outputs at every step "
                        "of the 2018 note's window beside the note's")
    p.add_argument("--progress", choices=["auto", "on", "off"], default="auto",
                   help="progress bar (needs tqdm): 'auto' shows it on a terminal")
    p.add_argument("--compare-gluon", action="store_true",
                   help="also train the original's Gluon loop on the same data and print both loss histories")
    return p


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def _settings(args: argparse.Namespace) -> Dict[str, Any]:
    """The fit settings given on the command line (flags left out keep the configuration's defaults)."""
    given = {setting: getattr(args, flag[2:].replace("-", "_")) for flag, setting in FLAG_SETTINGS.items()}
    if given["seed"] is None and not args.resume:  # a resumed run keeps its checkpoint's seed
        given["seed"] = DEFAULT_CLI_SEED
    if "--lr-schedule" in args.raw_argv:  # 'null' (None) is a value here: a constant rate
        given.setdefault("lr_schedule", None)
        return {k: v for k, v in given.items() if v is not None or k == "lr_schedule"}
    return {k: v for k, v in given.items() if v is not None}


def check_settings(parser: argparse.ArgumentParser, args: argparse.Namespace) -> FitConfig:
    """Every flag checked (naming the flag) before anything is trained; the whole configuration."""
    settings = _settings(args)
    base = FitConfig.original() if args.fixed else FitConfig()
    for flag, setting in FLAG_SETTINGS.items():
        if setting not in settings:
            continue
        needed = {k: settings[k] for k in _NEEDS.get(setting, ()) if k in settings}
        try:
            base.replace(**{setting: settings[setting]}, **needed).check_memory()
        except (ValueError, TypeError) as err:
            fail(parser, flag, str(err))
    try:
        config = base.replace(**settings).check_memory()
    except (ValueError, TypeError) as err:
        refuse(parser, err)
    check_output_flags(parser, None if args.resume else args.checkpoint, args.plot)
    if args.checkpoint is not None and not args.resume:
        try:
            RunDirectory(args.checkpoint).check_new_run(bool(args.overwrite))
        except ValueError as err:
            fail(parser, "--checkpoint", str(err))
    check_report_flags(parser, args, config)
    return config


def check_report_flags(parser: argparse.ArgumentParser, args: argparse.Namespace, config: FitConfig) -> None:
    """Refuse now an error table that would not fit in memory, or a --compare-gluon the reference cannot run."""
    try:
        check_evaluation(args.eval_lengths, args.eval_samples, config.model.hidden_sizes, config.model.cell,
                         lengths_name="--eval-lengths", samples_name="--eval-samples")
    except ValueError as err:
        fail(parser, "--eval-lengths/--eval-samples", str(err))
    if args.compare_gluon:
        try:
            check_reference_settings(config.optimizer.name, list(config.run.ctx))
        except ValueError as err:
            fail(parser, "--compare-gluon", str(err))


def refuse(parser: argparse.ArgumentParser, err: BaseException) -> NoReturn:
    """A one-line error naming the flags whose settings ``err`` names."""
    flags = flags_named(str(err), FLAG_SETTINGS)
    if flags:
        fail(parser, flags, str(err))
    parser.error(str(err))


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.raw_argv = argv
    config = check_settings(parser, args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    progress_bar = args.progress == "on" or (args.progress == "auto" and sys.stderr.isatty())
    try:
        result = fit(config, progress_bar=progress_bar)
    except TrainingInterrupted as stop:
        how = "" if stop.signum == signal.SIGINT else f" by {signal.Signals(stop.signum).name}"
        where = f"interrupted{how} at epoch {stop.epoch}, batch {stop.batch}"
        if stop.checkpoint is not None:
            print(f"{where}; checkpoint written to {stop.checkpoint}\nresume with: {resume_command(argv)}",
                  file=sys.stderr)
        else:
            print(f"{where}; nothing was saved (pass --checkpoint DIR to be able to resume)", file=sys.stderr)
        return 128 + stop.signum  # 130 for Ctrl-C, 143 for SIGTERM, as a shell reports a process they ended
    except KeyboardInterrupt as err:  # a second signal: 130 for Ctrl-C, 143 for SIGTERM
        print("interrupted", file=sys.stderr)
        return 128 + err.signum if isinstance(err, StopAtOnce) else INTERRUPTED_EXIT
    except DiskFullError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError, TypeError) as err:
        refuse(parser, err)
    except (NonFiniteLossError, TrainingDivergedError, UpdaterError) as err:  # (MXNet printed an updater's traceback)
        print(f"{parser.prog}: {err}", file=sys.stderr)
        return 1
    if result.rank != 0:
        return 0
    if args.compare_gluon:
        compare_gluon(result)
    updates = result.progress.global_batch
    print(f"\ntrained {updates} updates ({updates * result.config.data.batch_size} windows) in "
          f"{result.progress.train_seconds:.1f} s; cell {result.config.model.cell}")
    predictor = result.predictor()
    logger.info("scoring %d fresh windows per length on lengths %s", args.eval_samples, args.eval_lengths)
    seed = result.config.run.seed
    assert seed is not None  # fit settles it
    rows = per_length_error(predictor, args.eval_lengths, num_samples=args.eval_samples, seed=seed + 1)
    target = "last step" if result.config.model.label_mode == "last" else "every step"
    print(f"\nerror per length on {args.eval_samples} fresh windows each ({target}); trained = had a batch")
    print(format_error_table(rows))
    if args.fixed:
        print_note_window(result)
    if args.plot:
        from ..infer.plotting import plot_predictions
        print(f"\nsaved {plot_predictions(predictor, args.eval_lengths, args.plot, seed=seed)}")
    return 0


def compare_gluon(result: Any) -> None:
    """Train the original's Gluon loop on the same windows from the same weights; print both loss traces."""
    from ..reference.gluon import train_gluon_reference
    c = result.config
    if c.model.feature != "time" or c.data.length_weights is not None or c.optimizer.lr_schedule is not None \
            or c.model.step_weight or (c.data.t_low, c.data.t_high) != ORIGINAL_T_RANGE:
        print("note: the Gluon reference trains like the original (feature 'time', equal bucket weights, a "
              "constant rate, no step weights, t0 in [0, 1)); use --fixed to compare like for like",
              file=sys.stderr)
    logger.info("training the original's Gluon loop on the same windows from the same initial weights")
    reference = train_gluon_reference(
        buckets=c.data.buckets, hidden_sizes=c.model.hidden_sizes, batch_size=c.data.batch_size,
        num_samples=c.data.num_samples, num_epoch=c.run.num_epoch, label_mode=c.model.label_mode,
        optimizer=c.optimizer.name, optimizer_params=c.optimizer.params, ctx=list(c.run.ctx), seed=c.run.seed,
        log_every=c.run.log_every, forget_bias=c.model.forget_bias, init=c.model.init)
    print("\nloss at each log point (same windows, same initial weights)")
    print(f"{'epoch':>5} {'batch':>6} {'BucketingModule':>16} {'Gluon reference':>16}")
    for ours, theirs in zip(result.loss_history, reference.loss_history):
        print(f"{ours.epoch:>5} {ours.batch:>6} {ours.loss:>16.6f} {theirs.loss:>16.6f}")


def print_note_window(result: Any) -> None:
    """The outputs at every step of the 2018 note's window (t0 = NOTE_T0), this run's beside the note's."""
    model, length = result.config.model, len(NOTE_STEPS["label"])
    assert result.config.run.seed is not None  # fit records the seed it drew
    initial = init_params(model.hidden_sizes, result.config.run.seed, model.forget_bias, init=model.init)
    rows = [(f"note: {name}", values) for name, values in NOTE_STEPS.items()] + [
        ("label sin(t)/2", half_sine(NOTE_T0 + DEFAULT_STEP * np.arange(1, length + 1))),
        ("trained model", step_outputs(result.arg_params(), model, NOTE_T0, length)),
        ("untrained model", step_outputs(initial, model, NOTE_T0, length))]
    print(f"\noutputs at every step of one window, t0 = {NOTE_T0}: the 2018 note's rows, then this run's "
          "(a 'last' model read at every step)")
    print(f"{'step':<22}" + "".join(f"{k:>9}" for k in range(1, length + 1)))
    for name, values in rows:
        print(f"{name:<22}" + "".join(f"{v:>9.4f}" if abs(v) >= 1e-3 else f"{v:>9.1e}" for v in values))


if __name__ == "__main__":
    sys.exit(main())
