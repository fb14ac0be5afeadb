"""Pictures of predictions per step (needs the optional ``plot`` extra: matplotlib)."""
from typing import Sequence

import numpy as np

from .checks import check_condition, check_int_sequence
from .outputs import AtomicOutputs
from .data import half_sine, make_windows
from .predictor import Predictor


def _pyplot():
    try:
        import matplotlib
    except ImportError as err:
        raise ImportError("plotting needs matplotlib: pip install 'sinlstm-sym[plot]' (or '.[plot]')") from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_predictions(predictor: Predictor, lengths: Sequence[int], path: str, seed: int = 0) -> str:
    """Save prediction vs label at every step of one window per length to ``path`` (PNG); return ``path``.

    For ``label_mode='last'`` models the prediction at step k is the last-step output of
    the window cut to its first k steps, which is what the model answers for length k.
    """
    lengths = check_int_sequence("lengths", lengths, minimum=1)
    check_condition(isinstance(path, str) and path != "", f"path must be a file name, got {path!r}", TypeError)
    plt = _pyplot()
    rng = np.random.default_rng(seed)
    cols = min(4, len(lengths))
    rows = (len(lengths) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, length in zip(axes.ravel(), lengths):
        t0 = rng.uniform(0.0, 1.0, size=1)
        _, labels = make_windows(t0, length, predictor.step, "sequence", predictor.feature, half_sine)
        if predictor.label_mode == "sequence":
            pred = predictor.predict_function(t0, length)[0]
        else:
            pred = np.array([predictor.predict_function(t0, k)[0] for k in range(1, length + 1)])
        steps = np.arange(1, length + 1)
        ax.plot(steps, labels[0], "o-", label="label sin(t)/2", color="black", markersize=3)
        ax.plot(steps, pred, "s--", label="prediction", color="tab:red", markersize=3)
        ax.set_title(f"L={length}, t0={t0[0]:.3f}", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        if length <= 12:
            ax.set_xticks(steps)
        else:
            ax.xaxis.get_major_locator().set_params(integer=True)
    for ax in axes.ravel()[len(lengths):]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("prediction vs label per step, one window per length", fontsize=10)
    fig.tight_layout()
    _save(plt, fig, path)
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
