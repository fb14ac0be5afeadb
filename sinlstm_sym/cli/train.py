"""``sinlstm-train`` (also ``python examples/bucket_train.py``): train the sine predictor, print its error.

Trains the stacked LSTM on variable-length windows with the library's recipe (FitConfig's defaults:
lengths 1..9, 12, 16, 20 with a label at every step, Adam at 0.03 with 100 warm-up updates and a
cosine decay, two epochs of 100000 windows in batches of 100), then prints the error per length on
fresh windows (lengths 1..20 by default; lengths that had no training batch are marked). The model
predicts the next value: its output at step k is sin(t_k + 0.01)/2. --fixed is the original 2018
setup (FitConfig.original()) and also prints the outputs at every step of the 2018 note's window
beside the note's.

Every flag is checked before anything is trained: a mistake exits with code 2 and one line naming
the flag. Ctrl-C or SIGTERM stops at the next batch boundary (with a checkpoint under --checkpoint,
and the command that resumes) and exits 130 or 143; other failures while training exit 1.

Examples
--------
sinlstm-train --plot predictions.png
sinlstm-train --buckets 1-9 --num-epoch 1 --checkpoint run1
sinlstm-train --checkpoint run1 --resume
sinlstm-train --fixed --optimizer sgd --log-every 20
"""
import argparse
import contextlib
import logging
import signal
import sys
from typing import Any, Dict, List, Optional

import numpy as np

from ..config.fit_config import FitConfig
from ..constants import DEFAULT_CLI_SEED, DEFAULT_STEP, NOTE_STEPS, NOTE_T0, ORIGINAL_T_RANGE
from ..data.windows import half_sine
from ..infer.evaluation import format_error_table, per_length_error, step_outputs
from ..reference.gluon import check_reference_settings
from ..config.limits import check_evaluation
from ..recurrence.params import init_params
from ..train.loop import TrainingInterrupted
from ..train.fit import fit_session, resume_config
from .args import Parser, check_output_flags, fail, int_at_least, int_list, plot_file, resume_command
from .flags import add_setting_flags, flag_of, given_settings, refuse_setting
from .runner import failure_exit

# The settings offered as flags, in --help's order; their help, types, bounds and choices come from FitConfig.
SETTING_FLAGS = ("buckets", "length_weights", "hidden_sizes", "batch_size", "num_samples", "num_epoch", "label_mode",
                 "feature", "cell", "init", "optimizer", "optimizer_params", "lr_schedule", "extend_schedule", "ctx",
                 "kvstore", "seed", "log_every", "checkpoint", "checkpoint_every", "resume", "overwrite",
                 "validation_lengths", "validation_samples", "validate_every", "target_max_error", "patience")
FLAG_SETTINGS = {flag_of(setting): setting for setting in SETTING_FLAGS}
INTERRUPTED_EXIT = 130
logger = logging.getLogger(__name__)


def _add_report_flags(p: argparse.ArgumentParser) -> None:
    """The flags of what sinlstm-train does around fit: the error table, the plot, --fixed, progress, Gluon."""
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


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="sinlstm-train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    shown = dict(FitConfig().flat(), seed=DEFAULT_CLI_SEED)
    add_setting_flags(p, SETTING_FLAGS, shown)
    _add_report_flags(p)
    return p


def _settings(args: argparse.Namespace) -> Dict[str, Any]:
    """The fit settings given on the command line (flags left out keep the configuration's defaults)."""
    given = given_settings(args, FLAG_SETTINGS)
    if "seed" not in given and not given.get("resume"):  # a resumed run keeps its checkpoint's seed
        given["seed"] = DEFAULT_CLI_SEED
    return given


def check_settings(parser: argparse.ArgumentParser, args: argparse.Namespace) -> FitConfig:
    """The whole configuration, every setting checked (a bad one refused naming its flag) before anything is
    trained; also the flags of the report around the training."""
    settings = _settings(args)
    base = FitConfig.original() if args.fixed else FitConfig()
    try:  # a resumed run takes its checkpoint's settings; the flags given replace them
        config = resume_config(**settings) if settings.get("resume") else base.replace(**settings)
    except (FileNotFoundError, ValueError, TypeError) as err:
        refuse_setting(parser, err, FLAG_SETTINGS, settings)
    check_output_flags(parser, None, args.plot)
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


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    config = check_settings(parser, args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    progress_bar = args.progress == "on" or (args.progress == "auto" and sys.stderr.isatty())
    try:
        with contextlib.ExitStack() as stack:
            try:  # every check of the run (devices, checkpoint directory, resume, data): a refusal is exit 2
                session = stack.enter_context(fit_session(config, progress_bar=progress_bar))
            except (FileNotFoundError, ValueError, TypeError) as err:
                refuse_setting(parser, err, FLAG_SETTINGS, given_settings(args, FLAG_SETTINGS))
            result = session.train()
    except TrainingInterrupted as stop:
        return _interrupted(stop, argv)
    except (KeyboardInterrupt, Exception) as err:  # a second signal (130, 143), a full disk, a failed training
        return failure_exit(parser.prog, err)  # one line and its exit code; a bug keeps its traceback
    if result.rank == 0:
        report(result, args)
    return 0


def _interrupted(stop: TrainingInterrupted, argv: List[str]) -> int:
    """Say where the run stopped and how to resume it; the exit code a shell reports for the signal."""
    how = "" if stop.signum == signal.SIGINT else f" by {signal.Signals(stop.signum).name}"
    where = f"interrupted{how} at epoch {stop.epoch}, batch {stop.batch}"
    if stop.checkpoint is not None:
        print(f"{where}; checkpoint written to {stop.checkpoint}\nresume with: "
              f"{resume_command([a for a in argv if not _is_overwrite_flag(a)])}", file=sys.stderr)
    else:
        print(f"{where}; nothing was saved (pass --checkpoint DIR to be able to resume)", file=sys.stderr)
    return 128 + stop.signum  # 130 for Ctrl-C, 143 for SIGTERM, as a shell reports a process they ended


def _is_overwrite_flag(arg: str) -> bool:
    """``--overwrite`` or an abbreviation argparse accepts for it (a resume continues, it never overwrites)."""
    return arg.startswith("--ov") and "--overwrite".startswith(arg)


def report(result: Any, args: argparse.Namespace) -> None:
    """What a finished run prints: the Gluon comparison, the error table, the note's window, the plot."""
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
