"""FusedAdam: MXNet's Adam in one native call per update, bit for bit, with Adam's states and checkpoints."""
import json
import math
from typing import Dict, List, Tuple

import mxnet as mx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sinlstm_sym import fit
from sinlstm_sym.native.adam import FusedAdam

pytestmark = pytest.mark.native  # built on first use by the first such test (tests/conftest.py)


def _run(optimizer: mx.optimizer.Optimizer, shapes: List[Tuple[int, ...]], steps: int, seed: int,
         dtype: str = "float32") -> Dict[str, np.ndarray]:
    """Weights, states and counters after ``steps`` updates of random gradients through MXNet's Updater."""
    rng = np.random.default_rng(seed)
    weights = [mx.nd.array(rng.normal(size=s), dtype=dtype) for s in shapes]
    updater = mx.optimizer.get_updater(optimizer)
    for _ in range(steps):
        grads = [mx.nd.array(rng.normal(scale=10.0 ** rng.uniform(-3, 2), size=s), dtype=dtype) for s in shapes]
        updater(list(range(len(shapes))), grads, weights)
    out = {f"w{i}": w.asnumpy() for i, w in enumerate(weights)}
    for i, (mean, var) in updater.states.items():
        out[f"mean{i}"], out[f"var{i}"] = mean.asnumpy(), var.asnumpy()
    out["num_update"] = np.array(optimizer.num_update)
    return out


def _assert_same_bits(got: Dict[str, np.ndarray], want: Dict[str, np.ndarray]) -> None:
    assert got.keys() == want.keys()
    for key in want:
        assert got[key].dtype == want[key].dtype and got[key].shape == want[key].shape, key
        assert got[key].tobytes() == want[key].tobytes(), f"{key} differs"


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2 ** 31 - 1), sizes=st.lists(st.integers(1, 3000), min_size=1, max_size=5),
       lr=st.floats(1e-5, 0.3), wd=st.sampled_from([0.0, 1e-4, 0.03]), clip=st.sampled_from([None, 0.01, 5.0]),
       rescale=st.sampled_from([1.0, 1 / 300, 1 / 7]), beta1=st.sampled_from([0.9, 0.8]),
       beta2=st.sampled_from([0.999, 0.95]), epsilon=st.sampled_from([1e-8, 1e-6]), schedule=st.booleans())
def test_updates_are_adams_bit_for_bit(seed, sizes, lr, wd, clip, rescale, beta1, beta2, epsilon, schedule):
    def make(klass):
        kwargs = dict(learning_rate=lr, wd=wd, rescale_grad=rescale, beta1=beta1, beta2=beta2, epsilon=epsilon)
        if clip is not None:
            kwargs["clip_gradient"] = clip
        if schedule:
            kwargs["lr_scheduler"] = mx.lr_scheduler.CosineScheduler(max_update=7, base_lr=lr, final_lr=lr / 10,
                                                                     warmup_steps=2)
        return klass(**kwargs)

    shapes = [(n,) for n in sizes]
    _assert_same_bits(_run(make(FusedAdam), shapes, 9, seed), _run(make(mx.optimizer.Adam), shapes, 9, seed))


def test_one_operator_call_per_update(monkeypatch):
    calls = []
    fused_op, adam_op = mx.nd.sinlstm_adam_update, mx.optimizer.optimizer.adam_update
    monkeypatch.setattr(mx.nd, "sinlstm_adam_update", lambda *a, **k: calls.append("fused") or fused_op(*a, **k))
    monkeypatch.setattr(mx.optimizer.optimizer, "adam_update", lambda *a, **k: calls.append("adam") or adam_op(*a, **k))
    _run(FusedAdam(learning_rate=0.01), [(5,), (7, 3), (2,)], 4, 0)
    assert calls == ["fused"] * 4


def test_other_dtypes_fall_back_to_adams_own_update(monkeypatch):
    calls = []
    adam_op = mx.optimizer.optimizer.adam_update
    monkeypatch.setattr(mx.optimizer.optimizer, "adam_update", lambda *a, **k: calls.append(1) or adam_op(*a, **k))
    got = _run(FusedAdam(learning_rate=0.01), [(5,), (3,)], 3, 1, dtype="float64")
    want = _run(mx.optimizer.Adam(learning_rate=0.01), [(5,), (3,)], 3, 1, dtype="float64")
    _assert_same_bits(got, want)
    assert len(calls) == 2 * 3 * 2  # two parameters, three updates, two runs: Adam's per-parameter calls


def test_operator_refuses_a_missing_learning_rate_list():
    arrays = [mx.nd.zeros((3,)) for _ in range(4)]
    with pytest.raises(mx.base.MXNetError, match="lrs"):
        mx.nd.sinlstm_adam_update(*arrays, out=arrays[0], wds="0.0")
        mx.nd.waitall()


def test_fit_trains_with_it_and_its_checkpoint_resumes_with_plain_adam(tmp_path, monkeypatch):
    created = []
    original = FusedAdam.__init__

    def record(self, **kwargs):
        created.append(type(self).__name__)
        original(self, **kwargs)

    monkeypatch.setattr(FusedAdam, "__init__", record)
    common = dict(seed=3, num_samples=3000, log_every=5, lr_schedule=None)  # resumable for more epochs
    native = fit(cell="native", checkpoint=str(tmp_path / "run"), **common)
    assert created == ["FusedAdam"]
    assert (tmp_path / "run").is_dir()
    monkeypatch.setattr(FusedAdam, "_takes", lambda self, *a: False)  # Adam's own per-parameter update
    plain = fit(cell="native", **common)
    assert native.losses == plain.losses
    for name, value in native.arg_params().items():
        assert value.tobytes() == plain.arg_params()[name].tobytes(), name
    # the checkpoint holds Adam's state: a run with cell='fused' (MXNet's own Adam) resumes it, and the other way
    states = [json.loads(p.read_text()) for p in sorted((tmp_path / "run").glob("ckpt-*/optimizer-state.json"))]
    assert states and all(s["optimizer"] == "Adam" and s["num_update"] > 0 for s in states)
    more = dict(checkpoint=str(tmp_path / "run"), resume=True)
    resumed = fit(cell="fused", num_epoch=3, **more, **common)
    assert resumed.losses[:len(native.losses)] == native.losses  # the checkpoint's history (epochs 0, 1), then 2
    assert {r.epoch for r in resumed.loss_history[len(native.losses):]} == {2}
    assert all(math.isfinite(x) for x in resumed.losses)
    again = fit(cell="native", num_epoch=4, **more, **common)
    assert created == ["FusedAdam"] * 3 and {r.epoch for r in again.loss_history[len(resumed.losses):]} == {3}
