"""Training and test data: Parquet from S3 or the repository, its versions, and sample data.

The public credit-card fraud set cannot be downloaded here, so ``generate_sample`` makes a
synthetic one of the same shape and imbalance; loading stays the real code (Parquet from S3).

Big tables are read a batch at a time: ``open_table`` gives a ``ParquetTable`` over a file on
disk (the repository's own, or an S3 object streamed to a temporary file by ``local_copy``)
that reads it whole or in record batches, so memory can hold one batch, not the table.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.parquet as pq
from botocore.exceptions import BotoCoreError, ClientError

from bot.adapters.aws import s3
from bot.adapters.aws.clients import error_code
from bot.adapters.aws.s3 import object_version, split_uri
from bot.core.request_values import check_data_uri
from bot.errors import BotError

if TYPE_CHECKING:
    import numpy.typing as npt

#: Share of frauds in the public data set (492 of 284,807).
FRAUD_RATE = 0.00172
#: Seconds covered by the public data set's ``Time`` column (two days).
TWO_DAYS = 172_792
DAY = 86_400
TARGET = "Class"
SPLIT_FILES = ("train.parquet", "test.parquet")

# Components that carry the fraud signal, the direction of the shift and its relative weight;
# the public set's most informative components are V14, V12, V10, V17, V4, V11, V3, V7.
_SIGNAL_COLUMNS = (13, 11, 9, 16, 3, 10, 2, 6)
_SIGNAL_DIRECTIONS = (-1.0, -1.0, -1.0, -1.0, 1.0, 1.0, -1.0, -1.0)
_SIGNAL_WEIGHTS = (1.0, 0.9, 0.8, 0.7, 0.7, 0.6, 0.5, 0.4)
_SHIFT = 7.0  # size of the fraud shift, in standard deviations, at full strength
_TAIL_DF = 5.0  # Student's t degrees of freedom of the components: heavy tails, as in the set
# Kinds of fraud, by share: shifted on the signal components (what a linear model sees);
# revealed only by an interaction of two components (same sign, both large: invisible to
# each one alone); card testing (small amounts at night: Time and Amount together); and
# stealthy ones that look legit, so that no model reaches a ROC AUC of 1.
_KINDS = {"shifted": 0.65, "interaction": 0.15, "card_testing": 0.13, "stealthy": 0.07}
_INTERACTION_COLUMNS = (1, 4)  # V2 and V5: no marginal shift, but their product is large
_DECOYS = 0.0003  # legit rows that look like fraud: the false positives of a good model


def generate_sample(rows: int = 284_807, seed: int = 0) -> pd.DataFrame:
    """Synthetic transactions shaped like the public fraud set: learnable, not separable.

    ``V1``..``V28`` are PCA-like components of falling scale with heavy (Student's t)
    tails; ``Time`` covers two days with a daily cycle (few transactions at night);
    ``Amount`` is log-normal, frauds' amounts lower than legit ones' on the median (many
    small test charges) but with a long tail. Exactly ``round(rows * 0.00172)`` rows (at
    least one) are fraud, of four kinds (``_KINDS``): most are shifted on a handful of
    components, some only an interaction reveals (two components large with the same sign;
    small amounts at night), some look legit; a few legit rows look like fraud. As on the
    public set, trees beat a linear model on it.
    """
    if rows < 2:
        raise BotError(f"sample data needs at least 2 rows, not {rows}")
    rng = np.random.default_rng(seed)
    n_fraud = min(rows - 1, max(1, round(rows * FRAUD_RATE)))
    frauds = rng.choice(rows, n_fraud, replace=False)
    label = np.zeros(rows, dtype=np.int64)
    label[frauds] = 1
    kind = rng.choice(len(_KINDS), n_fraud, p=list(_KINDS.values()))
    shifted, interaction, card_testing, _ = (kind == k for k in range(len(_KINDS)))

    # Unit-variance Student's t: excess kurtosis far above a Gaussian's 0.
    components = rng.standard_t(_TAIL_DF, (rows, 28)) / np.sqrt(_TAIL_DF / (_TAIL_DF - 2))
    columns = np.array(_SIGNAL_COLUMNS)
    shift = _SHIFT * np.array(_SIGNAL_DIRECTIONS) * np.array(_SIGNAL_WEIGHTS)
    moved = frauds[shifted]
    strength = rng.uniform(0.4, 1.0, moved.size)
    components[np.ix_(moved, columns)] += strength[:, None] * shift + (
        rng.standard_normal((moved.size, columns.size)) * 0.8
    )
    paired = frauds[interaction]
    sign = rng.choice((-1.0, 1.0), paired.size)
    for column in _INTERACTION_COLUMNS:
        components[paired, column] = sign * rng.uniform(2.5, 4.5, paired.size)
    testing = frauds[card_testing]
    components[np.ix_(testing, columns)] += rng.uniform(0.05, 0.25, testing.size)[:, None] * shift
    legit = np.flatnonzero(label == 0)
    decoys = rng.choice(legit, min(legit.size, round(rows * _DECOYS)), replace=False)
    components[np.ix_(decoys, columns)] += rng.uniform(0.2, 0.8, decoys.size)[:, None] * shift
    components *= np.geomspace(1.95, 0.33, 28)  # like PCA: variance falls with the index

    # Hour of day: legit transactions follow the day (two peaks, a trough from 1 to 7 am);
    # frauds are spread more evenly, and card testing happens at night.
    hour = np.where(rng.random(rows) < 0.5, rng.normal(11.5, 3.0, rows),
                    rng.normal(19.0, 2.8, rows)) % 24
    hour[frauds] = np.where(rng.random(n_fraud) < 0.4, rng.uniform(0, 24, n_fraud),
                            hour[frauds])
    hour[testing] = rng.uniform(1.0, 5.0, testing.size)
    day = rng.random(rows) < 0.5
    time = np.minimum(day * DAY + hour * 3600, TWO_DAYS).round()

    amount = np.exp(rng.normal(3.1, 1.3, rows))  # median about 22, as legit's in the set
    big = frauds[shifted | interaction]
    amount[big] = np.where(rng.random(big.size) < 0.45, np.exp(rng.normal(0.2, 0.7, big.size)),
                           np.exp(rng.normal(4.6, 1.4, big.size)))
    amount[testing] = rng.uniform(0.5, 2.0, testing.size)
    frame = pd.DataFrame(components, columns=[f"V{i}" for i in range(1, 29)])
    frame.insert(0, "Time", time)
    frame["Amount"] = amount.round(2)
    frame[TARGET] = label
    return frame.sort_values("Time", kind="stable").reset_index(drop=True)


def split(
    frame: pd.DataFrame, test_fraction: float = 0.2, seed: int = 0, target_column: str = TARGET
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified train/test split: each class keeps its share; rows keep their order."""
    if not 0 < test_fraction < 1:
        raise BotError(f"test fraction must be between 0 and 1, not {test_fraction}")
    rng = np.random.default_rng(seed)
    labels = frame[target_column].to_numpy()
    in_test = np.zeros(len(frame), dtype=bool)
    for value in np.unique(labels):
        members = np.flatnonzero(labels == value)
        in_test[rng.choice(members, round(members.size * test_fraction), replace=False)] = True
    return (frame[~in_test].reset_index(drop=True), frame[in_test].reset_index(drop=True))


def write_sample(out: str, rows: int = 284_807, seed: int = 0) -> list[str]:
    """Write ``train.parquet`` and ``test.parquet`` of sample data to a directory or S3 prefix.

    For S3 the bucket must exist: the bot creates no buckets.
    """
    if not out.startswith("s3://"):
        directory = Path(out)
        directory.mkdir(parents=True, exist_ok=True)
        paths = [directory / name for name in SPLIT_FILES]
        for path, part in zip(paths, split(generate_sample(rows, seed), seed=seed), strict=True):
            part.to_parquet(path, index=False)
        return [str(path) for path in paths]

    bucket, _, prefix = out[len("s3://"):].partition("/")
    if not bucket:
        raise BotError(f"{out}: an s3:// location needs a bucket: s3://BUCKET/PREFIX")
    _check_bucket(bucket)
    prefix = prefix.strip("/")
    keys = [f"{prefix}/{name}" if prefix else name for name in SPLIT_FILES]
    for key, part in zip(keys, split(generate_sample(rows, seed), seed=seed), strict=True):
        body = io.BytesIO()
        part.to_parquet(body, index=False)
        _s3_call(f"s3://{bucket}/{key}", s3.put, bucket, key, body.getvalue())
    return [f"s3://{bucket}/{key}" for key in keys]


@contextlib.contextmanager
def local_copy(uri: str, repo_root: Path, version_id: str | None = None) -> Iterator[Path]:
    """A file on disk holding the data at ``uri``: the repository's file itself, or the S3
    object (its version ``version_id``, else the current one) streamed to a temporary file
    (deleted afterwards); never the whole object in memory.
    """
    if not uri.startswith("s3://"):
        yield _repo_file(uri, repo_root)
        return
    bucket, key = split_uri(uri)
    with tempfile.TemporaryDirectory(prefix="promotion-bot-data-") as directory:
        path = Path(directory) / (Path(key).name or "data")
        _s3_call(uri, s3.download, bucket, key, str(path), None, version_id)
        yield path


@contextlib.contextmanager
def open_table(uri: str, repo_root: Path, target_column: str | None = None
               ) -> Iterator[ParquetTable]:
    """The Parquet table at ``s3://bucket/key`` or a path inside ``repo_root``, to read whole
    or in batches (``ParquetTable``); with ``target_column``, a table without it is refused."""
    with local_copy(uri, repo_root) as path:
        yield ParquetTable(path, uri, target_column)


class ParquetTable:
    """A Parquet file read in record batches: its columns, row count and batches of columns."""

    def __init__(self, path: Path, uri: str, target_column: str | None = None) -> None:
        self.uri = uri
        try:
            # Buffered, not pre-buffered: a column chunk is read a piece at a time, not whole.
            self._file: pq.ParquetFile = pq.ParquetFile(
                path, buffer_size=1 << 16, pre_buffer=False)
        except (pyarrow.ArrowException, ValueError, OSError) as error:
            raise BotError(f"{uri}: not a readable Parquet file ({error})") from error
        self.columns = [str(name) for name in self._file.schema_arrow.names]
        self.rows = int(self._file.metadata.num_rows)
        if target_column is not None and target_column not in self.columns:
            raise BotError(
                f"{uri}: has no target column {target_column!r} "
                f"(columns: {', '.join(self.columns[:40])})"
            )

    @property
    def schema(self) -> pyarrow.Schema:
        return self._file.schema_arrow

    def features(self, target_column: str) -> list[str]:
        """Every column but the target, in the file's order: a model's inputs."""
        return [name for name in self.columns if name != target_column]

    def batches(self, columns: Sequence[str], rows: int) -> Iterator[pyarrow.RecordBatch]:
        """The file's ``columns`` in batches of at most ``rows`` rows, in order."""
        missing = [name for name in columns if name not in self.columns]
        if missing:
            raise BotError(f"{self.uri}: lacks the columns {', '.join(missing[:10])}")
        try:
            yield from self._file.iter_batches(batch_size=rows, columns=list(columns),
                                               use_threads=False)
        except (pyarrow.ArrowException, ValueError, OSError) as error:
            raise BotError(f"{self.uri}: cannot read its Parquet data ({error})") from error

    def read(self, columns: Sequence[str]) -> pd.DataFrame:
        """The file's ``columns`` whole (for a label column: a byte or so a row), read by
        several threads."""
        try:
            return self._file.read(columns=list(columns)).to_pandas()
        except (pyarrow.ArrowException, ValueError, OSError) as error:
            raise BotError(f"{self.uri}: cannot read its Parquet data ({error})") from error

    def frames(self, columns: Sequence[str], rows: int) -> Iterator[pd.DataFrame]:
        """Like ``batches``, as pandas frames."""
        for batch in self.batches(columns, rows):
            yield batch.to_pandas()

    def take(self, indices: npt.NDArray[np.int64], columns: Sequence[str], rows: int
             ) -> pd.DataFrame:
        """The rows at ``indices`` (sorted, 0-based) of ``columns``, read ``rows`` at a time:
        memory holds one batch and the rows taken, not the table."""
        parts, start = [], 0
        for batch in self.batches(columns, rows):
            low, high = np.searchsorted(indices, (start, start + batch.num_rows))
            if high > low:
                parts.append(batch.take(indices[low:high] - start).to_pandas())
            start += batch.num_rows
        if not parts:
            return pd.DataFrame(columns=list(columns))
        return pd.concat(parts, ignore_index=True)


class RequestData:
    """The training and test tables of one request as one plan reads them.

    Each table's version is read once, up front (models are keyed by it); its content is
    downloaded at most once, when first used, and from a versioned bucket that very version,
    so a table replaced while the plan runs is not mixed into it. The copies are deleted when
    the ``request_data`` block ends. Safe to use from several threads.
    """

    def __init__(self, uris: dict[str, str], repo_root: Path, target_column: str,
                 stack: contextlib.ExitStack) -> None:
        self.uris, self.repo_root, self.target_column = uris, repo_root, target_column
        self._stack = stack
        found = {name: _versioned(uri, repo_root) for name, uri in uris.items()}
        self.versions = {name: version for name, (version, _) in found.items()}
        self._pinned = {name: version_id for name, (_, version_id) in found.items()}
        self._tables: dict[str, ParquetTable] = {}
        self._opening = {name: threading.Lock() for name in uris}  # one download per table
        self._registering = threading.Lock()  # the stack of copies to delete

    def table(self, name: str) -> ParquetTable:
        """The table ``name`` (``train``, ``test``), opened on first use."""
        with self._opening[name]:
            if name not in self._tables:
                copy = contextlib.ExitStack()  # downloaded outside the lock on the stack
                path = copy.enter_context(
                    local_copy(self.uris[name], self.repo_root, self._pinned[name]))
                with self._registering:
                    self._stack.push(copy)  # deleted when the plan ends
                self._tables[name] = ParquetTable(path, self.uris[name], self.target_column)
            return self._tables[name]

    def label_counts(self, name: str) -> tuple[int, int]:
        """The rows of the table ``name`` and how many are labelled 1 (frauds)."""
        table = self.table(name)
        return table.rows, int((table.read([self.target_column])[self.target_column] == 1).sum())


@contextlib.contextmanager
def request_data(uris: dict[str, str], repo_root: Path, target_column: str
                 ) -> Iterator[RequestData]:
    """The tables ``uris`` (by role: ``train``, ``test``) of one plan (``RequestData``)."""
    with contextlib.ExitStack() as stack:
        yield RequestData(uris, repo_root, target_column, stack)


def data_version(uri: str, repo_root: Path) -> str:
    """What identifies this content: the S3 VersionId if versioned, else its ETag; sha256 locally.

    Trained models are keyed by it, so changed data means a new model.
    """
    return _versioned(uri, repo_root)[0]


def _versioned(uri: str, repo_root: Path) -> tuple[str, str | None]:
    """``data_version``, and the S3 VersionId to download that very content by (None: a
    repository file, or a bucket that keeps no versions)."""
    if not uri.startswith("s3://"):
        with _repo_file(uri, repo_root).open("rb") as stream:
            # In C, without the GIL: threads (drawing, imports) do not slow it down.
            return hashlib.file_digest(stream, "sha256").hexdigest(), None
    bucket, key = split_uri(uri)
    head = _s3_call(uri, s3.head, bucket, key)
    if head is None:
        raise BotError(f"{uri}: no such object")
    version_id = head.get("VersionId")
    return str(object_version(head)), (version_id if version_id and version_id != "null"
                                       else None)


def _repo_file(uri: str, repo_root: Path) -> Path:
    """The file ``uri`` names inside the repository; refuses anything that leads out of it."""
    try:
        check_data_uri(uri)
    except ValueError as error:
        raise BotError(f"{uri}: {error}") from error
    root = repo_root.resolve()
    path = (root / uri).resolve()
    if not path.is_relative_to(root):
        raise BotError(f"{uri}: leads outside the repository (through a link?)")
    if not path.is_file():
        raise BotError(f"{uri}: no such file in the repository")
    return path


def _check_bucket(bucket: str) -> None:
    try:
        s3.head_bucket(bucket)
    except ClientError as error:
        code = error_code(error)
        if code in ("404", "NoSuchBucket"):
            raise BotError(f"s3://{bucket}: the bucket does not exist") from error
        raise BotError(f"s3://{bucket}: {code or error}") from error
    except BotoCoreError as error:
        raise BotError(f"s3://{bucket}: {error}") from error


def _s3_call(uri: str, call: Any, *args: Any) -> Any:
    """Run an S3 call, turning the errors a user can cause into one clear ``BotError``."""
    try:
        return call(*args)
    except ClientError as error:
        code = error_code(error)
        if code == "NoSuchBucket":
            reason = "the bucket does not exist"
        elif code == "NoSuchKey":
            reason = "no such object"
        elif code in ("404", "NotFound"):
            reason = "no such object (or no such bucket)"
        elif code in ("AccessDenied", "403", "Forbidden"):
            reason = "access denied"
        else:
            reason = f"{code}: {error}"
        raise BotError(f"{uri}: {reason}") from error
    except BotoCoreError as error:
        raise BotError(f"{uri}: {error}") from error
