"""The training backend's request fields, keys and the pieces plan streams through."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import FEATURES, request_yaml, small_frame, small_params
from sklearn.metrics import roc_auc_score

from bot.adapters import data_files as data
from bot.adapters.aws.images import xgboost_image
from bot.commands.plan import PlanProgress
from bot.core import training
from bot.core import training_job_spec as spec
from bot.core.request import Request
from bot.errors import BotError, InvalidRequest
from bot.flows import candidate
from bot.flows.training_data import write_shards
from bot.local.github import LocalGitHub
from bot.settings import Settings, settings, target

SAGEMAKER = "training:\n  backend: sagemaker\n  instance_count: {n}\n"


def parsed(text: str) -> Request:
    return Request.model_validate(yaml.safe_load(text))


def test_training_locally_by_default_keeps_the_content_hash_and_model_key() -> None:
    plain = parsed(request_yaml())
    explicit = parsed(request_yaml() + "training:\n  backend: local\n")
    versions = {"train": "v1", "test": "v1"}

    assert plain.training.backend == "local"
    assert explicit.content_sha256() == plain.content_sha256()
    assert explicit.model_key(versions) == plain.model_key(versions)


def test_a_training_job_model_depends_on_instances_and_image_not_on_instance_type() -> None:
    versions = {"train": "v1", "test": "v1"}
    one = parsed(request_yaml() + SAGEMAKER.format(n=1))
    two = parsed(request_yaml() + SAGEMAKER.format(n=2))
    bigger = parsed(request_yaml() + SAGEMAKER.format(n=2) + "  instance_type: ml.m5.4xlarge\n")
    local = parsed(request_yaml())

    keys = {r.model_key(versions, "sagemaker-xgboost:3.0-5") for r in (one, two)}
    assert len(keys | {local.model_key(versions)}) == 3
    assert bigger.model_key(versions, "x") == two.model_key(versions, "x")
    assert two.model_key(versions, "x") != two.model_key(versions, "y")
    assert bigger.content_sha256() != two.content_sha256()  # a new plan, the same model


def test_the_xgboost_image_comes_from_sagemaker_core_per_region() -> None:
    assert xgboost_image(target("fraud-detection")) == (
        "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5")
    frankfurt = target("fraud-detection", Settings(region="eu-central-1"))
    assert xgboost_image(frankfurt).startswith(
        "492215442770.dkr.ecr.eu-central-1.amazonaws.com/sagemaker-xgboost:3.0-5")
    pinned = target("fraud-detection", Settings(xgboost_image="registry/xgb:mine"))
    assert xgboost_image(pinned) == "registry/xgb:mine"
    assert pinned.xgboost_container == "registry/xgb:mine"
    assert frankfurt.xgboost_container == "sagemaker-xgboost:3.0-5"  # the same everywhere
    with pytest.raises(BotError, match=r"no SageMaker XGBoost image 9\.9-9 for region"):
        xgboost_image(target("fraud-detection", Settings(xgboost_image_version="9.9-9")))


def test_a_legacy_binary_model_is_refused_with_the_reason() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("xgboost-model")
        info.size = 8
        tar.addfile(info, io.BytesIO(b"binf\x00\x00\x00\x3f"))
    with pytest.raises(BotError, match=r"legacy binary format.*3\.0-5"):
        training.load_model(buffer.getvalue())


@pytest.fixture
def table_file(tmp_path: Path) -> Iterator[tuple[Path, pd.DataFrame]]:
    frame = small_frame(5000, 3)
    path = tmp_path / "test.parquet"
    frame.to_parquet(path, index=False, row_group_size=1000)
    yield path, frame


def test_streamed_training_is_the_training_of_the_whole_table(
    table_file: tuple[Path, pd.DataFrame],
) -> None:
    path, frame = table_file
    table = data.ParquetTable(path, "test.parquet", "Class")

    def batches() -> Iterator[tuple[pd.DataFrame, Any]]:
        for part in table.frames(table.columns, training.BATCH_ROWS):
            yield part[FEATURES], part["Class"].to_numpy()

    streamed = training.train_batches(small_params(10, 3), batches)
    whole = training.train(small_params(10, 3), frame, "Class")
    assert training.package_model(streamed) == training.package_model(whole)


def train_locally(request: Request, repo: Path, progress: Callable[[str], None]
                  ) -> tuple[Any, dict[str, Any]]:
    """The plan's local training of ``request``, its training data in ``repo``."""
    with data.open_table(request.data.train, repo, request.data.target_column) as table:
        return candidate.train_locally(request, table, progress)


def _local_request(tmp_path: Path, frame: pd.DataFrame) -> Request:
    (tmp_path / "data").mkdir(exist_ok=True)
    frame.to_parquet(tmp_path / "data" / "train.parquet", index=False, row_group_size=1000)
    text = request_yaml().replace("s3://fraud-detection-data/", "data/")
    return parsed(text.replace("num_round: 100", "num_round: 10"))


@pytest.mark.parametrize("batch_rows", [training.BATCH_ROWS, 1500])
def test_a_table_over_the_memory_setting_is_trained_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_rows: int,
) -> None:
    request = _local_request(tmp_path, small_frame(5000, 3))
    said: list[str] = []
    whole, _ = train_locally(request, tmp_path, said.append)
    monkeypatch.setattr(training, "BATCH_ROWS", batch_rows)
    monkeypatch.setenv("PROMOTION_BOT_TRAINING_IN_MEMORY_MIB", "0.5")  # under 5000 x 31 x 8 B
    settings.cache_clear()
    streamed, how = train_locally(request, tmp_path, said.append)

    assert "batches" not in said[1] and f"read in batches of {batch_rows:,}" in said[3]
    assert how["rows"] == 5000
    if batch_rows >= 5000:  # one batch: exactly the whole table's model
        assert training.package_model(streamed) == training.package_model(whole)
    else:  # several: bins merged from each batch's sketch, the same model within noise
        test = small_frame(2000, 4)
        auc = [roc_auc_score(test["Class"], training.score(model, test))
               for model in (whole, streamed)]
        assert abs(auc[0] - auc[1]) < 0.01, auc


def test_streamed_training_refuses_a_bad_batch_with_its_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    frame = small_frame(5000, 3)
    frame.loc[4321, "V7"] = np.inf  # in the third batch
    request = _local_request(tmp_path, frame)
    monkeypatch.setattr(training, "BATCH_ROWS", 1500)
    monkeypatch.setenv("PROMOTION_BOT_TRAINING_IN_MEMORY_MIB", "0")
    settings.cache_clear()
    with pytest.raises(InvalidRequest) as refused:
        train_locally(request, tmp_path, lambda _: None)
    assert [str(p) for p in refused.value.problems] == [
        "data/train.parquet: V7: 1 row(s) hold an infinite value; replace them (leave a value "
        "empty for missing)"]


def test_shards_split_every_batch_evenly_label_first_as_float32(
    table_file: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    path, frame = table_file
    out = tmp_path / "shards"
    out.mkdir()
    rows = write_shards(data.ParquetTable(path, "t", "Class"), "Class", 3, out)

    assert sum(rows) == len(frame) and max(rows) - min(rows) <= 3
    parts = [pq.read_table(p).to_pandas() for p in sorted(out.iterdir())]
    assert all(list(p.columns) == ["Class", *FEATURES] for p in parts)
    assert all((p.dtypes == np.float32).all() for p in parts)
    joined = pd.concat(parts)  # every row once, in some shard
    for column in ("Class", "V1", "Amount"):
        np.testing.assert_array_equal(np.sort(joined[column].to_numpy()),
                                      np.sort(frame[column].to_numpy().astype(np.float32)))


def test_shards_refuse_text_columns_and_more_instances_than_rows(tmp_path: Path) -> None:
    small_frame(40, 1).assign(merchant="shop").to_parquet(tmp_path / "a.parquet", index=False)
    small_frame(2, 1).to_parquet(tmp_path / "b.parquet", index=False)
    with pytest.raises(BotError, match="reads numbers only; not numbers: merchant"):
        write_shards(data.ParquetTable(tmp_path / "a.parquet", "a", "Class"), "Class", 2,
                     tmp_path)
    with pytest.raises(BotError, match="2 rows cannot be split across 3 training instances"):
        write_shards(data.ParquetTable(tmp_path / "b.parquet", "b", "Class"), "Class", 3,
                     tmp_path)


def test_progress_shows_in_the_pull_request_while_a_plan_runs_long() -> None:
    now = [0.0]
    with LocalGitHub(repository="acme/fraud-models") as github:
        from bot.adapters.github import GitHubHost

        host = GitHubHost(github.token, "acme/fraud-models", github.url)
        number = github.open_pull(head_sha="d" * 40, author="dana", title="Promote")
        progress = PlanProgress(host, number, "d" * 40, "fraud-detection", clock=lambda: now[0])
        progress("training on 2 x ml.m5.2xlarge, 0 s so far (Starting)")
        assert github.comments(number) == []  # a short plan shows only its result
        now[0] = 61.0
        progress("training on 2 x ml.m5.2xlarge, 1 min so far (Training)")
        now[0] = 90.0
        progress("training on 2 x ml.m5.2xlarge, 1 min so far (Uploading)")
        comments = github.comments(number)
        assert len(comments) == 1 and "1 min so far (Training)" in comments[0]["body"]
        now[0] = 125.0
        progress("training on 2 x ml.m5.2xlarge, 2 min so far (Training)")
        assert "2 min so far" in github.comments(number)[0]["body"]
        statuses = [(s["state"], s["description"]) for s in github.statuses("d" * 40)]
        assert statuses[-1] == ("pending", "training on 2 x ml.m5.2xlarge, 2 min so far "
                                "(Training)")


def test_the_progress_line_and_cost_of_a_job() -> None:
    import datetime as dt

    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    job = {"TrainingJobName": "fraud-detection-abc", "TrainingJobStatus": "InProgress",
           "SecondaryStatus": "Training", "CreationTime": start,
           "ResourceConfig": {"InstanceType": "ml.m5.2xlarge", "InstanceCount": 4}}
    assert spec.progress_line(job, start + dt.timedelta(minutes=12)) == (
        "training on 4 x ml.m5.2xlarge, 12 min so far (Training; job fraud-detection-abc)")
    assert spec.cost_usd("ml.m5.2xlarge", 4, 3600) == pytest.approx(4 * 0.461)
    assert spec.cost_usd("ml.x9.huge", 1, 60) is None
    done = {**job, "TrainingJobStatus": "Completed", "BillableTimeInSeconds": 600,
            "TrainingEndTime": start + dt.timedelta(minutes=11)}
    summary = spec.summary(done, attached=False, attempt=1)
    assert summary["instance_hours"] == pytest.approx(4 * 600 / 3600, rel=1e-3)
    assert json.dumps(summary)  # plan.json holds it


def test_the_comment_says_where_and_at_what_cost_the_model_was_trained() -> None:
    from dataclasses import replace

    from test_plan_comment import PLAN

    from bot.report.plan_comment import training_note

    how = {"backend": "sagemaker", "job": "fraud-detection-abc", "instance_count": 4,
           "instance_type": "ml.m5.2xlarge", "seconds": 720.0, "instance_hours": 0.8,
           "estimated_cost_usd": 0.3688}
    job = replace(PLAN, training=how)
    assert training_note(job) == ("trained by SageMaker training job `fraud-detection-abc` on "
                                  "4 × ml.m5.2xlarge, 12.0 min, 0.800 instance-hours ≈ $0.37 "
                                  "on demand")
    cheap = replace(PLAN, training={**how, "estimated_cost_usd": 0.0012})
    assert training_note(cheap).endswith("≈ $0.0012 on demand")
    unpriced = replace(PLAN, training={**how, "estimated_cost_usd": None})
    assert training_note(unpriced).endswith("0.800 instance-hours")
    assert training_note(replace(PLAN, training={"backend": "local", "seconds": 12.4})) == (
        "trained for this plan in the runner, 12 s")
