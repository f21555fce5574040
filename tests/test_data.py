"""Sample data, Parquet loading from the repository and from S3, and data versions."""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bot.adapters import data_files as data
from bot.errors import BotError

COLUMNS = ["Time", *(f"V{i}" for i in range(1, 29)), "Amount", "Class"]


@pytest.fixture
def s3(fake_credentials: None) -> Iterator[Any]:
    """An S3 client on moto in this process, with the data bucket."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="fraud-detection-data")
        yield client


def test_sample_has_the_public_sets_columns_and_exact_fraud_rate() -> None:
    frame = data.generate_sample(rows=5_000, seed=3)

    assert list(frame.columns) == COLUMNS
    assert len(frame) == 5_000
    assert int(frame["Class"].sum()) == round(5_000 * 0.00172)
    assert frame["Class"].dtype.kind == "i"
    assert set(frame["Class"].unique()) == {0, 1}
    assert frame["Time"].is_monotonic_increasing
    assert frame["Time"].min() >= 0 and frame["Time"].max() <= 2 * 24 * 3600
    assert (frame["Amount"] >= 0).all()
    assert np.allclose(frame["Amount"], frame["Amount"].round(2))


def test_sample_is_reproducible_by_seed() -> None:
    pd.testing.assert_frame_equal(data.generate_sample(2_000, seed=1),
                                  data.generate_sample(2_000, seed=1))
    assert not data.generate_sample(2_000, seed=1).equals(data.generate_sample(2_000, seed=2))


def test_tiny_sample_still_has_a_fraud() -> None:
    assert int(data.generate_sample(rows=10)["Class"].sum()) == 1


def test_frauds_differ_from_legit_on_a_few_components_only() -> None:
    frame = data.generate_sample(rows=60_000, seed=0)
    fraud, legit = frame[frame["Class"] == 1], frame[frame["Class"] == 0]
    shift = ((fraud.mean() - legit.mean()) / legit.std()).abs()
    components = [f"V{i}" for i in range(1, 29)]
    assert (shift[components] > 1.0).sum() >= 4
    assert (shift[components] < 0.5).sum() >= 15


@pytest.fixture(scope="module")
def full_size() -> pd.DataFrame:
    return data.generate_sample(rows=284_807, seed=5)


def test_components_are_heavy_tailed_like_the_public_sets(full_size: pd.DataFrame) -> None:
    from scipy.stats import kurtosis

    legit = full_size[full_size["Class"] == 0]
    excess = kurtosis(legit[[f"V{i}" for i in range(1, 29)]])  # a Gaussian's is 0

    assert (excess > 2.0).all(), excess.round(2)


def test_time_has_a_daily_cycle_and_frauds_keep_odd_hours(full_size: pd.DataFrame) -> None:
    hour = (full_size["Time"] % 86_400) // 3_600
    night = hour.between(1, 6)  # 1 am to 7 am: a quarter of the day
    is_fraud = full_size["Class"] == 1

    assert night[~is_fraud].mean() < 0.10  # far fewer than a uniform Time's 25 %
    counts = np.bincount(hour[~is_fraud].astype(int), minlength=24)
    assert counts.max() > 10 * counts.min()
    assert night[is_fraud].mean() > 2 * night[~is_fraud].mean()
    assert full_size["Time"].max() <= data.TWO_DAYS


def test_frauds_spend_less_on_the_median_but_have_a_long_tail(full_size: pd.DataFrame) -> None:
    amount = full_size.groupby("Class")["Amount"]

    assert amount.median()[1] < 0.7 * amount.median()[0]  # as in the set: 9.25 vs 22
    assert amount.mean()[1] > amount.mean()[0]  # 122 vs 88 in the set


def test_some_frauds_only_an_interaction_reveals(full_size: pd.DataFrame) -> None:
    fraud = full_size[full_size["Class"] == 1]
    legit = full_size[full_size["Class"] == 0]
    scale = legit[["V2", "V5"]].std()

    # Neither component alone moves for frauds...
    assert ((fraud[["V2", "V5"]].mean() - legit[["V2", "V5"]].mean()).abs() / scale < 0.3).all()

    # ... but both large with the same sign is far more common among them.
    def both_large(frame: pd.DataFrame) -> float:
        v2, v5 = frame["V2"] / scale["V2"], frame["V5"] / scale["V5"]
        return float(((v2 * v5 > 0) & (v2.abs() > 2) & (v5.abs() > 2)).mean())

    assert both_large(fraud) > 30 * both_large(legit)


def test_trees_beat_a_linear_model_as_on_the_public_set() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from bot.core import training

    train, test = data.split(data.generate_sample(rows=60_000, seed=0), seed=0)
    linear = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1_000)).fit(
        train.drop(columns="Class"), train["Class"])
    trees = training.train({"objective": "binary:logistic", "num_round": 50, "max_depth": 4,
                            "eta": 0.3, "max_delta_step": 1, "nthread": 1}, train, "Class")

    linear_auc = roc_auc_score(test["Class"],
                               linear.predict_proba(test.drop(columns="Class"))[:, 1])
    trees_auc = roc_auc_score(test["Class"], training.predict(trees, test).ranking)
    assert trees_auc > linear_auc + 0.03, (trees_auc, linear_auc)


def test_full_size_sample_has_the_real_sets_size_and_fraud_count() -> None:
    frame = data.generate_sample()

    assert len(frame) == 284_807
    assert int(frame["Class"].sum()) == 490


def test_split_is_stratified_and_keeps_row_order() -> None:
    frame = data.generate_sample(rows=20_000, seed=0)
    train, test = data.split(frame, test_fraction=0.2, seed=0)

    assert len(train) + len(test) == len(frame)
    assert len(test) == pytest.approx(4_000, abs=1)
    frauds = int(frame["Class"].sum())
    assert int(test["Class"].sum()) == round(frauds * 0.2)
    assert int(train["Class"].sum()) == frauds - round(frauds * 0.2)
    assert train["Time"].is_monotonic_increasing and test["Time"].is_monotonic_increasing


def read_table(uri: str, repo_root: Path, target_column: str | None = None) -> pd.DataFrame:
    with data.open_table(uri, repo_root, target_column) as table:
        return table.read(table.columns)


def test_sample_data_written_to_a_directory_loads_back(tmp_path: Path) -> None:
    written = data.write_sample(str(tmp_path / "data"), rows=3_000, seed=0)

    assert written == [str(tmp_path / "data" / "train.parquet"),
                       str(tmp_path / "data" / "test.parquet")]
    train = read_table("data/train.parquet", tmp_path, "Class")
    test = read_table("data/test.parquet", tmp_path, "Class")
    assert len(train) + len(test) == 3_000
    assert list(test.columns) == COLUMNS


def test_local_data_version_is_the_files_sha256(tmp_path: Path) -> None:
    data.write_sample(str(tmp_path / "data"), rows=1_000, seed=0)
    content = (tmp_path / "data" / "test.parquet").read_bytes()

    assert data.data_version("data/test.parquet", tmp_path) == hashlib.sha256(content).hexdigest()


@pytest.mark.parametrize("uri", ["../outside.parquet", "data/../../outside.parquet",
                                 "/etc/passwd", "~/data.parquet", "file:///etc/passwd"])
def test_paths_leading_out_of_the_repository_are_refused(tmp_path: Path, uri: str) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (tmp_path / "outside.parquet").write_bytes(b"secret")

    with pytest.raises(BotError):
        read_table(uri, repo)
    with pytest.raises(BotError):
        data.data_version(uri, repo)


def test_a_link_out_of_the_repository_is_refused(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    data.write_sample(str(tmp_path / "elsewhere"), rows=500)
    (repo / "data").symlink_to(tmp_path / "elsewhere")

    with pytest.raises(BotError, match="outside the repository"):
        read_table("data/train.parquet", repo)
    with pytest.raises(BotError, match="outside the repository"):
        data.data_version("data/train.parquet", repo)


def test_missing_file_not_parquet_and_missing_target_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "notes.parquet").write_text("not a table")
    pd.DataFrame({"a": [1.0], "b": [2.0]}).to_parquet(tmp_path / "no-target.parquet")

    with pytest.raises(BotError, match=r"missing\.parquet: no such file"):
        read_table("missing.parquet", tmp_path)
    with pytest.raises(BotError, match=r"notes\.parquet: not a readable Parquet file"):
        read_table("notes.parquet", tmp_path)
    with pytest.raises(BotError, match="no target column 'Class'"):
        read_table("no-target.parquet", tmp_path, "Class")


def test_sample_data_written_to_s3_loads_back_like_the_seed(s3: Any) -> None:
    written = data.write_sample("s3://fraud-detection-data/processed/", rows=3_000, seed=0)

    assert written == ["s3://fraud-detection-data/processed/train.parquet",
                       "s3://fraud-detection-data/processed/test.parquet"]
    listed = s3.list_objects_v2(Bucket="fraud-detection-data")["Contents"]
    assert sorted(o["Key"] for o in listed) == ["processed/test.parquet",
                                                "processed/train.parquet"]
    body = s3.get_object(Bucket="fraud-detection-data", Key="processed/test.parquet")["Body"]
    expected = pd.read_parquet(io.BytesIO(body.read()))
    loaded = read_table(written[1], Path("."), "Class")
    pd.testing.assert_frame_equal(loaded, expected)


def test_s3_data_version_is_the_version_id_or_else_the_etag(s3: Any) -> None:
    s3.put_object(Bucket="fraud-detection-data", Key="plain.parquet", Body=b"one")
    s3.create_bucket(Bucket="versioned-data")
    s3.put_bucket_versioning(Bucket="versioned-data",
                             VersioningConfiguration={"Status": "Enabled"})
    put = s3.put_object(Bucket="versioned-data", Key="train.parquet", Body=b"two")

    etag = s3.head_object(Bucket="fraud-detection-data", Key="plain.parquet")["ETag"]
    assert data.data_version("s3://fraud-detection-data/plain.parquet", Path(".")) \
        == etag.strip('"')
    assert data.data_version("s3://versioned-data/train.parquet", Path(".")) \
        == put["VersionId"]


def test_s3_errors_name_the_uri_and_the_reason(s3: Any) -> None:
    s3.put_object(Bucket="fraud-detection-data", Key="notes.parquet", Body=b"not a table")

    with pytest.raises(BotError, match=r"s3://no-such-bucket/train\.parquet: the bucket does"):
        read_table("s3://no-such-bucket/train.parquet", Path("."))
    with pytest.raises(BotError, match=r"s3://fraud-detection-data/gone\.parquet: no such"):
        read_table("s3://fraud-detection-data/gone.parquet", Path("."))
    with pytest.raises(BotError, match="not a readable Parquet file"):
        read_table("s3://fraud-detection-data/notes.parquet", Path("."))
    with pytest.raises(BotError, match="no such object"):
        data.data_version("s3://fraud-detection-data/gone.parquet", Path("."))


def test_writing_sample_data_to_a_missing_bucket_creates_nothing(s3: Any) -> None:
    with pytest.raises(BotError, match="s3://no-such-bucket: the bucket does not exist"):
        data.write_sample("s3://no-such-bucket/processed", rows=500)

    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["fraud-detection-data"]


def test_a_plan_reads_each_table_once_at_the_version_it_keyed_the_model_by(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A table replaced while the plan runs is not mixed into it: from a versioned bucket
    the plan downloads the version it read first; each table is downloaded once."""
    s3.create_bucket(Bucket="versioned-data")
    s3.put_bucket_versioning(Bucket="versioned-data",
                             VersioningConfiguration={"Status": "Enabled"})
    frames = {rows: data.generate_sample(rows=rows, seed=1) for rows in (1_000, 1_500)}

    def put(rows: int) -> str:
        body = io.BytesIO()
        frames[rows].to_parquet(body, index=False)
        answer = s3.put_object(Bucket="versioned-data", Key="test.parquet",
                               Body=body.getvalue())
        return str(answer["VersionId"])

    first = put(1_000)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    (tmp_path / "train.parquet").write_bytes(b"")  # a repository file: versioned by sha256
    uris = {"train": "train.parquet", "test": "s3://versioned-data/test.parquet"}
    with data.request_data(uris, tmp_path, "Class") as tables:
        assert tables.versions["test"] == first
        assert tables.versions["train"] == hashlib.sha256(b"").hexdigest()
        put(1_500)  # replaced after the plan read its version
        test = tables.table("test")
        assert test.rows == 1_000 and tables.table("test") is test
        assert tables.label_counts("test") == (1_000, int(frames[1_000]["Class"].sum()))
        assert len(list(scratch.iterdir())) == 1  # one copy, kept while the plan runs
    assert not list(scratch.iterdir())  # and deleted when it ends
