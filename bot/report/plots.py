"""The evaluation's pictures (6.2, 6.3): confusion matrix, ROC and precision-recall curves.

Figures are drawn with matplotlib's ``Figure`` and the Agg canvas directly, without pyplot:
no global state, no display, and matplotlib is imported only when pictures are asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bot.core.domain import Evaluation

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FILES = {"confusion_matrix": "confusion_matrix.png", "roc_curve": "roc_curve.png",
         "pr_curve": "pr_curve.png"}
_CANDIDATE, _CHAMPION = "#1f77b4", "#7f7f7f"
_SIZE, _DPI = (5.0, 4.2), 100


def import_matplotlib() -> None:
    """Import what drawing needs (half a second): the drawing process does it as it starts."""
    import matplotlib.backends.backend_agg
    import matplotlib.figure  # noqa: F401


def write_pngs(
    evaluation: Evaluation, out_dir: Path, champion: Evaluation | None = None
) -> dict[str, Path]:
    """Write the three PNGs into ``out_dir``, the champion's curves overlaid when given."""
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = {
        "confusion_matrix": _confusion_matrix(evaluation),
        "roc_curve": _roc_curve(evaluation, champion),
        "pr_curve": _pr_curve(evaluation, champion),
    }
    written = {}
    for name, figure in figures.items():
        path = out_dir / FILES[name]
        figure.savefig(path, dpi=_DPI)
        written[name] = path
    return written


def _figure() -> Figure:
    from matplotlib.figure import Figure

    figure = Figure(figsize=_SIZE)
    figure.subplots_adjust(left=0.13, right=0.96, bottom=0.12, top=0.92)
    return figure


def _confusion_matrix(evaluation: Evaluation) -> Figure:
    cm = evaluation.confusion_matrix
    counts = ((cm.tn, cm.fp), (cm.fn, cm.tp))
    # Colour by the share of each actual class: raw counts would show only the legit row.
    shares = [[n / max(sum(row), 1) for n in row] for row in counts]
    figure = _figure()
    axes = figure.subplots()
    axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for row in range(2):
        for column in range(2):
            share = shares[row][column]
            axes.text(column, row, f"{counts[row][column]:,}\n{share:.1%}", ha="center",
                      va="center", fontsize=12, color="white" if share > 0.5 else "black")
    axes.set_xticks([0, 1], labels=["legit", "fraud"])
    axes.set_yticks([0, 1], labels=["legit", "fraud"])
    axes.set_xlabel("predicted")
    axes.set_ylabel("actual")
    axes.set_title(f"Confusion matrix ({evaluation.rows:,} test rows)")
    return figure


def _roc_curve(evaluation: Evaluation, champion: Evaluation | None) -> Figure:
    figure = _figure()
    axes = figure.subplots()
    axes.plot([0, 1], [0, 1], linestyle=":", color="#bbbbbb", label="chance")
    if champion is not None:
        axes.plot(champion.roc.x, champion.roc.y, color=_CHAMPION, linestyle="--",
                  label=f"champion (AUC {champion.metrics['auc_roc']:.4f})")
    axes.plot(evaluation.roc.x, evaluation.roc.y, color=_CANDIDATE,
              label=f"candidate (AUC {evaluation.metrics['auc_roc']:.4f})")
    axes.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate",
             ylabel="true positive rate (recall)", title="ROC curve")
    axes.legend(loc="lower right")
    return figure


def _pr_curve(evaluation: Evaluation, champion: Evaluation | None) -> Figure:
    figure = _figure()
    axes = figure.subplots()
    prevalence = evaluation.positives / evaluation.rows
    axes.axhline(prevalence, linestyle=":", color="#bbbbbb", label=f"chance ({prevalence:.2%})")
    if champion is not None:
        axes.plot(champion.pr.x, champion.pr.y, color=_CHAMPION, linestyle="--",
                  label=f"champion (AP {champion.metrics['pr_auc']:.4f})")
    axes.plot(evaluation.pr.x, evaluation.pr.y, color=_CANDIDATE,
              label=f"candidate (AP {evaluation.metrics['pr_auc']:.4f})")
    axes.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="recall", ylabel="precision",
             title="Precision-recall curve")
    axes.legend(loc="lower left")
    return figure
