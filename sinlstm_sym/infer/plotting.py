"""Pictures of predictions per step (needs the optional ``plot`` extra: matplotlib)."""
import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, List, Sequence, Tuple

import numpy as np

from ..core.checks import check_condition, check_float, check_int, check_int_sequence
from ..data.windows import half_sine, make_windows
from ..core.outputs import PLOT_SUFFIXES, AtomicOutputs, check_output_file
from .predictor import Predictor

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.gridspec import SubplotSpec

UNTRAINED_NOTE = "not trained: extrapolated"
LAST_MODE_NOTE = ("label_mode='last' (sinlstm-train --fixed): only the LAST step of windows of the trained "
                  "length(s) {trained} was trained; the prediction at step k is the last-step output of the "
                  "window cut to its first k steps")
COLOR_LABEL, COLOR_PRED, COLOR_UNTRAINED = "black", "tab:red", "tab:orange"


def _pyplot():
    try:
        import matplotlib
    except ImportError as err:
        raise ImportError("plotting needs matplotlib: pip install 'sinlstm-sym[plot]' (or '.[plot]')") from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


@dataclass
class _LengthWindows:
    """Labels and predictions of the windows of one length: ``t0 (N,)``, ``labels``/``pred`` ``(N, L)``."""

    length: int
    t0: np.ndarray
    labels: np.ndarray
    pred: np.ndarray

    @property
    def error(self) -> np.ndarray:
        return np.abs(self.pred - self.labels)

    @property
    def worst(self) -> int:
        """Index of the window with the largest absolute error at any step."""
        return int(np.argmax(self.error.max(axis=1)))


def _windows(predictor: Predictor, lengths: Sequence[int], seed: int, count: int, t_low: float,
             t_high: float) -> List[_LengthWindows]:
    """``count`` windows per length, ``t0 ~ U[t_low, t_high)`` drawn in the order of ``lengths``."""
    rng = np.random.default_rng(seed)
    starts = [rng.uniform(t_low, t_high, size=count) for _ in lengths]
    if predictor.label_mode == "sequence":
        preds = [predictor.predict_function(t0, length) for length, t0 in zip(lengths, starts)]
    else:
        # One call per cut length k over every window that has a step k: one bound module per k.
        preds = [np.empty((count, length)) for length in lengths]
        for k in range(1, max(lengths) + 1):
            users = [i for i, length in enumerate(lengths) if length >= k]
            answer = predictor.predict_function(np.concatenate([starts[i] for i in users]), k)
            for j, i in enumerate(users):
                preds[i][:, k - 1] = answer[j * count:(j + 1) * count]
    out = []
    for length, t0, pred in zip(lengths, starts, preds):
        _, labels = make_windows(t0, length, predictor.step, "sequence", predictor.feature, half_sine)
        out.append(_LengthWindows(length, t0, labels, pred))
    return out


def _log_limits(values: np.ndarray) -> Tuple[float, float]:
    """Whole decades around the positive ``values`` (``(1e-8, 1)`` if there are none)."""
    positive = values[values > 0]
    if positive.size == 0:
        return 1e-8, 1.0
    return (float(10.0 ** np.floor(np.log10(positive.min()))),
            float(10.0 ** np.ceil(np.log10(positive.max()) + 1e-9)))


def _wrap(lines: Sequence[str], width: int) -> str:
    return "\n".join(textwrap.fill(line, width) for line in lines)


def _grid(panels: int) -> Tuple[int, int, float]:
    """Columns, rows (of values/error pairs) and the figure's width in inches for ``panels`` lengths."""
    cols = min(panels, 6 if panels > 12 else 4)
    return cols, (panels + cols - 1) // cols, max(3.3 * cols, 6.0)


def _error_limits(data: Sequence[_LengthWindows]) -> Tuple[float, float]:
    """One log scale for every error panel."""
    # Decades around the drawn curves (max and median), not around the best window's luckiest step.
    return _log_limits(np.concatenate([np.concatenate([w.error.max(axis=0), np.median(w.error, axis=0)])
                                       for w in data]))


def _row_value_limits(row: Sequence[_LengthWindows]) -> Tuple[float, float]:
    """One y-range for a row of values panels: their worst windows' labels and predictions, 6 % padding."""
    shown = [(w.labels[w.worst], w.pred[w.worst]) for w in row]
    low = min(min(lab.min(), pred.min()) for lab, pred in shown)
    high = max(max(lab.max(), pred.max()) for lab, pred in shown)
    pad = 0.06 * (high - low) if high > low else 0.05
    return low - pad, high + pad


def _draw_values(ax: "Axes", w: _LengthWindows, limits: Tuple[float, float], count: int, untrained: bool) -> None:
    """Label and prediction of the worst window, titled with its ``t0``."""
    steps = np.arange(1, w.length + 1)
    ax.plot(steps, w.labels[w.worst], "o-", color=COLOR_LABEL, markersize=3, label="label sin(t)/2")
    ax.plot(steps, w.pred[w.worst], "s--", color=COLOR_PRED, markersize=3, label="prediction")
    ax.set_ylim(*limits)
    ax.tick_params(labelbottom=False)
    title = f"L={w.length}: worst of {count}, t0={w.t0[w.worst]:.3f}"
    if untrained:
        title += f"\n{UNTRAINED_NOTE}"
    ax.set_title(title, fontsize=8, color=COLOR_UNTRAINED if untrained else "black")


def _draw_errors(ax: "Axes", w: _LengthWindows, limits: Tuple[float, float]) -> None:
    """Max and median over the windows of ``|prediction - label|`` per step, on a log scale."""
    steps = np.arange(1, w.length + 1)
    error = w.error
    ax.plot(steps, error.max(axis=0), "v-", color=COLOR_PRED, markersize=3, label="max")
    ax.plot(steps, np.median(error, axis=0), ".-", color="tab:blue", markersize=3, label="median")
    ax.set_yscale("log")
    ax.set_ylim(*limits)
    ax.grid(True, which="major", axis="y", linewidth=0.4, alpha=0.6)
    ax.set_xlabel("step", fontsize=8)


def _draw_panel(fig: "Figure", spec: "SubplotSpec", w: _LengthWindows, value_limits: Tuple[float, float],
                error_limits: Tuple[float, float], count: int, untrained: bool) -> Tuple["Axes", "Axes"]:
    """The values axes over the error axes of one length, sharing the step axis; returns both."""
    inner = spec.subgridspec(2, 1, height_ratios=[3, 2], hspace=0.0)
    ax_val = fig.add_subplot(inner[0], label=f"values L={w.length}")
    ax_err = fig.add_subplot(inner[1], sharex=ax_val, label=f"error L={w.length}")
    _draw_values(ax_val, w, value_limits, count, untrained)
    _draw_errors(ax_err, w, error_limits)
    ax_val.set_xlim(0.5, w.length + 0.5)
    if w.length <= 12:
        ax_val.set_xticks(np.arange(1, w.length + 1))
    else:
        locator: Any = ax_val.xaxis.get_major_locator()  # the default AutoLocator, a MaxNLocator
        locator.set_params(integer=True)
    for ax in (ax_val, ax_err):
        ax.tick_params(which="both", labelsize=7)
        if untrained:
            ax.set_facecolor("#fff4e6")
            for spine in ax.spines.values():
                spine.set_edgecolor(COLOR_UNTRAINED)
    return ax_val, ax_err


def _label_first_column(ax_val: "Axes", ax_err: "Axes", count: int, legend: bool) -> None:
    """Y-axis labels on a row's first panel, and the legends on the figure's first."""
    ax_val.set_ylabel("value", fontsize=8)
    ax_err.set_ylabel("|prediction - label|", fontsize=8)
    if legend:
        ax_val.legend(fontsize=7)
        ax_err.legend(fontsize=6.5, title=f"over {count} windows", title_fontsize=6.5)


def _add_texts(fig: "Figure", predictor: Predictor, lengths: Sequence[int], count: int, seed: int,
               t_range: Tuple[float, float], width: int) -> None:
    """The headline, and beneath the panels the notes on untrained lengths and on ``label_mode='last'``."""
    headline = [f"prediction vs label per step (the worst of {count} windows per length, one y-scale per row)",
             f"|prediction - label| per step (log scale, one scale for all; max and median over {count} windows); "
             f"t0 ~ U[{t_range[0]:g}, {t_range[1]:g}), seed {seed}"]
    fig.suptitle(_wrap(headline, width), fontsize=9)
    trained = predictor.trained_lengths
    notes = []
    if trained is None:
        notes.append("trained lengths unknown")
    elif any(n not in trained for n in lengths):
        notes.append(f"trained lengths {list(trained)}; the others (orange) are {UNTRAINED_NOTE}")
    if predictor.label_mode == "last":
        notes.append(LAST_MODE_NOTE.format(trained=list(trained) if trained is not None else "(unknown)"))
    if notes:
        last = predictor.label_mode == "last"
        box = {"boxstyle": "round", "facecolor": "#fdecea", "edgecolor": "darkred"} if last else None
        fig.supxlabel(_wrap(notes, width), fontsize=8.5, color="darkred" if last else "black", bbox=box)


def _prediction_figure(predictor: Predictor, lengths: Sequence[int], seed: int = 0, windows_per_length: int = 32,
                       t_low: float = 0.0, t_high: float = 1.0) -> "Figure":
    """The figure of :func:`plot_predictions` (not saved; the caller closes it).

    Axes carry labels ``"values L=<n>"`` and ``"error L=<n>"``; the error axes hold the lines
    labelled ``"max"`` and ``"median"`` (over windows, per step).
    """
    lengths = check_int_sequence("lengths", lengths, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    count = check_int("windows_per_length", windows_per_length, minimum=1)
    t_low, t_high = check_float("t_low", t_low), check_float("t_high", t_high)
    check_condition(t_low < t_high, f"t_low must be < t_high, got t_low={t_low}, t_high={t_high}")
    plt = _pyplot()
    data = _windows(predictor, lengths, seed, count, t_low, t_high)
    trained = predictor.trained_lengths
    cols, pairs, inches = _grid(len(lengths))
    fig = plt.figure(figsize=(inches, 1.0 + 4.0 * pairs), layout="constrained")
    outer = fig.add_gridspec(pairs, cols, hspace=0.08)
    error_limits = _error_limits(data)
    for pair in range(pairs):
        row = data[pair * cols:(pair + 1) * cols]
        value_limits = _row_value_limits(row)
        for col, w in enumerate(row):
            untrained = trained is not None and w.length not in trained
            ax_val, ax_err = _draw_panel(fig, outer[pair, col], w, value_limits, error_limits, count, untrained)
            if col == 0:
                _label_first_column(ax_val, ax_err, count, legend=pair == 0)
    _add_texts(fig, predictor, lengths, count, seed, (t_low, t_high), int(16 * inches))  # characters per line
    return fig


def plot_predictions(predictor: Predictor, lengths: Sequence[int], path: str, seed: int = 0, *,
                     windows_per_length: int = 32, t_low: float = 0.0, t_high: float = 1.0) -> str:
    """Save prediction vs label and the error per step for every length to ``path``; return ``path``.

    For each length, ``windows_per_length`` windows start at ``t0 ~ U[t_low, t_high)``, drawn by
    ``np.random.default_rng(seed).uniform(t_low, t_high, windows_per_length)``, once per length in
    the order of ``lengths``. A values panel shows prediction and label of the worst window (largest
    absolute error at any step), on one y-scale for the whole row of panels; beneath it an error
    panel shows the max and the median over the windows of ``|prediction - label|`` per step, on a
    log scale shared by every error panel. Lengths outside ``predictor.trained_lengths`` are marked
    "not trained: extrapolated". For ``label_mode='last'`` models the prediction at step k is the
    last-step output of the window cut to its first k steps, and the figure says that only the last
    step was trained. ``path`` ends in .png, .pdf or .svg and is written atomically.
    """
    check_condition(isinstance(path, str) and path != "", f"path must be a file name, got {path!r}", TypeError)
    check_output_file("path", path, PLOT_SUFFIXES)
    fig = _prediction_figure(predictor, lengths, seed=seed, windows_per_length=windows_per_length, t_low=t_low,
                             t_high=t_high)
    _save(_pyplot(), fig, path)
    return path


def plot_error_per_length(rows: Sequence[dict], path: str) -> str:
    """Save MSE and max absolute error per length (bars; trained lengths in blue, unseen in orange)."""
    check_condition(len(rows) > 0, "rows must not be empty")
    plt = _pyplot()
    lengths = [r["length"] for r in rows]
    colors = ["tab:blue" if r["trained"] else "tab:orange" for r in rows]
    fig, (ax_mse, ax_max) = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, key, title in ((ax_mse, "mse", "mean squared error (log scale)"), (ax_max, "max_abs_error",
                                                                                "max |error|")):
        ax.bar([str(n) for n in lengths], [r[key] for r in rows], color=colors)
        if key == "mse":
            ax.set_yscale("log")
        ax.set_xlabel("window length")
        ax.set_title(title, fontsize=10)
        ax.tick_params(labelsize=7)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in ("tab:blue", "tab:orange")]
    ax_mse.legend(handles, ["trained length", "unseen length"], fontsize=8)
    fig.tight_layout()
    _save(plt, fig, path)
    return path


def _save(plt, fig, path: str) -> None:
    """Save through a temporary file and a rename: ``path`` is complete or untouched."""
    try:
        with AtomicOutputs() as outputs:
            fig.savefig(outputs.stage(path), dpi=100)
    finally:
        plt.close(fig)
