"""The cells are declared once (sinlstm_sym.recurrence.cells) with their builders attached once
(sinlstm_sym.model.cells): every declared cell has every field and a builder, the memory bounds and the
configuration read the declarations, and a cell declared in a test flows through the configuration, the
resolution, the memory bounds, the symbol, fit and the predictor without touching another module."""
import logging
from dataclasses import fields

import mxnet as mx
import numpy as np
import pytest

from sinlstm_sym import FitConfig, ModelConfig, fit, make_sym_gen
from sinlstm_sym.config import limits
from sinlstm_sym.config.fit_config import resumed_config
from sinlstm_sym.constants import NATIVE_BYTES_PER_LAYER_STEP, UNROLLED_BYTES_PER_LAYER_STEP
from sinlstm_sym.model import cells as model_cells
from sinlstm_sym.model.cells import CellBuilder, attach_builder, builder_of, detach_builder, resolve_cell
from sinlstm_sym.model.spec import ModelSpec
from sinlstm_sym.native import native_available
from sinlstm_sym.recurrence.cells import (AUTO, Cell, cell_choices, cell_named, cell_names, declare_cell,
                                          requested_bytes_per_layer_step, requested_layout, to_canonical, to_layout,
                                          withdraw_cell)
from sinlstm_sym.recurrence.kinds import LSTM
from sinlstm_sym.recurrence.params import FUSED, UNPACKED, init_params, unpacked_shapes

HIDDEN = (5, 1)
TINY = dict(hidden_sizes=list(HIDDEN), buckets=[2, 4], num_samples=200, batch_size=50, num_epoch=1, seed=3,
            log_every=1)
# what each built-in cell declares (name -> every field but the name)
DECLARED = {
    "unrolled": dict(layout=UNPACKED, applies_step_weights=False, grad_req_guards=False,
                     bytes_per_layer_step=UNROLLED_BYTES_PER_LAYER_STEP, block_rows=1, cpu_only=False,
                     built_on_use=False, auto_rank=None, recurrence=LSTM),
    "fused": dict(layout=FUSED, applies_step_weights=False, grad_req_guards=False, bytes_per_layer_step=0,
                  block_rows=1, cpu_only=False, built_on_use=False, auto_rank=1, recurrence=LSTM),
    "native": dict(layout=FUSED, applies_step_weights=True, grad_req_guards=True,
                   bytes_per_layer_step=NATIVE_BYTES_PER_LAYER_STEP, block_rows=16, cpu_only=True,
                   built_on_use=True, auto_rank=0, recurrence=LSTM),
}


def test_every_cell_is_declared_with_every_field_and_has_a_builder():
    assert cell_names() == tuple(DECLARED) and cell_choices() == (*DECLARED, AUTO)
    assert {f.name for f in fields(Cell)} == {"name", *DECLARED["native"]}
    for name, expected in DECLARED.items():
        cell = cell_named(name)
        assert {f.name: getattr(cell, f.name) for f in fields(Cell) if f.name != "name"} == expected
        builder = builder_of(name)
        assert builder.cell is cell and callable(builder.build)
    assert builder_of("native").checkpoint_cell == "fused" and builder_of("native").available is native_available
    assert set(builder_of("native").optimizers) == {"adam"} and not builder_of("fused").optimizers
    assert ModelConfig.__dataclass_fields__["cell"].default == AUTO
    assert FitConfig.declarations()["cell"].choices == cell_choices()  # what --cell offers


def test_the_memory_bounds_and_the_layouts_are_the_declarations():
    for name, expected in DECLARED.items():
        assert requested_layout(name) is expected["layout"]
    assert limits.per_step_bytes("unrolled") == UNROLLED_BYTES_PER_LAYER_STEP
    assert limits.per_step_bytes("fused") == 0
    # 'auto' and 'native' may run on either candidate: the most demanding one bounds them
    assert limits.per_step_bytes("auto") == limits.per_step_bytes("native") == NATIVE_BYTES_PER_LAYER_STEP
    assert requested_layout(AUTO) is FUSED
    assert all(limits.per_step_bytes(name) == requested_bytes_per_layer_step(name) for name in cell_choices())
    with pytest.raises(ValueError, match=r"cell must be one of \['unrolled', 'fused', 'native'\], got 'gru'"):
        limits.per_step_bytes("gru")


def test_the_layouts_convert_by_cell_and_refuse_unknown_cells():
    canonical = init_params(HIDDEN, seed=2)
    packed = to_layout(canonical, "native", HIDDEN)
    assert list(packed) == ["lstm0_parameters", "lstm1_parameters"]
    assert packed["lstm0_parameters"].shape == (LSTM.gate_count * 5 * (1 + 5 + 2),)
    back = to_canonical(packed, AUTO, HIDDEN)
    assert sorted(back) == sorted(unpacked_shapes(HIDDEN))
    for name in canonical:
        np.testing.assert_array_equal(back[name], canonical[name])
    assert to_layout(canonical, "unrolled", HIDDEN).keys() == canonical.keys()
    with pytest.raises(ValueError, match=r"cell must be one of \['unrolled', 'fused', 'native', 'auto'\], got 'x'"):
        to_layout(canonical, "x", HIDDEN)
    with pytest.raises(TypeError, match="cell must be one of"):
        to_canonical(canonical, None, HIDDEN)  # type: ignore[arg-type]


def test_the_lstm_is_declared_once_its_forget_gate_holds_the_forget_bias():
    assert LSTM.gates == ("input", "forget", "cell", "output") and LSTM.rnn_mode == "lstm"
    bias = init_params((3, 1), seed=0, forget_bias=0.7)["lstm0_i2h_bias"]
    expected = np.zeros(12, np.float32)
    expected[LSTM.gate_rows("forget", 3)] = 0.7
    np.testing.assert_array_equal(bias, expected)
    assert LSTM.gate_rows("forget", 3) == slice(3, 6)
    with pytest.raises(ValueError, match=r"gate must be one of \['input', 'forget', 'cell', 'output'\]"):
        LSTM.gate_rows("reset", 3)


def test_a_declaration_that_does_not_fit_the_others_is_refused():
    with pytest.raises(ValueError, match="a cell named 'fused' is declared already"):
        declare_cell(Cell("fused", FUSED))
    with pytest.raises(ValueError, match="a cell's name must be an identifier other than 'auto', got 'auto'"):
        Cell("auto", FUSED)
    with pytest.raises(ValueError, match="block_rows must be an int >= 1, got 0"):
        Cell("zero_rows", FUSED, block_rows=0)
    with pytest.raises(ValueError, match=r"must hold one layout, \['fused'\], got 'unpacked'"):
        declare_cell(Cell("unpacked_candidate", UNPACKED, auto_rank=5))
    with pytest.raises(ValueError, match=r"must hold one layout, \['fused'\], got 'unpacked'"):
        declare_cell(Cell("unpacked_gpu_less", UNPACKED, cpu_only=True))
    assert "unpacked_candidate" not in cell_names() and "unpacked_gpu_less" not in cell_names()
    with pytest.raises(ValueError, match="cell 'fused' has a builder already"):
        attach_builder(CellBuilder(cell_named("fused"), builder_of("fused").build))
    with pytest.raises(ValueError, match="cell must be one of .*got 'orphan'"):
        attach_builder(CellBuilder(Cell("orphan", FUSED), builder_of("fused").build))
    declare_cell(Cell("packed_only", FUSED))
    try:
        with pytest.raises(ValueError, match="its checkpoint_cell 'unrolled' holds another layout"):
            attach_builder(CellBuilder(cell_named("packed_only"), builder_of("fused").build,
                                       checkpoint_cell="unrolled"))
    finally:
        withdraw_cell("packed_only")


@pytest.fixture
def probe_cell():
    """A cell declared and built only here: the fused operator under another name, conditional (CPU only, and
    unavailable while ``state['available']`` is false), with its own memory figure."""
    state = {"available": True, "builds": 0}

    def build(spec, data_name, length, init, weighted, writes_only):
        state["builds"] += 1
        assert not weighted and not writes_only  # it declares neither
        return model_cells._fused(spec, data_name, length, init, weighted, writes_only)

    cell = declare_cell(Cell("probe", FUSED, bytes_per_layer_step=7_000, cpu_only=True))
    attach_builder(CellBuilder(cell, build, available=lambda: state["available"]))
    yield state
    detach_builder("probe")
    withdraw_cell("probe")
    assert "probe" not in cell_choices()


def test_a_cell_declared_elsewhere_flows_through_configuration_resolution_and_limits(probe_cell, caplog):
    config = FitConfig.from_flat(cell="probe", **TINY)
    assert config.model.cell == "probe"
    assert config.training_json()["cell"] == FitConfig.from_flat(cell="fused").training_json()["cell"]
    assert resolve_cell("probe", [mx.cpu()]) == "probe"
    assert limits.per_step_bytes("probe") == 7_000  # above the native operator's 5000: its own figure
    probe_cell["available"] = False
    fallback = "native" if native_available() else "fused"
    with caplog.at_level(logging.INFO, logger="sinlstm_sym.model.cells"):
        assert resolve_cell("probe", [mx.cpu()]) == fallback
    assert "cell 'probe' is unavailable" in caplog.text
    probe_cell["available"] = True
    assert resolve_cell("probe", [mx.cpu(), mx.gpu(0)]) == "fused"  # CPU only: 'auto' without the native one
    assert resumed_config(config, {"checkpoint": "x"}).model.cell == AUTO  # may not run elsewhere: resumes 'auto'
    assert AUTO not in [c for c in cell_names()]


def test_a_cell_declared_elsewhere_trains_and_predicts_as_the_cell_it_builds(probe_cell):
    result = fit(cell="probe", **TINY)
    reference = fit(cell="fused", **TINY)
    assert probe_cell["builds"] > 0 and result.spec.cell == "probe" == result.config.model.cell
    assert result.losses == reference.losses  # the same operators, so the same numbers
    for name, value in reference.arg_params().items():
        np.testing.assert_array_equal(result.arg_params()[name], value)
    t0 = np.array([0.2, 0.6])
    np.testing.assert_array_equal(result.predictor().predict_function(t0, length=6),
                                  reference.predictor().predict_function(t0, length=6))
    symbol, _, _ = make_sym_gen(list(HIDDEN), cell="probe")(3)
    assert "lstm0_parameters" in symbol.list_arguments()


def test_a_cell_without_a_builder_is_refused_when_resolved():
    declare_cell(Cell("unbuilt", FUSED))
    try:
        ModelConfig(cell="unbuilt")  # declared: the configuration takes it
        with pytest.raises(ValueError, match=r"cell 'unbuilt': no builder is attached to \['unbuilt'\]"):
            ModelSpec.from_model(ModelConfig(cell="unbuilt"))
    finally:
        withdraw_cell("unbuilt")
    with pytest.raises(ValueError, match=r"cell must be one of \['unrolled', 'fused', 'native', 'auto'\]"):
        ModelConfig(cell="unbuilt")
