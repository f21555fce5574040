"""The evaluation's pictures: confusion matrix, ROC and precision-recall curves.

Drawn by ``bot.report.chart`` (Pillow), in the plan's own process: a few milliseconds each.
"""

from __future__ import annotations

from typing import Literal

from bot.core.domain import Evaluation
from bot.report.chart import Line, Style, heatmap, line_chart

FILES = {"confusion_matrix": "confusion_matrix.png", "roc_curve": "roc_curve.png",
         "pr_curve": "pr_curve.png"}
CANDIDATE, CHAMPION, CHANCE = "#1f77b4", "#7f7f7f", "#bbbbbb"


def pngs(evaluation: Evaluation, champion: Evaluation | None = None) -> dict[str, bytes]:
    """The three PNGs by file name (``FILES``), the champion's curves overlaid when given."""
    return {
        FILES["confusion_matrix"]: confusion_matrix(evaluation),
        FILES["roc_curve"]: roc_curve(evaluation, champion),
        FILES["pr_curve"]: pr_curve(evaluation, champion),
    }


def confusion_matrix(evaluation: Evaluation) -> bytes:
    cm = evaluation.confusion_matrix
    counts = ((cm.tn, cm.fp), (cm.fn, cm.tp))
    # Colour by the share of each actual class: raw counts would show only the legit row.
    shares = [[n / max(sum(row), 1) for n in row] for row in counts]
    texts = [[f"{n:,}\n{share:.1%}" for n, share in zip(row, share_row, strict=True)]
             for row, share_row in zip(counts, shares, strict=True)]
    return heatmap(shares, texts, ["legit", "fraud"], xlabel="predicted", ylabel="actual",
                   title=f"Confusion matrix ({evaluation.rows:,} test rows)")


def roc_curve(evaluation: Evaluation, champion: Evaluation | None) -> bytes:
    chance = Line((0.0, 1.0), (0.0, 1.0), CHANCE, "chance", "dotted")
    return line_chart(_curves(chance, evaluation, champion, "roc"), title="ROC curve",
                      xlabel="false positive rate", ylabel="true positive rate (recall)",
                      legend="lower right")


def pr_curve(evaluation: Evaluation, champion: Evaluation | None) -> bytes:
    prevalence = evaluation.positives / evaluation.rows
    chance = Line((0.0, 1.0), (prevalence, prevalence), CHANCE, f"chance ({prevalence:.2%})",
                  "dotted")
    return line_chart(_curves(chance, evaluation, champion, "pr"),
                      title="Precision-recall curve", xlabel="recall", ylabel="precision",
                      legend="lower left")


def _curves(chance: Line, evaluation: Evaluation, champion: Evaluation | None,
            which: Literal["roc", "pr"]) -> list[Line]:
    """The chance line, the champion's curve (dashed) when given, then the candidate's."""
    metric, short = ("auc_roc", "AUC") if which == "roc" else ("pr_auc", "AP")
    lines = [chance]
    drawn: tuple[tuple[Evaluation | None, str, str, Style], ...] = (
        (champion, CHAMPION, "champion", "dashed"), (evaluation, CANDIDATE, "candidate", "solid"))
    for model, colour, name, style in drawn:
        if model is not None:
            curve = model.roc if which == "roc" else model.pr
            lines.append(Line(curve.x, curve.y, colour,
                              f"{name} ({short} {model.metrics[metric]:.4f})", style))
    return lines
