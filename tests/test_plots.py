"""The evaluation's PNGs: confusion matrix, ROC and PR curves, champion overlaid."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bot.core.evaluation import evaluate
from bot.report.plots import write_pngs

PNG = b"\x89PNG\r\n\x1a\n"


def scores(seed: int, strength: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = (rng.random(5_000) < 0.01).astype(int)
    noise = np.random.default_rng(seed).normal(0, 0.15, labels.size)
    return labels, np.clip(0.1 + strength * labels + noise, 0, 1)


def test_three_pngs_are_written(tmp_path: Path) -> None:
    labels, candidate = scores(1, 0.6)
    _, champion = scores(2, 0.3)
    written = write_pngs(evaluate(labels, candidate), tmp_path / "out",
                         champion=evaluate(labels, champion))

    assert written == {"confusion_matrix": tmp_path / "out" / "confusion_matrix.png",
                       "roc_curve": tmp_path / "out" / "roc_curve.png",
                       "pr_curve": tmp_path / "out" / "pr_curve.png"}
    for path in written.values():
        assert path.read_bytes().startswith(PNG)
        assert path.stat().st_size > 5_000


def test_the_champion_is_drawn_on_the_curves_only(tmp_path: Path) -> None:
    labels, candidate = scores(1, 0.6)
    _, champion = scores(2, 0.3)
    alone = write_pngs(evaluate(labels, candidate), tmp_path / "alone")
    overlaid = write_pngs(evaluate(labels, candidate), tmp_path / "overlaid",
                          champion=evaluate(labels, champion))

    assert alone["roc_curve"].read_bytes() != overlaid["roc_curve"].read_bytes()
    assert alone["pr_curve"].read_bytes() != overlaid["pr_curve"].read_bytes()
    assert alone["confusion_matrix"].read_bytes() == overlaid["confusion_matrix"].read_bytes()


def test_the_drawing_process_draws_what_this_process_draws(tmp_path: Path) -> None:
    from bot.flows.drawing import Painter

    labels, candidate = scores(1, 0.6)
    _, champion = scores(2, 0.3)
    evaluation, other = evaluate(labels, candidate), evaluate(labels, champion)
    here = write_pngs(evaluation, tmp_path / "here", champion=other)
    with Painter() as painter:
        there = painter.draw(evaluation, tmp_path / "there", other)()

    assert {name: path.read_bytes() for name, path in there.items()} == {
        name: path.read_bytes() for name, path in here.items()}
    assert all(path.parent == tmp_path / "there" for path in there.values())


def test_pictures_are_drawn_here_when_the_drawing_process_dies(tmp_path: Path) -> None:
    import os
    import signal

    from bot.flows.drawing import Painter

    labels, candidate = scores(1, 0.6)
    with Painter() as painter:
        pool = painter._pool
        assert pool is not None
        for pid in list(pool._processes):  # the process is started: kill it
            os.kill(pid, signal.SIGKILL)
        written = painter.draw(evaluate(labels, candidate), tmp_path / "out")()

    assert sorted(path.name for path in written.values()) == [
        "confusion_matrix.png", "pr_curve.png", "roc_curve.png"]
    assert all(path.read_bytes().startswith(PNG) for path in written.values())
