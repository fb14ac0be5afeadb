"""``sinlstm-train`` (and ``python examples/bucket_train.py``):
train the stacked-LSTM sine predictor on variable-length windows with a BucketingModule.

Defaults: buckets 1..9, per-step ("sequence") labels, Adam, one epoch of 300000 windows.
Prints progress, then the error per length on fresh windows, trained and unseen lengths.
"""
import argparse
import logging
import sys

from typing import List, Optional

from ..constants import CELLS, DEFAULT_CELL, FEATURES, KVSTORES, LABEL_MODES
from ..evaluation import format_error_table, per_length_error
from ..training import fit
from .args import float_list, int_list, json_dict


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="sinlstm-train", description=__doc__,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--buckets", type=int_list, default=list(range(1, 10)),
                   help="window lengths to train on, one bucket each, e.g. '1-9' or '3,6,9'")
    p.add_argument("--length-weights", type=float_list, default=None,
                   help="relative frequency of each bucket, in the order of --buckets (default: equal)")
    p.add_argument("--hidden-sizes", type=int_list, default=[10, 20, 1],
                   help="one stacked LSTM layer per size; the last must be 1 (it is the prediction)")
    p.add_argument("--batch-size", type=int, default=300, help="windows per batch")
    p.add_argument("--num-samples", type=int, default=300000, help="windows per epoch")
    p.add_argument("--num-epoch", type=int, default=1, help="passes over fresh windows")
    p.add_argument("--label-mode", choices=list(LABEL_MODES), default="sequence",
                   help="'sequence': a label at every step; 'last': the step after the window only")
    p.add_argument("--feature", choices=list(FEATURES), default="time",
                   help="input at each step: the time stamp t (as the original) or sin(t)/2")
    p.add_argument("--cell", choices=list(CELLS), default=DEFAULT_CELL,
                   help="'fused': one mx.sym.RNN per layer; 'unrolled': mx.rnn.LSTMCell per step (same numbers)")
    p.add_argument("--optimizer", default="adam", help="any MXNet optimizer name, e.g. adam or sgd")
    p.add_argument("--optimizer-params", type=json_dict, default=None,
                   help="JSON object of optimizer arguments, e.g. '{\"learning_rate\": 0.01}' (default: MXNet's)")
    p.add_argument("--ctx", default="cpu", help="'cpu', 'gpu', 'gpu:0,1' (the GPU build must be installed)")
    p.add_argument("--kvstore", choices=list(KVSTORES), default="local",
                   help="gradient aggregation: local/device for several --ctx devices, dist_* for workers started "
                        "by python -m sinlstm_sym.launch (then only rank 0 prints the report)")
    p.add_argument("--seed", type=int, default=0, help="seed of windows and initial weights")
    p.add_argument("--log-every", type=int, default=100, help="log the mean loss every N batches")
    p.add_argument("--checkpoint", metavar="DIR", default=None,
                   help="write an atomic checkpoint to DIR after every epoch (see python -m sinlstm_sym.evaluate)")
    p.add_argument("--checkpoint-every", type=int, default=None, metavar="N",
                   help="also checkpoint every N batches (needs --checkpoint)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --checkpoint")
    p.add_argument("--eval-lengths", type=int_list, default=list(range(1, 10)) + [12, 16, 20],
                   help="lengths of the error table (fresh windows; unseen lengths are marked)")
    p.add_argument("--eval-samples", type=int, default=3000, help="fresh windows per length in the error table")
    p.add_argument("--plot", metavar="FILE.png", default=None,
                   help="save prediction vs label per step for one window per evaluated length (needs matplotlib)")
    p.add_argument("--fixed", action="store_true",
                   help="the original's fixed task: buckets [9], label-mode last (overrides those flags)")
    p.add_argument("--progress", choices=["auto", "on", "off"], default="auto",
                   help="progress bar (needs tqdm): 'auto' shows it on a terminal")
    p.add_argument("--compare-gluon", action="store_true",
                   help="also train the original's Gluon loop on the same data and print both loss histories")
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args.fixed:
        args.buckets, args.label_mode = [9], "last"
    common = dict(buckets=args.buckets, hidden_sizes=args.hidden_sizes, batch_size=args.batch_size,
                  num_samples=args.num_samples, num_epoch=args.num_epoch, label_mode=args.label_mode,
                  optimizer=args.optimizer, optimizer_params=args.optimizer_params, ctx=args.ctx, seed=args.seed,
                  log_every=args.log_every)
    progress_bar = args.progress == "on" or (args.progress == "auto" and sys.stderr.isatty())
    saving = dict(checkpoint=args.checkpoint, checkpoint_every=args.checkpoint_every, resume=args.resume,
                  kvstore=args.kvstore)
    try:
        result = fit(feature=args.feature, cell=args.cell, length_weights=args.length_weights,
                     progress_bar=progress_bar, **common, **saving)
    except (FileNotFoundError, ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if result.rank != 0:
        return 0
    if args.compare_gluon:
        from ..gluon_reference import train_gluon_reference
        if args.feature != "time" or args.length_weights is not None:
            print("note: the Gluon reference uses feature='time' and equal bucket weights", file=sys.stderr)
        reference = train_gluon_reference(**common)
        print("\nloss at each log point (same windows, same initial weights)")
        print(f"{'epoch':>5} {'batch':>6} {'BucketingModule':>16} {'Gluon reference':>16}")
        for ours, theirs in zip(result.loss_history, reference.loss_history):
            print(f"{ours.epoch:>5} {ours.batch:>6} {ours.loss:>16.6f} {theirs.loss:>16.6f}")
    predictor = result.predictor()
    rows = per_length_error(predictor, args.eval_lengths, num_samples=args.eval_samples, seed=args.seed + 1)
    target = "last step" if args.label_mode == "last" else "every step"
    print(f"\nerror per length on {args.eval_samples} fresh windows each ({target})")
    print(format_error_table(rows))
    if args.plot:
        from ..plotting import plot_predictions
        print(f"\nsaved {plot_predictions(predictor, args.eval_lengths, args.plot, seed=args.seed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
