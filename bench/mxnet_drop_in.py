"""SafeBucketingModule as a drop-in: MXNet 1.9.1's own BucketingModule tests and bucketing examples,
run unchanged from an MXNet checkout with ``mx.mod.BucketingModule`` swapped for ours.

    python bench/mxnet_drop_in.py --mxnet-git PATH_TO_MXNET_GIT [--part tests|examples|all]

Nothing of MXNet is copied into this repository: the files are read from the given git
checkout (tag ``--tag``, default 1.9.1) into a temporary directory and run there, once with
the stock class and once with ``SafeBucketingModule`` (a ``conftest.py`` / runner written by
this script does the swap). ``--part tests`` runs the five BucketingModule tests with pytest
(MXNet's ``common.py`` needs ``nose``; a two-function stand-in is written, nose does not
import on Python 3.11). ``--part examples`` runs ``lstm_bucketing.py`` and
``cudnn_rnn_bucketing.py`` (layout TN) on a seeded synthetic corpus (``data/sherlockholmes.*.txt``
written here) and compares the validation perplexity of every epoch: they must be equal.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List

FILES = ["tests/python/unittest/test_module.py", "tests/python/unittest/common.py",
         "tests/python/common/models.py", "tests/python/train/test_bucketing.py",
         "example/rnn/bucketing/lstm_bucketing.py", "example/rnn/bucketing/cudnn_rnn_bucketing.py"]
TESTS = ["unittest/test_module.py::test_bucket_module_ctx_group", "unittest/test_module.py::test_bucketing_save_load",
         "unittest/test_module.py::test_module_switch_bucket", "unittest/test_module.py::test_bucket_module_grad_req",
         "train/test_bucketing.py::test_bucket_module"]

SWAP = '''import os
import mxnet as mx
if os.environ.get("BUCKETING_MODULE") == "safe":
    from sinlstm_sym.model.bucketing import SafeBucketingModule
    mx.mod.BucketingModule = mx.module.BucketingModule = SafeBucketingModule
'''
NOSE_TOOLS = '''import functools


def make_decorator(func):
    def decorate(newfunc):
        return functools.wraps(func)(newfunc)
    return decorate


def assert_raises(expected, func=None, *args, **kwargs):
    import pytest
    if func is None:
        return pytest.raises(expected)
    with pytest.raises(expected):
        func(*args, **kwargs)
'''
RUNNER = '''import random, runpy, sys
import numpy as np
import mxnet as mx
import swap_module  # noqa: F401  (the swap, by BUCKETING_MODULE)
random.seed(0); np.random.seed(0); mx.random.seed(0)
score = mx.module.BaseModule.score


def full_precision_score(self, *args, **kwargs):  # fit logs the metric with %f; print every digit too
    result = score(self, *args, **kwargs)
    for name, value in result:
        print(f"score {name}={value!r}", file=sys.stderr)
    return result


mx.module.BaseModule.score = full_precision_score
script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
'''


def extract(git_dir: str, tag: str, work: Path) -> None:
    for name in FILES:
        text = subprocess.run(["git", "-C", git_dir, "show", f"{tag}:{name}"], check=True, capture_output=True,
                              text=True).stdout
        target = work / name.replace("tests/python/", "").replace("example/rnn/bucketing/", "examples/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    (work / "nose").mkdir(exist_ok=True)
    (work / "nose" / "__init__.py").write_text("")
    (work / "nose" / "tools.py").write_text(NOSE_TOOLS)
    (work / "swap_module.py").write_text(SWAP)
    (work / "conftest.py").write_text("import sys, os\nsys.path.insert(0, os.path.dirname(__file__))\n"
                                      "import swap_module  # noqa: F401\n")
    (work / "examples" / "run_example.py").write_text(RUNNER)


def environment(work: Path, mode: str) -> Dict[str, str]:
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, BUCKETING_MODULE=mode, OMP_NUM_THREADS="1", MXNET_SUBGRAPH_VERBOSE="0",
               PYTHONPATH=os.pathsep.join([str(work), str(root), os.environ.get("PYTHONPATH", "")]))
    return env


def run_tests(work: Path) -> None:
    for mode in ("stock", "safe"):
        used = subprocess.run([sys.executable, "-c", "import swap_module, mxnet as mx; print(mx.mod.BucketingModule)"],
                              cwd=work, env=environment(work, mode), capture_output=True, text=True).stdout.strip()
        print(f"[{mode}] mx.mod.BucketingModule is {used}")
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", *TESTS],
                              cwd=work, env=environment(work, mode), capture_output=True, text=True)
        passed = [line for line in proc.stdout.splitlines() if line.startswith(("PASSED", "FAILED", "ERROR"))]
        print(f"[{mode}] exit {proc.returncode}")
        for line in passed:
            print(f"  {line}")
        if proc.returncode != 0:
            print(proc.stdout[-3000:])


def write_corpus(directory: Path, seed: int, lines: int, vocab: int) -> None:
    """A seeded Markov-chain 'text': each word mostly follows from the previous one, so an LSTM learns it."""
    import numpy as np
    rng = np.random.default_rng(seed)
    successors = rng.integers(0, vocab, size=(vocab, 3))
    directory.mkdir(exist_ok=True)
    for name, count in (("sherlockholmes.train.txt", lines), ("sherlockholmes.test.txt", lines // 4)):
        sentences = []
        for _ in range(count):
            word = int(rng.integers(vocab))
            words = []
            for _ in range(int(rng.integers(5, 55))):
                words.append(f"w{word}")
                word = int(successors[word, rng.integers(3)]) if rng.random() < 0.9 else int(rng.integers(vocab))
            sentences.append(" ".join(words))
        (directory / name).write_text("\n".join(sentences) + "\n")


def run_example(work: Path, script: str, mode: str, args: List[str]) -> List[float]:
    proc = subprocess.run([sys.executable, "run_example.py", script, *args], cwd=work / "examples",
                          env=environment(work, mode), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{script} [{mode}] failed:\n{proc.stderr[-3000:]}")
    return [float(x) for x in re.findall(r"^score perplexity=(\S+)$", proc.stderr, re.M)]


def run_examples(work: Path, epochs: int) -> None:
    write_corpus(work / "examples" / "data", seed=0, lines=1200, vocab=60)
    common = ["--num-layers", "2", "--num-hidden", "32", "--num-embed", "32", "--batch-size", "32",
              "--num-epochs", str(epochs), "--disp-batches", "1000"]
    for script in ("lstm_bucketing.py", "cudnn_rnn_bucketing.py"):
        results = {mode: run_example(work, script, mode, common) for mode in ("stock", "safe")}
        same = results["stock"] == results["safe"] and len(results["stock"]) == epochs
        print(f"{script}: validation perplexity per epoch")
        for mode, values in results.items():
            print(f"  {mode:5s} " + " ".join(repr(v) for v in values))
        print(f"  identical: {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mxnet-git", required=True, help="a git checkout (or bare repository) of apache/mxnet")
    parser.add_argument("--tag", default="1.9.1")
    parser.add_argument("--part", choices=["tests", "examples", "all"], default="all")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of each example run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mxnet-drop-in-") as tmp:
        work = Path(tmp)
        extract(args.mxnet_git, args.tag, work)
        if args.part in ("tests", "all"):
            run_tests(work)
        if args.part in ("examples", "all"):
            run_examples(work, args.epochs)


if __name__ == "__main__":
    main()
