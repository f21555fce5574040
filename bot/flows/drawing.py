"""The plan's PNGs, drawn in a process of their own beside the plan's own work.

matplotlib's import (half a second) and the drawing are Python work: on a thread they would
take turns with the plan's Python work (the GIL). A process spawned before training imports
matplotlib on the core that the plan's single-threaded steps (reading the data, importing
xgboost) leave idle, and draws while the plan reads live state and writes its comment. If
that process cannot draw (it could not start, or died), the pictures are drawn here.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from bot.report import plots

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

    from bot.core.domain import Evaluation


def _start(parent: int) -> None:
    """In the drawing process: end with the plan (killed, it cannot say so), then import.

    What the import made lives as long as the process: frozen, the collector no longer
    walks it, neither while drawing nor at exit, which the plan waits for.
    """
    threading.Thread(target=_end_with, args=(parent,), daemon=True).start()
    plots.import_matplotlib()
    gc.freeze()


def _end_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(0)  # the plan is gone: so is anything it wanted drawn


class Painter:
    """A process that imports matplotlib now and draws the PNGs when asked."""

    def __init__(self) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self._pool: ProcessPoolExecutor | None
        try:
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=_start, initargs=(os.getpid(),))
            self._pool.submit(int)  # starts the process, and its import, now
        except OSError:  # no process can be started here: draw in this one
            self._pool = None

    def draw(self, evaluation: Evaluation, out_dir: Path,
             champion: Evaluation | None = None) -> Callable[[], dict[str, Path]]:
        """Start drawing; the returned call waits for the written PNGs (``plots.write_pngs``)."""
        from concurrent.futures.process import BrokenProcessPool

        def here() -> dict[str, Path]:
            return plots.write_pngs(evaluation, out_dir, champion)

        if self._pool is None:
            return here
        try:
            future = self._pool.submit(plots.write_pngs, evaluation, out_dir, champion)
        except BrokenProcessPool:
            return here

        def written() -> dict[str, Path]:
            try:
                return future.result()
            except (BrokenProcessPool, OSError):
                return here()

        return written

    def __enter__(self) -> Painter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
