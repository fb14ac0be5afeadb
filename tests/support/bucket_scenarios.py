"""BucketingModule hazard scenarios, run one per subprocess by tests/integration/test_bucket_hazards.py.

Usage: python bucket_scenarios.py SCENARIO {plain,safe,sine} [{sine,token,tuple}]. MODE: plain
MXNet's BucketingModule, our general SafeBucketingModule, or the SineBucketingModule fit uses
(sine model only). MODEL (default sine): see tests/support/bucket_models.py. Prints 'OK <detail>' and
exits 0 when the run works; an exception propagates (exit 1) when it fails. A crash of MXNet's
C++ layer would show as a signal (negative return code) or 'terminate called'.

``python bucket_scenarios.py --serve`` runs many scenarios, each still in a process of its own: it imports
MXNet once, then for each request line ``{"scenario", "mode", "model", "stdout", "stderr"}`` (JSON) on its
standard input forks a child that runs the scenario with its output in those two files, exactly as the
command above would, and answers ``{"returncode": N}`` (negative: killed by that signal) on its standard
output. A child still running after ``TIMEOUT_S`` is killed (return code -9).
"""
import json
import logging
import os
import signal
import sys
import time
import traceback
import warnings

import mxnet as mx
import numpy as np

from bucket_models import MODELS
from sinlstm_sym import SinBucketIter, make_sym_gen
from sinlstm_sym.model.bucketing import SafeBucketingModule
from sinlstm_sym.recurrence.params import init_params
from sinlstm_sym.recurrence.cells import to_layout
from sinlstm_sym.model.batches import SineBucketingModule

MODEL = MODELS[sys.argv[3] if len(sys.argv) > 3 else "sine"]
TIMEOUT_S = 240


def module_class(mode):
    return {"plain": mx.mod.BucketingModule, "safe": SafeBucketingModule, "sine": SineBucketingModule}[mode]


def make_module(mode, variant=None, default_n=9, **kwargs):
    default_key = MODEL.key(default_n)
    if mode == "sine":
        kwargs["label_mode"] = "last"
    module = module_class(mode)(MODEL.sym_gen(variant), default_bucket_key=default_key, **kwargs)
    first = MODEL.batch(default_key)
    module.bind(first.provide_data, first.provide_label)
    MODEL.init(module, variant)
    module.init_optimizer(optimizer="adam")
    return module


def step(module, data_batch):
    module.forward(data_batch, is_train=True)
    module.backward()
    module.update()
    return MODEL.loss(module, data_batch)


def half_mse(module, data_batch):
    """The L2 loss 0.5 * mean (pred - label)^2 of the batch just run (the module's output is the prediction)."""
    pred = module.get_outputs()[0]
    return float((0.5 * mx.nd.square(pred - data_batch.label[0].reshape(pred.shape)).mean()).asscalar())


def scenario_issue_8663(mode):
    """Custom loop, default key NOT the largest, keys 1..20 in random order; loss must fall."""
    if MODEL.name != "sine":
        return issue_8663_tokens(mode)
    it = SinBucketIter(range(1, 21), batch_size=100, num_samples=100 * 400, label_mode="sequence", seed=8663)
    sym_gen = make_sym_gen((10, 20, 1), label_mode="sequence")
    kwargs = dict(allow_larger_keys=True, label_mode="sequence") if mode == "sine" else {}
    if mode == "safe":
        kwargs = dict(allow_larger_keys=True)
    module = module_class(mode)(sym_gen, default_bucket_key=5, **kwargs)
    first = SinBucketIter([5], batch_size=100, num_samples=100, label_mode="sequence")
    module.bind(first.provide_data, first.provide_label)
    params = to_layout(init_params((10, 20, 1), 0), "fused", (10, 20, 1))
    module.init_params(arg_params={k: mx.nd.array(v) for k, v in params.items()}, aux_params={})
    module.init_optimizer(optimizer="adam", optimizer_params={"learning_rate": 0.005})
    losses = []
    for b in it:
        module.forward_backward(b)
        module.update()
        losses.append(half_mse(module, b))
    head, tail = np.mean(losses[:40]), np.mean(losses[-40:])
    assert np.all(np.isfinite(losses)) and tail < head / 4, (head, tail)
    print(f"OK batches={len(losses)} keys={len(set(it.schedule))} first40={head:.5f} last40={tail:.5f}")


def issue_8663_tokens(mode):
    """The same on the token / tuple-key model: default 'length' 5 of 1..12, keys in random order."""
    kwargs = dict(allow_larger_keys=True) if mode == "safe" else {}
    module = make_module(mode, default_n=5, **kwargs)
    rng = np.random.default_rng(8663)
    lengths = rng.integers(1, 13, size=240)
    losses = [step(module, MODEL.batch(MODEL.key(int(n)), batch_size=32, seed=i)) for i, n in enumerate(lengths)]
    head, tail = np.mean(losses[:30]), np.mean(losses[-30:])
    assert np.all(np.isfinite(losses)) and tail < head / 2, (head, tail)
    print(f"OK batches={len(losses)} keys={len(set(lengths))} first30={head:.5f} last30={tail:.5f}")


def scenario_1_params_differ(mode):
    module = make_module(mode, "params_differ")
    step(module, MODEL.batch(MODEL.key(9)))
    step(module, MODEL.batch(MODEL.key(3)))
    print("OK")


def scenario_2_no_provide_label(mode):
    module = make_module(mode)
    step(module, MODEL.batch(MODEL.key(9)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        step(module, MODEL.batch(MODEL.key(4), provide_label=False))
    print("OK warnings:", [str(w.message)[:60] for w in caught])


def scenario_3_names_differ(mode):
    module = make_module(mode)
    step(module, MODEL.batch(MODEL.key(9)))
    step(module, MODEL.batch(MODEL.key(9), names=MODEL.other_names))
    print("OK")


KEY_LENGTHS = {"sine": "data", "token": "data", "tuple": "source=0,target=1"}  # as a user declares them


def scenario_4_key_not_length(mode):
    """In mode 'safe' the key's meaning is declared through the environment (no code change)."""
    if mode == "safe":
        os.environ["SINLSTM_KEY_LENGTHS"] = KEY_LENGTHS[MODEL.name]
    module = make_module(mode)
    step(module, MODEL.batch(MODEL.key(5), steps=3))
    print("OK")


def scenario_4_key_not_length_undeclared(mode):
    module = make_module(mode)
    step(module, MODEL.batch(MODEL.key(5), steps=3))
    print("OK")


def scenario_5_key_none(mode):
    module = make_module(mode)
    batch = MODEL.batch(MODEL.key(3))
    batch.bucket_key = 3 if MODEL.name == "tuple" else "3"  # a key of another kind than the default's
    step(module, batch)
    print("OK")


def scenario_5_numpy_int_key(mode):
    module = make_module(mode)
    key = MODEL.key(3)
    batch = MODEL.batch(key)
    batch.bucket_key = tuple(np.int64(k) for k in key) if isinstance(key, tuple) else np.int32(key)
    step(module, batch)
    print("OK")


def scenario_6_key_above_default(mode):
    module = make_module(mode, default_n=4)
    step(module, MODEL.batch(MODEL.key(4)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        losses = [step(module, MODEL.batch(MODEL.key(n))) for n in (9, 9, 7, 12)]
    ours = [str(w.message) for w in caught if type(w.message).__name__ == "BucketReallocationWarning"]
    print("OK losses", " ".join(repr(x) for x in losses), "warnings", len(ours), *ours[:1])


def scenario_7_outputs_after_failed_switch(mode):
    module = make_module(mode, "params_differ")
    step(module, MODEL.batch(MODEL.key(9)))
    try:
        module.forward(MODEL.batch(MODEL.key(3)), is_train=True)
    except (ValueError, RuntimeError, mx.base.MXNetError) as err:
        print("switch failed:", type(err).__name__)
    outputs = module.get_outputs()
    print("OK outputs", outputs[0].shape)


def scenario_8_shapes_differ(mode):
    module = make_module(mode, "shape_differ")
    step(module, MODEL.batch(MODEL.key(9)))
    step(module, MODEL.batch(MODEL.key(3)))
    print("OK")


def scenario_crash(mode):
    """The process dies from a signal, as MXNet's C++ layer can make it (for the runner's own test)."""
    import resource
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file
    print("before the crash", flush=True)
    os.abort()


def rss_mib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def scenario_memory(mode):
    """Switch among buckets 1..9 for a few hundred batches; print RSS after warm-up and at the end."""
    it = SinBucketIter(range(1, 10), batch_size=300, num_samples=300 * 450, label_mode="sequence", seed=1)
    sym_gen = make_sym_gen((10, 20, 1), label_mode="sequence")
    module = module_class(mode)(sym_gen, default_bucket_key=9)
    module.bind(it.provide_data, it.provide_label)
    params = to_layout(init_params((10, 20, 1), 0), "fused", (10, 20, 1))
    module.init_params(arg_params={k: mx.nd.array(v) for k, v in params.items()}, aux_params={})
    module.init_optimizer(optimizer="adam")
    samples = []
    for i, b in enumerate(it, start=1):
        module.forward_backward(b)
        module.update()
        half_mse(module, b)
        if i in (50, 150, 250, 350, 450):
            samples.append(rss_mib())
    print("OK rss_mib", " ".join(f"{x:.1f}" for x in samples))


def _run_child(request) -> None:
    """In the forked child: the scenario with the request's output files; never returns."""
    global MODEL
    code = 1
    try:
        for fd, name in ((1, "stdout"), (2, "stderr")):
            target = os.open(request[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(target, fd)
            os.close(target)
        MODEL = MODELS[request["model"]]
        logging.basicConfig(level=logging.WARNING)
        globals()[f"scenario_{request['scenario']}"](request["mode"])
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
    except BaseException:  # what the interpreter does with an uncaught exception: traceback, exit 1
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _wait(pid: int) -> int:
    """The child's return code as subprocess gives it; killed after TIMEOUT_S."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)


def serve() -> None:
    """Answer one request line at a time until standard input ends."""
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _run_child(request)
        print(json.dumps({"returncode": _wait(pid)}), flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        logging.basicConfig(level=logging.WARNING)
        globals()[f"scenario_{sys.argv[1]}"](sys.argv[2])
