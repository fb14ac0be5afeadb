"""SafeBucketingModule as a drop-in in applications nobody here wrote: their test suites, and a seeded
train + translate run, once with MXNet's BucketingModule and once swapped by one assignment.

    python bench/real_apps_drop_in.py sockeye --tree SOCKEYE_1_18_SRC --deps DIR [--tests PATHS...]
    python bench/real_apps_drop_in.py sockeye-numbers --tree SOCKEYE_1_18_SRC --deps DIR [--rounds 3]
    python bench/real_apps_drop_in.py keras --tree KERAS_MXNET_SRC --deps DIR [--tests PATHS...]

``--tree`` is a source tree of the application (e.g. ``git archive 1.18.115`` of awslabs/sockeye, or
awslabs/keras-apache-mxnet), ``--deps`` a directory of its pure-Python dependencies installed with
``pip install --target DIR --no-deps`` (Sockeye: portalocker, sacrebleu==1.3.6, pyyaml; keras-mxnet:
h5py, keras_applications, keras_preprocessing, six, pyyaml). Nothing of the applications is copied
here: this script writes a ``conftest.py`` into the given tree that, with ``BUCKETING_MODULE=safe``,
sets ``mx.mod.BucketingModule = SafeBucketingModule`` (and, for keras-mxnet, the ``collections``
aliases Python 3.11 removed), runs the tests in both modes one after the other and compares the
outcome of every test. ``sockeye-numbers`` trains two small models (a transformer with word-based
batching, an RNN with attention) and translates a test set (beam 1 and 5) in interleaved rounds,
and compares the parameter files, translations and metrics (all but the clock fields) by MD5; a
last swapped run times the module's own checks.
"""
import argparse
import hashlib
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

SWAP = '''# Written by sinlstm-sym's bench/real_apps_drop_in.py: the one-assignment swap (BUCKETING_MODULE=safe).
import collections
import collections.abc
import os

for _name in ("Iterable", "Mapping", "MutableMapping", "Sequence", "Callable"):  # removed in Python 3.10
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))
try:  # in both modes, so that they start alike
    import sockeye.multiprocessing_utils as _mp
    _mp.initialize()  # Sockeye asks for this before mxnet is imported
except ImportError:
    pass
if os.environ.get("BUCKETING_MODULE") == "safe":
    import mxnet as mx
    from sinlstm_sym.model.bucketing import SafeBucketingModule
    mx.mod.BucketingModule = mx.module.BucketingModule = SafeBucketingModule
    _counts = {"modules": 0, "forwards": 0}
    _init, _forward = SafeBucketingModule.__init__, SafeBucketingModule.forward

    def _counting_init(self, *args, **kwargs):
        _counts["modules"] += 1
        _init(self, *args, **kwargs)

    def _counting_forward(self, data_batch, is_train=None):
        _counts["forwards"] += 1
        _forward(self, data_batch, is_train=is_train)
    SafeBucketingModule.__init__, SafeBucketingModule.forward = _counting_init, _counting_forward

    def pytest_sessionfinish(session, exitstatus):
        print(f"\\nSWAP-COUNTS instances={_counts['modules']} forwards={_counts['forwards']}")
'''
RUNNER = '''import sys, time
sys.path.insert(0, {tree!r})
import conftest  # noqa: F401  (the swap)
import mxnet  # noqa: F401,E402  (imported before the clock starts, in both modes)
if len(sys.argv) > 2 and sys.argv[2] == "--time-checks":
    del sys.argv[2]
    import atexit
    from sinlstm_sym.model.bucketing import SafeBucketingModule
    spent, depth = [0.0], [0]

    def timed(method):
        def wrapper(self, *args, **kwargs):
            depth[0] += 1
            start = time.perf_counter()
            try:
                return method(self, *args, **kwargs)
            finally:
                depth[0] -= 1
                spent[0] += time.perf_counter() - start if depth[0] == 0 else 0.0
        return wrapper
    for name in ("check_batch_once", "_check_new_bucket"):
        setattr(SafeBucketingModule, name, timed(getattr(SafeBucketingModule, name)))
    generate, in_sym_gen = SafeBucketingModule._sym_gen_once, [0.0]

    def sym_gen_once(self, key):  # the user's sym_gen runs in stock MXNet too (once per bucket): not overhead
        start = time.perf_counter()
        try:
            return generate(self, key)
        finally:
            in_sym_gen[0] += time.perf_counter() - start if depth[0] > 0 else 0.0
    SafeBucketingModule._sym_gen_once = sym_gen_once
    atexit.register(lambda: print(f"CHECKS {{spent[0] - in_sym_gen[0]:.3f}}", file=sys.stderr))
import runpy
module = sys.argv[1]
sys.argv = [module] + sys.argv[2:]
start = time.perf_counter()
try:
    runpy.run_module(module, run_name="__main__")
finally:
    print(f"ELAPSED {{time.perf_counter() - start:.2f}}", file=sys.stderr)
'''
SOCKEYE_TESTS = ["test/integration", "test/unit/test_inference.py", "test/unit/test_translate.py",
                 "test/unit/test_data_io.py"]
KERAS_TESTS = ["tests/keras/test_sequential_model.py", "tests/keras/engine/test_training.py",
               "tests/test_model_saving.py", "tests/test_loss_masking.py", "tests/test_loss_weighting.py",
               "tests/integration_tests/test_temporal_data_tasks.py",
               "tests/integration_tests/test_vector_data_tasks.py", "tests/test_dynamic_trainability.py",
               "tests/keras/test_callbacks.py"]
MODELS = {
    "transformer": "--encoder transformer --decoder transformer --num-layers 1 --transformer-model-size 16 "
                   "--transformer-attention-heads 2 --transformer-feed-forward-num-hidden 32 --num-embed 16 "
                   "--batch-type word --batch-size 160",
    "rnn": "--encoder rnn --decoder rnn --num-layers 1 --rnn-cell-type lstm --rnn-num-hidden 16 --num-embed 8 "
           "--rnn-attention-type mlp --rnn-attention-num-hidden 16 --batch-type sentence --batch-size 16"}


def environment(tree: Path, deps: Path, mode: str) -> Dict[str, str]:
    env = dict(os.environ, PYTHONPATH=f"{deps}{os.pathsep}{tree}", BUCKETING_MODULE=mode, OMP_NUM_THREADS="1",
               MXNET_CPU_WORKER_NTHREADS="1", KERAS_BACKEND="mxnet")
    if (tree / "keras").is_dir():  # keras-mxnet reads ~/.keras/keras.json: one of its own, MXNet's layout
        home = tree / ".bench_home"
        (home / ".keras").mkdir(parents=True, exist_ok=True)
        (home / ".keras" / "keras.json").write_text('{"backend": "mxnet", "image_data_format": "channels_first", '
                                                    '"floatx": "float32", "epsilon": 1e-07}')
        env["HOME"] = str(home)
    return env


def run_suite(tree: Path, deps: Path, tests: List[str]) -> None:
    """Both modes, one after the other; the outcome of every test side by side."""
    (tree / "conftest.py").write_text(SWAP)
    outcomes: Dict[str, Dict[str, str]] = {}
    for mode in ("stock", "safe"):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-o", "addopts=", "-p", "no:cacheprovider", "-q", "-rA",
                               *tests], cwd=tree, env=environment(tree, deps, mode), capture_output=True, text=True)
        seconds = time.perf_counter() - start
        (tree / f".bench_pytest_{mode}.log").write_text(proc.stdout + proc.stderr)
        outcomes[mode] = {name: result for result, name in  # names hold spaces; a failure adds ' - reason'
                          re.findall(r"^(PASSED|FAILED|ERROR) ([^\s:]\S*::.+?)(?: - .*)?$", proc.stdout, re.M)}
        if not outcomes[mode]:
            raise SystemExit(f"{mode}: no test ran (a missing dependency?); see {tree}/.bench_pytest_{mode}.log")
        counts = re.findall(r"SWAP-COUNTS .*", proc.stdout)
        passed = sum(1 for r in outcomes[mode].values() if r == "PASSED")
        final = re.findall(r"^=* ?(\d+ (?:failed|passed).*?) in [\d.]+s", proc.stdout, re.M)
        print(f"{mode:5s}: {passed} passed, {len(outcomes[mode]) - passed} failed or errors, {seconds:.1f} s; pytest: "
              f"{final[-1] if final else '?'}" + (f"; {counts[0]}" if counts else "") + f" (log: {tree}/.bench_pytest_"
              f"{mode}.log)")
    lost = sorted(n for n, r in outcomes["stock"].items() if r == "PASSED" and outcomes["safe"].get(n) != "PASSED")
    gained = sorted(n for n, r in outcomes["safe"].items() if r == "PASSED" and outcomes["stock"].get(n) != "PASSED")
    print(f"passed stock but not swapped: {lost or 'none'}; passed swapped but not stock: {gained or 'none'}")


def digits_corpus(directory: Path) -> None:
    rng = random.Random(7)
    for name, count, high in (("train", 2000, 12), ("dev", 100, 12), ("test", 200, 15)):
        lines = [" ".join(str(rng.randint(0, 9)) for _ in range(rng.randint(1, high))) for _ in range(count)]
        for side in ("src", "tgt"):
            (directory / f"{name}.{side}").write_text("\n".join(lines) + "\n")


def sockeye_run(tree: Path, deps: Path, work: Path, mode: str, model: str, tag: str,
                time_checks: bool = False) -> Tuple[float, float, float, float]:
    """Train then translate (beam 1 and 5): seconds of training, of translating, and in the checks of each."""
    out, runner, flag = work / f"{model}-{tag}-{mode}", work / "runner.py", ["--time-checks"] if time_checks else []
    env, elapsed, checks = environment(tree, deps, mode), [], []
    train = ["-s", "train.src", "-t", "train.tgt", "-vs", "dev.src", "-vt", "dev.tgt", "-o", str(out), "--use-cpu",
             "--seed", "1", "--max-seq-len", "16", "--decode-and-evaluate", "0", "--optimizer", "adam",
             "--initial-learning-rate", "0.005", "--checkpoint-interval", "150", "--max-updates", "600",
             "--bucket-width", "4", "--overwrite-output", *MODELS[model].split()]
    commands = [["sockeye.train", *flag, *train]] + [
        ["sockeye.translate", *flag, "-m", str(out), "--input", "test.src", "--output", str(out / f"test.beam{b}.txt"),
         "--use-cpu", "--beam-size", str(b), "--batch-size", "7", "--output-type", "translation_with_score"]
        for b in (1, 5)]
    for command in commands:
        proc = subprocess.run([sys.executable, str(runner), *command], cwd=work, env=env, capture_output=True,
                              text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{mode} {command[0]} failed:\n{proc.stderr[-3000:]}")
        elapsed.append(float(re.findall(r"ELAPSED (\S+)", proc.stderr)[-1]))
        checks.append(sum(float(x) for x in re.findall(r"CHECKS (\S+)", proc.stderr)))
    return elapsed[0], sum(elapsed[1:]), checks[0], sum(checks[1:])


def fingerprint(out: Path) -> Dict[str, str]:
    """MD5 of every parameter file and translation, and of the metrics without their clock and memory fields."""
    prints = {p.name: hashlib.md5(p.read_bytes()).hexdigest()
              for p in sorted(out.glob("params.*")) + sorted(out.glob("test.beam*.txt"))}
    metrics = ["\t".join(f for f in line.split("\t") if not f.startswith(("time-elapsed", "used-")))
               for line in (out / "metrics").read_text().splitlines()]
    prints["metrics"] = hashlib.md5("\n".join(metrics).encode()).hexdigest()
    return prints


def sockeye_numbers(tree: Path, deps: Path, rounds: int) -> None:
    work = tree / ".bench_numbers"
    work.mkdir(exist_ok=True)
    (tree / "conftest.py").write_text(SWAP)
    (work / "runner.py").write_text(RUNNER.format(tree=str(tree)))
    digits_corpus(work)
    for model in MODELS:
        times: Dict[str, List[Tuple[float, float, float, float]]] = {"stock": [], "safe": []}
        identical = []
        for r in range(rounds):
            for mode in ("stock", "safe"):
                times[mode].append(sockeye_run(tree, deps, work, mode, model, f"r{r}"))
            prints = {mode: fingerprint(work / f"{model}-r{r}-{mode}") for mode in ("stock", "safe")}
            identical.append(prints["stock"] == prints["safe"])
        same_rounds = fingerprint(work / f"{model}-r0-stock") == fingerprint(work / f"{model}-r{rounds - 1}-stock")
        train, translate, train_checks, translate_checks = sockeye_run(tree, deps, work, "safe", model, "timed",
                                                                       time_checks=True)
        print(f"{model}: {len(prints['stock'])} files identical stock vs swapped in {sum(identical)}/{rounds} rounds "
              f"(stock reproducible across rounds: {same_rounds}); wall train stock "
              f"{[round(t[0], 1) for t in times['stock']]} swapped {[round(t[0], 1) for t in times['safe']]}, "
              f"translate stock {[round(t[1], 1) for t in times['stock']]} swapped "
              f"{[round(t[1], 1) for t in times['safe']]}; the module's own checks (sym_gen not counted) in one "
              f"swapped run: training {train_checks:.3f} s of {train:.1f} s, translating {translate_checks:.3f} s of "
              f"{translate:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["sockeye", "sockeye-numbers", "keras"])
    parser.add_argument("--tree", required=True, type=Path, help="the application's source tree")
    parser.add_argument("--deps", required=True, type=Path, help="pip install --target directory of its dependencies")
    parser.add_argument("--tests", nargs="*", help="test paths inside the tree (default: those using BucketingModule)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of sockeye-numbers")
    args = parser.parse_args()
    tree, deps = args.tree.resolve(), args.deps.resolve()
    for path, what in ((tree, "--tree"), (deps, "--deps")):
        if not path.is_dir():
            parser.error(f"{what} {path} is not a directory")
    if args.rounds < 1:
        parser.error(f"--rounds must be >= 1, got {args.rounds}")
    if args.part == "sockeye-numbers":
        sockeye_numbers(tree, deps, args.rounds)
    else:
        run_suite(tree, deps, args.tests or (SOCKEYE_TESTS if args.part == "sockeye" else KERAS_TESTS))


if __name__ == "__main__":
    main()
