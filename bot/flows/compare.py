"""Compare two model files offline on a test file, exactly as ``plan`` would.

Data scientists run it before opening a pull request: the same scoring, evaluation,
comparison and gates as the plan (``bot.flows.judge``), with the request's gates, or the
format's defaults without a request.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bot.adapters import data_files as data
from bot.adapters.data_files import ParquetTable
from bot.adapters.request_files import load_request
from bot.core import training
from bot.core.domain import Champion, Compared
from bot.core.request import Gates
from bot.errors import BotError
from bot.flows.judge import Progress, judge

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

DEFAULT_TARGET_COLUMN = "Class"


def compare(candidate: Path, champion: Path, test: str, request: Path | None = None,
            progress: Progress = lambda _: None,
            feature_columns: list[str] | None = None) -> Compared:
    """Judge the ``candidate`` model file against the ``champion`` one on ``test``.

    ``feature_columns`` (else the request's ``data.feature_columns``) name the columns of a
    model file without feature names, in training order."""
    gates, target_column = Gates(), DEFAULT_TARGET_COLUMN
    if request is not None:
        if not request.is_file():
            raise BotError(f"{request}: no such request file")
        parsed, _ = load_request(request, display_path=str(request))
        gates, target_column = parsed.gates, parsed.data.target_column
        if feature_columns is None:
            feature_columns = parsed.data.feature_columns
    boosters = [training.load_model_file(_read(path), str(path))
                for path in (candidate, champion)]
    progress(f"evaluating on {test} ...")
    with _open_test(test, target_column) as table:
        judgement = judge(gates, table, target_column, boosters[0],
                          Champion(champion.name, f"model file {champion}", {}), boosters[1],
                          progress, feature_columns)
    return Compared(str(candidate), str(champion), test, gates.primary_metric, judgement)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise BotError(f"{path}: no such model file") from None
    except OSError as error:
        raise BotError(f"{path}: cannot be read ({error.strerror})") from None


def _open_test(test: str, target_column: str) -> AbstractContextManager[ParquetTable]:
    """The test table from an ``s3://`` URI or a local Parquet file."""
    if test.startswith("s3://"):
        return data.open_table(test, Path("."), target_column)
    path = Path(test).expanduser().resolve()
    if not path.is_file():
        raise BotError(f"{test}: no such test file")
    return data.open_table(path.name, path.parent, target_column)
