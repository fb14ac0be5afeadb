"""Draw the plots of BENCHMARKS.md from the figures in its own tables (docs/img/*.svg).

Run after changing a figure: ``python docs/_gen/benchmark_plots.py`` (needs the ``plot`` extra). The
numbers are read from BENCHMARKS.md's tables by their row labels, so a plot never shows a figure the
text does not.
"""
import re
import sys
from pathlib import Path
from typing import Dict, List

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "img"
matplotlib.rcParams.update({"svg.hashsalt": "sinlstm-sym", "font.size": 9})  # same file for the same figures


def table_rows(text: str) -> Dict[str, List[str]]:
    """Every Markdown table row of ``text`` by its first cell (backquotes and bold removed)."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            cells = [re.sub(r"[`*]", "", c).strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def number(cell: str) -> float:
    """The first number of a cell ('337,222', '0.44 s (750 updates)', '+1.6 / +5.2 MiB')."""
    match = re.search(r"[-+]?[0-9][0-9,]*\.?[0-9]*", cell)
    if match is None:
        raise ValueError(f"no number in {cell!r}")
    return float(match.group(0).replace(",", ""))


def numbers(cell: str) -> List[float]:
    return [float(m.replace(",", "")) for m in re.findall(r"[-+]?[0-9][0-9,]*\.?[0-9]*", cell)]


def throughput(rows: Dict[str, List[str]]) -> None:
    tasks = [("length 9", "PyTorch, length 9, last-step loss, 2 threads", "fit, length 9, last-step loss"),
             ("lengths 1..9", "PyTorch, lengths 1..9, every step, 2 threads", "fit, lengths 1..9, every step")]
    fig, ax = plt.subplots(figsize=(6, 3))
    width = 0.18
    for i, (_, torch_row, fit_row) in enumerate(tasks):
        for j, (label, row, color) in enumerate([("PyTorch, run 1", torch_row, "#999999"),
                                                 ("PyTorch, run 2", torch_row, "#cccccc"),
                                                 ("fit, run 1", fit_row, "#1f77b4"),
                                                 ("fit, run 2", fit_row, "#6baed6")]):
            value = number(rows[row][0 if "run 1" in label else 2]) / 1000
            ax.bar(i + (j - 1.5) * width, value, width, color=color, label=label if i == 0 else None)
            ax.text(i + (j - 1.5) * width, value, f"{value:.0f}k", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(tasks)), [t for t, _, _ in tasks])
    ax.set_ylabel("thousand windows / s")
    ax.set_title("Training throughput, 2 CPU cores (bench/train_throughput.py)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(OUT / "throughput.svg", metadata={"Date": None})
    plt.close(fig)


def time_to_accuracy(rows: Dict[str, List[str]]) -> None:
    labels = ["to max abs error 0.003", "all 2000 updates"]
    fig, ax = plt.subplots(figsize=(6, 2.6))
    for i, label in enumerate(labels):
        library, torch = number(rows[label][0]), number(rows[label][1])
        for j, (name, value, color) in enumerate([("library", library, "#1f77b4"), ("PyTorch", torch, "#999999")]):
            ax.barh(i + (j - 0.5) * 0.35, value, 0.35, color=color, label=name if i == 0 else None)
            ax.text(value, i + (j - 0.5) * 0.35, f" {value:.2f} s", va="center", fontsize=7)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("seconds of training (median of seeds 0, 1, 2)")
    ax.set_title("Time to accuracy (bench/time_to_accuracy.py)")
    ax.set_xlim(0, ax.get_xlim()[1] * 1.15)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(OUT / "time-to-accuracy.svg", metadata={"Date": None})
    plt.close(fig)


def memory(text: str, rows: Dict[str, List[str]]) -> None:
    fused = numbers(re.search(r"length \(([-+0-9., ]+) MiB after lengths 1\.\.9\)", " ".join(text.split())).group(1))
    native = numbers(rows["native"][3])
    fig, ax = plt.subplots(figsize=(6, 2.8))
    ax.plot(range(1, len(fused) + 1), fused, "o-", color="#999999", label="fused cell (oneDNN)")
    ax.plot([1, 9], native, "o", color="#1f77b4", label="native cell (measured at 1 and 9)")
    ax.set_xlabel("bucket lengths bound so far (1..k)")
    ax.set_ylabel("RSS growth, MiB")
    ax.set_title("Memory per bucket length (bench/bucket_memory.py)")
    ax.set_xticks(range(1, 10))
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(OUT / "memory.svg", metadata={"Date": None})
    plt.close(fig)


def main() -> int:
    text = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    rows = table_rows(text)
    OUT.mkdir(exist_ok=True)
    throughput(rows)
    time_to_accuracy(rows)
    memory(text, rows)
    print(f"wrote {', '.join(sorted(p.name for p in OUT.glob('*.svg')))} to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
