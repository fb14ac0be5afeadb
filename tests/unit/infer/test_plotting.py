"""The prediction picture: shared y-scale per row, log-scale error panels equal to |prediction - label|
(checked against the closed form sin(t)/2), notes on the figure, atomic writing. Untrained weights keep it fast."""
import os
from collections import defaultdict

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from sinlstm_sym.recurrence.params import init_params  # noqa: E402
from sinlstm_sym.infer.plotting import _prediction_figure, plot_predictions  # noqa: E402
from sinlstm_sym.infer.predictor import Predictor  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
STEP = 0.01  # the predictor's default time step


@pytest.fixture(scope="module")
def sequence_model():
    return Predictor(init_params((10, 20, 1), 3), trained_lengths=(1, 2, 3))


@pytest.fixture(scope="module")
def last_model():
    return Predictor(init_params((10, 20, 1), 3), label_mode="last", trained_lengths=(9,))


@pytest.fixture
def figure():
    made = []

    def build(*args, **kwargs):
        fig = _prediction_figure(*args, **kwargs)
        made.append(fig)
        return fig
    yield build
    for fig in made:
        plt.close(fig)


def axes_by_label(fig: Figure, kind: str) -> dict:
    return {int(ax.get_label().split("=")[1]): ax for ax in fig.axes if ax.get_label().startswith(kind + " L=")}


def all_text(fig: Figure) -> str:
    return " ".join(" ".join(t.get_text() for t in fig.findobj(Text)).split())


def closed_form(predictor: Predictor, lengths, seed: int, count: int):
    """Per length: t0, labels sin(t0 + step*k)/2 and predictions at steps k = 1..L, drawn independently."""
    rng = np.random.default_rng(seed)
    out = {}
    for length in lengths:
        t0 = rng.uniform(0.0, 1.0, size=count)
        labels = np.sin(t0[:, None] + STEP * np.arange(1, length + 1)) / 2
        if predictor.label_mode == "sequence":
            pred = predictor.predict_function(t0, length)
        else:
            pred = np.stack([predictor.predict_function(t0, k) for k in range(1, length + 1)], axis=1)
        out[length] = (t0, labels, pred)
    return out


def test_png_written_atomically_with_the_old_signature(sequence_model, tmp_path):
    path = tmp_path / "pred.png"
    assert plot_predictions(sequence_model, [1, 4], str(path), 5) == str(path)
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(str(path))
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 300
    assert sorted(os.listdir(tmp_path)) == ["pred.png"]  # no temporary file left
    assert plt.get_fignums() == []


def test_a_failed_write_leaves_the_old_file_and_no_temporary(sequence_model, tmp_path, monkeypatch):
    path = tmp_path / "pred.png"
    path.write_bytes(b"old")

    def half_written(self, fname, **kwargs):
        with open(fname, "wb") as handle:
            handle.write(PNG_SIGNATURE)
        raise OSError("No space left on device")
    monkeypatch.setattr(Figure, "savefig", half_written)
    with pytest.raises(OSError, match="No space left on device"):
        plot_predictions(sequence_model, [2], str(path), windows_per_length=2)
    assert path.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["pred.png"]
    assert plt.get_fignums() == []


def test_unwritable_paths_raise_before_any_work(sequence_model, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"path: the directory .*missing.* does not exist"):
        plot_predictions(sequence_model, [2], str(tmp_path / "missing" / "p.png"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileNotFoundError, match="path: the directory"):
        plot_predictions(sequence_model, [2], str(tmp_path / "file" / "p.png"))
    with pytest.raises(ValueError, match=r"path must be a file name ending in \.png, \.pdf, \.svg"):
        plot_predictions(sequence_model, [2], str(tmp_path / "p.txt"))
    with pytest.raises(TypeError, match="path must be a file name"):
        plot_predictions(sequence_model, [2], None)
    assert sorted(os.listdir(tmp_path)) == ["file"]
    assert plt.get_fignums() == []


def test_bad_arguments_name_themselves(sequence_model, tmp_path):
    path = str(tmp_path / "p.png")
    with pytest.raises(ValueError, match="windows_per_length must be >= 1, got 0"):
        plot_predictions(sequence_model, [2], path, windows_per_length=0)
    with pytest.raises(TypeError, match="windows_per_length must be an int"):
        plot_predictions(sequence_model, [2], path, windows_per_length=2.0)
    with pytest.raises(ValueError, match="lengths must not be empty"):
        plot_predictions(sequence_model, [], path)
    with pytest.raises(ValueError, match="t_low must be < t_high"):
        plot_predictions(sequence_model, [2], path, t_low=1.0, t_high=1.0)
    assert os.listdir(tmp_path) == [] and plt.get_fignums() == []


def test_each_row_of_values_shares_y_limits_that_hold_its_data(sequence_model, figure):
    lengths = [1, 2, 3, 5, 7, 9, 12, 20]  # two rows of four panels
    fig = figure(sequence_model, lengths, seed=1, windows_per_length=8)
    rows = defaultdict(list)
    for length, ax in axes_by_label(fig, "values").items():
        rows[ax.get_subplotspec().get_topmost_subplotspec().rowspan.start].append(length)
    assert dict(rows) == {0: lengths[:4], 1: lengths[4:]}
    rows = [[axes_by_label(fig, "values")[n] for n in row] for row in rows.values()]
    for row in rows:
        limits = {ax.get_ylim() for ax in row}
        assert len(limits) == 1
        low, high = limits.pop()
        data = np.concatenate([line.get_ydata() for ax in row for line in ax.get_lines()])
        assert low < data.min() and data.max() < high
        assert high - low < 1.2 * (data.max() - data.min())  # fitted to the row, not padded beyond 10% a side


@pytest.mark.parametrize("model", ["sequence_model", "last_model"])
def test_error_panels_are_log_scaled_and_equal_the_closed_form_error(model, request, figure):
    predictor = request.getfixturevalue(model)
    lengths, seed, count = [1, 3, 10], 7, 6
    fig = figure(predictor, lengths, seed=seed, windows_per_length=count)
    errors, values = axes_by_label(fig, "error"), axes_by_label(fig, "values")
    assert sorted(errors) == sorted(values) == lengths
    assert len({ax.get_ylim() for ax in errors.values()}) == 1  # one error scale for the whole figure
    drawn = []
    for length, (t0, labels, pred) in closed_form(predictor, lengths, seed, count).items():
        error = np.abs(pred - labels)
        ax = errors[length]
        assert ax.get_yscale() == "log"
        lines = {line.get_label(): line for line in ax.get_lines()}
        np.testing.assert_array_equal(lines["max"].get_xdata(), np.arange(1, length + 1))
        np.testing.assert_allclose(lines["max"].get_ydata(), error.max(axis=0), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(lines["median"].get_ydata(), np.median(error, axis=0), rtol=1e-6, atol=1e-9)
        low, high = ax.get_ylim()
        assert low <= np.median(error, axis=0).min() and error.max() <= high
        drawn += [error.max(axis=0), np.median(error, axis=0)]
        worst = int(np.argmax(error.max(axis=1)))
        shown = {line.get_label(): line.get_ydata() for line in values[length].get_lines()}
        np.testing.assert_allclose(shown["label sin(t)/2"], labels[worst], rtol=1e-12)
        np.testing.assert_allclose(shown["prediction"], pred[worst], rtol=1e-6, atol=1e-9)
        assert f"t0={t0[worst]:.3f}" in values[length].get_title()
    drawn = np.concatenate(drawn)
    low, high = errors[lengths[0]].get_ylim()
    assert drawn.min() / 10 < low and high < drawn.max() * 10  # whole decades around the drawn curves


def test_the_fixed_task_says_only_the_last_step_was_trained(sequence_model, last_model, figure):
    last_text = all_text(figure(last_model, [2, 9], windows_per_length=2))
    assert "only the LAST step of windows of the trained length(s) [9] was trained" in last_text
    assert "--fixed" in last_text
    sequence_text = all_text(figure(sequence_model, [2, 9], windows_per_length=2))
    assert "LAST step" not in sequence_text and "--fixed" not in sequence_text


def test_untrained_lengths_are_marked(sequence_model, figure):
    values = axes_by_label(figure(sequence_model, [1, 2, 5, 12], windows_per_length=2), "values")
    marked = sorted(n for n, ax in values.items() if "not trained: extrapolated" in ax.get_title())
    assert marked == [5, 12]
    unknown = Predictor(init_params((10, 20, 1), 3))  # trained_lengths=None: nothing to claim
    fig = figure(unknown, [1, 5], windows_per_length=2)
    assert not any("not trained" in ax.get_title() for ax in fig.axes)
    assert "trained lengths unknown" in all_text(fig)
