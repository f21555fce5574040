"""What was reviewed is what runs, through the CLI on the embedded default: two pull requests
with the same request bytes and different training data in the repository; merging the
approved one deploys its own reviewed model whatever the other one's plan says, and an older
signed plan put back over a newer one changes nothing."""

from __future__ import annotations

import io
from pathlib import Path

import boto3
import pytest
from conftest import GitRepo, run_plan

from bot import cli
from bot.adapters.aws import config_store
from bot.adapters.aws import s3 as s3_io
from bot.core import plan_json
from bot.core.integrity import sha256_hex
from bot.local.aws_server import LocalAWS
from bot.settings import target

ROOT = Path(__file__).resolve().parent.parent
REQUEST = "promotion-requests/fraud-detection.yaml"
TRAIN = "data/train.parquet"
T = target("fraud-detection")


pytestmark = pytest.mark.usefixtures("no_github_context")


def request_text() -> str:
    """The shipped request, quick to train, with its training data in the repository; its
    test set is small, so it accepts gates without a verdict."""
    return ((ROOT / REQUEST).read_text()
            .replace("num_round: 150", "num_round: 30").replace("max_depth: 7", "max_depth: 4")
            .replace("s3://fraud-detection-data/processed/train.parquet", TRAIN)
            .replace("\ngates:\n", "\ngates:\n  accept_few_frauds: a test of a few thousand rows\n",
                     1))


def training_data() -> tuple[bytes, bytes]:
    """Production's training data, and a copy that calls half the frauds legit."""
    import pandas as pd

    honest = s3_io.read_uri(f"s3://{T.data_bucket}/processed/train.parquet")
    frame = pd.read_parquet(io.BytesIO(honest))
    frauds = frame.index[frame["Class"] == 1]
    frame.loc[frauds[: len(frauds) // 2], "Class"] = 0
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return honest, buffer.getvalue()


def pull_request(repo: GitRepo, branch: str, train: bytes) -> str:
    """A branch from main with the request and ``train`` as its training data; its head."""
    repo.git("checkout", "-q", "-b", branch, "main")
    (repo.path / REQUEST).parent.mkdir(exist_ok=True)
    (repo.path / REQUEST).write_text(request_text())
    (repo.path / TRAIN).parent.mkdir(exist_ok=True)
    (repo.path / TRAIN).write_bytes(train)
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", f"Promote ({branch})")
    return repo.git("rev-parse", "HEAD")


def merge(repo: GitRepo, branch: str) -> tuple[str, str]:
    repo.git("checkout", "-q", "main")
    before = repo.git("rev-parse", "HEAD")
    repo.git("merge", "-q", "--no-ff", branch, "-m", f"Merge pull request from {branch}")
    return before, repo.git("rev-parse", "HEAD")


def apply(repo: GitRepo, pushed: tuple[str, str], capsys: pytest.CaptureFixture[str]
          ) -> tuple[int, str]:
    capsys.readouterr()
    code = cli.main(["apply", "--repo", str(repo.path), "--before", pushed[0], "--after",
                     pushed[1]])
    return code, capsys.readouterr().err


def test_another_pull_requests_plan_does_not_change_what_the_approved_merge_deploys(
        production: LocalAWS, git_repo: GitRepo, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    honest, relabelled = training_data()
    head_a = pull_request(git_repo, "a", honest)
    _, a = run_plan(git_repo.path / REQUEST, tmp_path / "a", capsys)
    head_b = pull_request(git_repo, "b", relabelled)  # the same request bytes, other data
    _, b = run_plan(git_repo.path / REQUEST, tmp_path / "b", capsys)
    reviewed = plan_json.from_bytes(a, "a/plan.json")
    other = plan_json.from_bytes(b, "b/plan.json")
    assert reviewed.content_sha256 == other.content_sha256 and reviewed.passed
    assert reviewed.artifact != other.artifact

    pushed = merge(git_repo, "a")
    code, err = apply(git_repo, pushed, capsys)

    assert code == 0, err
    assert git_repo.git("rev-parse", f"{pushed[1]}^2") == head_a != head_b
    live = config_store.read(T)
    assert live is not None and live.model_artifact == reviewed.artifact
    assert live.commit == pushed[1]


def test_an_older_signed_plan_put_back_over_a_newer_one_is_refused(
        production: LocalAWS, git_repo: GitRepo, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    honest, _ = training_data()
    pull_request(git_repo, "a", honest)
    path = git_repo.path / REQUEST
    _, older = run_plan(path, tmp_path / "older", capsys)
    err, newer = run_plan(path, tmp_path / "newer", capsys)  # a re-run: signed later
    assert "reusing the stored evaluation" in err
    assert sha256_hex(older) != sha256_hex(newer)
    newer_uri = (f"s3://{T.artifacts_bucket}/{T.artifacts_prefix}/plans/sha256/"
                 f"{sha256_hex(newer)}/plan.json")
    bucket, key = s3_io.split_uri(newer_uri)
    # What the plan role's old write access allowed, were the bucket not to refuse it now.
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=older)

    code, err = apply(git_repo, merge(git_repo, "a"), capsys)

    assert code == 1
    assert err.count("\n") == 1 and err.rstrip().endswith("nothing was applied")
    assert f"{newer_uri} is not the plan that was signed (plan_sha256: signed " in err
