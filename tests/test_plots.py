"""The evaluation's PNGs: confusion matrix, ROC and PR curves, champion overlaid.

The pictures are read back with Pillow and looked at where the data says something must be
drawn: a curve's colour at its points, a cell's shade by its share.
"""

from __future__ import annotations

import io
import itertools
import math

import numpy as np
import pytest
from PIL import Image

from bot.core.evaluation import evaluate
from bot.report import chart, plots

PNG = b"\x89PNG\r\n\x1a\n"


def scores(seed: int, strength: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = (rng.random(5_000) < 0.01).astype(int)
    noise = np.random.default_rng(seed).normal(0, 0.15, labels.size)
    return labels, np.clip(0.1 + strength * labels + noise, 0, 1)


def picture(png: bytes) -> Image.Image:
    assert png.startswith(PNG)
    image = Image.open(io.BytesIO(png))
    image.load()
    return image.convert("RGB")


def pixel(x: float, y: float, ylim: float = 1.01) -> tuple[int, int]:
    """Where data point (x, y) lands on a line chart, from the published layout."""
    width, height = chart.SIZE
    left, top, right, bottom = (chart.BOX[0] * width, chart.BOX[1] * height,
                                chart.BOX[2] * width, chart.BOX[3] * height)
    return round(left + x * (right - left)), round(bottom - y / ylim * (bottom - top))


def near(image: Image.Image, at: tuple[int, int], colour: str, radius: int = 2) -> bool:
    """Whether a pixel within ``radius`` of ``at`` has about ``colour``."""
    want = chart._rgb(colour)
    return any(
        sum(abs(a - b) for a, b in zip(image.getpixel((at[0] + dx, at[1] + dy)), want,
                                       strict=True)) < 60
        for dx in range(-radius, radius + 1) for dy in range(-radius, radius + 1))


def test_three_pngs_of_the_same_size_are_drawn() -> None:
    labels, candidate = scores(1, 0.6)
    _, champion = scores(2, 0.3)
    drawn = plots.pngs(evaluate(labels, candidate), evaluate(labels, champion))

    assert sorted(drawn) == ["confusion_matrix.png", "pr_curve.png", "roc_curve.png"]
    assert sorted(drawn) == sorted(plots.FILES.values())
    for png in drawn.values():
        assert picture(png).size == chart.SIZE


def test_the_champion_is_drawn_on_the_curves_only() -> None:
    labels, candidate = scores(1, 0.6)
    _, champion = scores(2, 0.3)
    alone = plots.pngs(evaluate(labels, candidate))
    overlaid = plots.pngs(evaluate(labels, candidate), evaluate(labels, champion))

    assert alone["roc_curve.png"] != overlaid["roc_curve.png"]
    assert alone["pr_curve.png"] != overlaid["pr_curve.png"]
    assert alone["confusion_matrix.png"] == overlaid["confusion_matrix.png"]
    assert plots.pngs(evaluate(labels, candidate)) == alone  # the same input, the same bytes


def test_the_roc_curve_is_drawn_through_its_points() -> None:
    labels = np.array([0] * 50 + [1] * 50)
    perfect = evaluate(labels, np.r_[np.linspace(0, 0.4, 50), np.linspace(0.6, 1, 50)])
    useless = evaluate(labels, np.r_[np.linspace(0, 1, 50), np.linspace(0, 1, 50)])
    sharp = picture(plots.roc_curve(perfect, None))
    flat = picture(plots.roc_curve(useless, None))

    # A perfect ranking runs up the left edge and along the top; a useless one, the diagonal.
    assert near(sharp, pixel(0.5, 1.0), plots.CANDIDATE)
    assert not near(sharp, pixel(0.5, 0.5), plots.CANDIDATE)
    assert near(flat, pixel(0.5, 0.5), plots.CANDIDATE)
    assert not near(flat, pixel(0.5, 1.0), plots.CANDIDATE)
    # The champion, when given, is drawn in its own colour along its own curve.
    both = picture(plots.roc_curve(perfect, useless))
    assert near(both, pixel(0.3, 0.3), plots.CHAMPION)


def test_the_pr_curve_is_drawn_through_its_points() -> None:
    labels = np.array([0] * 90 + [1] * 10)
    # Ten frauds, the first five ranked above every legit row, the other five below all.
    values = np.r_[np.linspace(0.2, 0.7, 90), np.full(5, 0.9), np.linspace(0.0, 0.1, 5)]
    evaluation = evaluate(labels, values)
    image = picture(plots.pr_curve(evaluation, None))

    assert near(image, pixel(0.25, 1.0), plots.CANDIDATE)  # precision 1 up to recall 0.5
    assert not near(image, pixel(0.25, 0.5), plots.CANDIDATE)


@pytest.mark.parametrize(("tn", "fp"), [(90, 10), (10, 90)])
def test_each_cell_of_the_confusion_matrix_is_shaded_by_its_share_of_the_row(
        tn: int, fp: int) -> None:
    labels = np.array([0] * (tn + fp) + [1] * 20)
    values = np.r_[np.zeros(tn), np.ones(fp), np.ones(20)]  # every fraud caught
    image = picture(plots.confusion_matrix(evaluate(labels, values)))
    width, height = chart.SIZE
    left, top = chart.BOX[0] * width, chart.BOX[1] * height
    right, bottom = chart.BOX[2] * width, chart.BOX[3] * height
    side = min(right - left, bottom - top)
    left += (right - left - side) / 2

    def brightness(row: int, column: int) -> int:
        # Near the cell's top-left corner: away from the text at its centre.
        x = round(left + column * side / 2 + side / 10)
        y = round(top + row * side / 2 + side / 10)
        return sum(image.getpixel((x, y)))

    darker, lighter = ((0, 0), (0, 1)) if tn > fp else ((0, 1), (0, 0))
    assert brightness(*darker) < brightness(*lighter)
    assert brightness(1, 1) < brightness(1, 0)  # all frauds caught: tp 100 %, fn 0 %
    assert brightness(1, 0) > 3 * 240  # a share of 0 is (nearly) white


def test_the_blues_scale_darkens_from_white_to_navy() -> None:
    shades = [sum(chart._rgb(chart.blues(share))) for share in np.linspace(0, 1, 21)]

    assert chart.blues(0.0) == "#f7fbff" and chart.blues(1.0) == "#08306b"
    assert all(a > b for a, b in itertools.pairwise(shades))
    assert chart.blues(-1.0) == chart.blues(0.0) and chart.blues(2.0) == chart.blues(1.0)


@pytest.mark.parametrize(("on", "off"), [(7.0, 4.0), (1.5, 3.0), (30.0, 1.0)])
def test_dashes_keep_the_pattern_along_a_bent_line(on: float, off: float) -> None:
    points = [(0.0, 0.0), (100.0, 0.0), (100.0, 50.0), (160.0, 130.0)]
    total = 100 + 50 + 100

    pieces = list(chart._dashes(points, on, off))
    lengths = [sum(math.dist(a, b) for a, b in itertools.pairwise(p)) for p in pieces]

    assert all(length <= on + 1e-9 for length in lengths)
    assert sum(lengths) == pytest.approx(on / (on + off) * total, abs=on)
    assert pieces[0][0] == points[0]


def test_the_confusion_matrix_never_shows_a_real_count_as_zero_percent() -> None:
    from dataclasses import replace

    from test_plan_comment import EVALUATION

    from bot.core.domain import ConfusionMatrix

    evaluation = replace(EVALUATION, confusion_matrix=ConfusionMatrix(56_849, 14, 0, 98))
    assert plots.confusion_texts(evaluation) == [["56,849\n>99.9 %", "14\n<0.1 %"],
                                                 ["0\n0.0 %", "98\n100.0 %"]]
