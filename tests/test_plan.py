"""`promotion-bot plan` on the embedded default: what a reviewer sees on the PR."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pandas
import pytest

from bot import cli
from bot.adapters.aws import s3 as s3_io
from bot.adapters.github import GitHubHost
from bot.core import plan_json
from bot.core.domain import Plan
from bot.core.provenance import DataUsed
from bot.local.aws_server import LocalAWS
from bot.local.faults import FaultPlan, Rule
from bot.local.github import LocalGitHub

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "promotion-requests" / "fraud-detection.yaml"


def request_repo(tmp_path: Path, text: str | None = None) -> Path:
    repo = tmp_path / "repo"
    (repo / "promotion-requests").mkdir(parents=True)
    path = repo / "promotion-requests" / "fraud-detection.yaml"
    if text is None:
        shutil.copy(SHIPPED, path)
    else:
        path.write_text(text)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    return path


TRAIN = "s3://fraud-detection-data/processed/train.parquet"


def event(tmp_path: Path, number: int, sha: str) -> str:
    path = tmp_path / "event.json"
    path.write_text(json.dumps({"pull_request": {"number": number, "head": {"sha": sha}}}))
    return str(path)


def plan(path: Path, out: Path) -> tuple[int, Plan]:
    code = cli.main(["plan", str(path), "--out", str(out)])
    return code, plan_json.from_bytes((out / "plan.json").read_bytes(), "plan.json")


def test_plan_trains_compares_paired_and_changes_nothing(
    production: LocalAWS, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ssm_before = boto3.client("ssm").get_parameters_by_path(
        Path="/fraud-detection/hyperparameters")["Parameters"]
    code, result = plan(request_repo(tmp_path), tmp_path / "out")
    printed = capsys.readouterr().out
    assert code == (0 if result.passed else 1)
    assert "Promotion plan" in printed
    assert result.trained is True and result.comparison.paired is True
    # The test split holds 7 frauds: too few for intervals that hold, so no metric has a
    # verdict and the gates against the champion fail, saying so, instead of passing on a
    # point difference.
    for metric in ("accuracy", "precision", "recall", "f1_score", "auc_roc", "pr_auc"):
        m = result.comparison.metrics[metric]
        assert m.ci_low is None and m.verdict == "not tested" and m.detectable is None
    against = [g for g in result.gates if g.kind in ("max_drop", "max_alert_increase")]
    assert against and not any(g.passed for g in against) and code == 1
    assert "not tested: 7 frauds in the test set, need 30" in printed
    assert "detects 0.000" not in printed
    cm = result.evaluation.confusion_matrix
    assert cm.tn + cm.fp + cm.fn + cm.tp == result.evaluation.rows
    changed = {(c.target, c.key.rsplit("/", 1)[-1]) for c in result.changes}
    assert ("ssm", "max_depth") in changed and ("ssm", "num_round") in changed
    assert any(c.target == "endpoint" for c in result.changes)
    assert result.config_after is not None and result.rollout is not None
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {
        "comment.md", "plan.json", "confusion_matrix.png", "roc_curve.png", "pr_curve.png"}
    # Planning is read-only for production.
    assert boto3.client("ssm").get_parameters_by_path(
        Path="/fraud-detection/hyperparameters")["Parameters"] == ssm_before


def test_replan_of_same_content_reuses_and_gate_edit_does_not_retrain(
    production: LocalAWS, tmp_path: Path
) -> None:
    path = request_repo(tmp_path)
    _, first = plan(path, tmp_path / "first")
    _, again = plan(path, tmp_path / "again")
    assert again.trained is False and (tmp_path / "again" / "roc_curve.png").is_file()
    path.write_text(path.read_text().replace("accuracy: 0.90", "accuracy: 0.91"))
    _, edited = plan(path, tmp_path / "edited")
    assert edited.content_sha256 != again.content_sha256
    assert edited.trained is False and edited.model_key == again.model_key
    # The data judged, as trained, as stored, and as read again for a reused model.
    labels = pandas.read_parquet(io.BytesIO(s3_io.read_uri(TRAIN)))["Class"]
    assert first.data == again.data == edited.data == (
        DataUsed("train", TRAIN, len(labels), int(labels.sum())),
        DataUsed("test", TRAIN.replace("train", "test"), first.evaluation.rows,
                 first.evaluation.positives))
    assert int(labels.sum()) > 0


def test_a_planned_model_is_registered_once_pending_in_the_targets_group(
    production: LocalAWS, tmp_path: Path
) -> None:
    path = request_repo(tmp_path)
    _, first = plan(path, tmp_path / "first")
    path.write_text(path.read_text().replace("accuracy: 0.90", "accuracy: 0.91"))
    _, edited = plan(path, tmp_path / "edited")  # the same model, another plan
    assert edited.model_sha256 == first.model_sha256

    sm = boto3.client("sagemaker")
    listed = sm.list_model_packages(ModelPackageGroupName="fraud-detection")
    mine = [p for p in listed["ModelPackageSummaryList"]
            if f"model sha256:{first.model_sha256}" in p.get("ModelPackageDescription", "")]
    assert len(mine) == 1 and mine[0]["ModelApprovalStatus"] == "PendingManualApproval"
    package = sm.describe_model_package(ModelPackageName=mine[0]["ModelPackageArn"])
    assert package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == first.artifact
    # Served with the endpoint's own XGBoost image (the champion's model, same container).
    serving = sm.describe_endpoint_config(EndpointConfigName=sm.describe_endpoint(
        EndpointName="fraud-detection-production")["EndpointConfigName"])
    champion_model = sm.describe_model(ModelName=serving["ProductionVariants"][0]["ModelName"])
    assert package["InferenceSpecification"]["Containers"][0]["Image"] == champion_model[
        "PrimaryContainer"]["Image"]
    metadata = package["CustomerMetadataProperties"]
    assert metadata["promotion-bot:model-sha256"] == first.model_sha256
    assert first.identity is not None and metadata["promotion-bot:head"] == first.identity.head
    # The plan that registered it is stored, and its model metrics beside it, as named.
    registering = metadata["promotion-bot:plan-sha256"]
    stored = plan_json.from_bytes(s3_io.read_uri(
        f"s3://fraud-detection-models/promotion-bot/plans/sha256/{registering}/plan.json"),
        "plan.json")
    assert stored.model_sha256 == first.model_sha256
    statistics = package["ModelMetrics"]["ModelQuality"]["Statistics"]
    quality = s3_io.read_uri(statistics["S3Uri"])
    assert statistics["ContentDigest"] == "sha256:" + hashlib.sha256(quality).hexdigest()
    auc = json.loads(quality)["binary_classification_metrics"]["auc"]["value"]
    assert auc == pytest.approx(first.metrics["auc_roc"])
    # What merging changes names the registration's next status (the challenger is deployed).
    assert [(c.before, c.after) for c in edited.changes if c.target == "registry"] == [
        ("PendingManualApproval", "Approved")]


def test_a_model_the_registry_refuses_is_planned_and_registered_by_the_next_plan(
    production: LocalAWS, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Model Registry mirrors git: a refused registration does not fail the plan; it says
    so, and the next plan of the model (its evaluation reused) registers it."""
    text = SHIPPED.read_text().replace("num_round: 150", "num_round: 37")  # trains anew
    path = request_repo(tmp_path, text)
    production.inject(FaultPlan(rules=(Rule(service="sagemaker", operation="CreateModelPackage",
                                            code="AccessDeniedException", status=400),)))
    try:
        code, first = plan(path, tmp_path / "first")
    finally:
        production.inject(None)
    assert code == (0 if first.passed else 1)
    assert "model registry: the model was not registered (" in capsys.readouterr().err

    def registered() -> list[str]:
        listed = boto3.client("sagemaker").list_model_packages(
            ModelPackageGroupName="fraud-detection")["ModelPackageSummaryList"]
        return [p["ModelApprovalStatus"] for p in listed
                if f"model sha256:{first.model_sha256}" in p.get("ModelPackageDescription", "")]

    assert registered() == []
    _, again = plan(path, tmp_path / "again")
    assert again.trained is False and registered() == ["PendingManualApproval"]


def test_failing_gate_exits_1(production: LocalAWS, tmp_path: Path) -> None:
    text = SHIPPED.read_text().replace("accuracy: 0.90", "accuracy: 0.99999")
    code, result = plan(request_repo(tmp_path, text), tmp_path / "out")
    assert code == 1 and result.passed is False
    assert not next(g for g in result.gates if g.name.startswith("accuracy")).passed


def test_invalid_request_exits_2_with_one_line(
    production: LocalAWS, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = SHIPPED.read_text().replace("max_depth: 7", "max_depth: 25")
    code = cli.main(["plan", str(request_repo(tmp_path, text)), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    assert "hyperparameters.max_depth" in err and "Traceback" not in err


def accepting_few_frauds() -> str:
    """The shipped request, accepting that the 7 test frauds give gates no verdict."""
    return SHIPPED.read_text().replace(
        "\ngates:\n", '\ngates:\n  accept_few_frauds: "sample data: 7 test frauds"\n', 1)


def test_one_comment_updated_in_place_and_a_status(
    production: LocalAWS, github: LocalGitHub, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    path = request_repo(tmp_path, accepting_few_frauds())
    number = github.open_pull(head_sha="a" * 40, author="dana", title="Promote")
    monkeypatch.setenv("GITHUB_EVENT_PATH", event(tmp_path, number, "a" * 40))
    plan(path, tmp_path / "one")
    path.write_text(path.read_text().replace("accuracy: 0.90", "accuracy: 0.92"))
    github.set_head(number, "b" * 40)  # dana pushes the change
    monkeypatch.setenv("GITHUB_EVENT_PATH", event(tmp_path, number, "b" * 40))
    plan(path, tmp_path / "two")
    comments = github.comments(number)
    assert len(comments) == 1 and "accuracy >= 0.92" in comments[0]["body"]
    assert comments[0]["body"].count("<!-- promotion-bot:plan:fraud-detection -->") == 1
    assert "xychart-beta" in comments[0]["body"]
    states = [(st["context"], st["state"]) for st in github.statuses("b" * 40)]
    assert states == [("promotion-bot/plan", "pending"), ("promotion-bot/plan", "success")]
    # It passes without verdicts only because the request accepts it, and the comment says so.
    assert "## ⚠️ Promotion plan" in comments[0]["body"]
    assert "request accepts it\\: sample data\\: 7 test frauds" in comments[0]["body"]


def test_a_rerun_of_an_older_pushs_plan_run_plans_nothing(
    production: LocalAWS, github: LocalGitHub, tmp_path: Path,
    capsys: pytest.CaptureFixture[str]
) -> None:
    """The run of a push the pull request has moved past (re-run from the Actions page) plans
    nothing: no plan is stored for it, no comment or status changes; it says so and exits 0."""
    from bot.adapters.aws import plan_store
    from bot.settings import target

    path = request_repo(tmp_path)
    older, newer = "d" * 40, "e" * 40
    number = github.open_pull(head_sha=older, author="dana", title="Promote")
    github.set_head(number, newer)
    capsys.readouterr()

    code = cli.main(["plan", str(path), "--out", str(tmp_path / "out"), "--head", older,
                     "--pull-request", str(number)])

    err = capsys.readouterr().err
    assert code == 0
    assert err.strip() == (f"promotion-bot plan: pull request #{number}'s head is "
                           f"{newer[:12]} now, not {older[:12]}: this run is for an older push, "
                           "so nothing was planned (the plan of the head is what merging "
                           "applies)")
    assert github.comments(number) == [] and github.statuses(older) == []
    assert plan_store.plan_of_head(target("fraud-detection"), older) is None
    assert not (tmp_path / "out").exists()


def test_help_does_not_import_heavy_libraries() -> None:
    code = ("import sys; from bot import cli\n"
            "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('boto3', 'xgboost', 'pandas', 'PIL', 'sklearn') "
            "if m in sys.modules]\nprint(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ}).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_invalid_request_on_a_pull_request_is_shown_in_the_comment_and_status(
    production: LocalAWS, github: LocalGitHub, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    text = SHIPPED.read_text().replace("eta: 0.15", "eta: 1.5")
    path = request_repo(tmp_path, text)
    number = github.open_pull(head_sha="c" * 40, author="dana", title="Promote")
    monkeypatch.setenv("GITHUB_EVENT_PATH", event(tmp_path, number, "c" * 40))
    assert cli.main(["plan", str(path), "--out", str(tmp_path / "out")]) == 2
    comments = github.comments(number)
    assert len(comments) == 1
    assert "cannot plan this request" in comments[0]["body"]
    assert "hyperparameters.eta: must be <= 1 (got 1.5)" in comments[0]["body"]
    status = github.statuses("c" * 40)[-1]
    assert (status["context"], status["state"]) == ("promotion-bot/plan", "error")


def test_a_comment_posted_by_pull_request_code_is_never_taken_for_the_plans(
    production: LocalAWS, github: LocalGitHub, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    # The pull request's own workflow grants itself pull-requests: write and posts a comment
    # with the plan's marker as github-actions[bot]. The plan job writes as the app and
    # knows its comment by the app's login: the forgery stays a forgery, beside the plan's.
    number = github.open_pull(head_sha="c" * 40, author="dana", title="Promote")
    github.add_token("ghs_pull_request_workflow", "actions",
                     permissions={"pull_requests": "write", "statuses": "write"})
    forged = "<!-- promotion-bot:plan:fraud-detection -->\nAll gates pass. (forged)"
    GitHubHost("ghs_pull_request_workflow", github.repository, github.url).upsert_comment(
        number, "plan:fraud-detection", "All gates pass. (forged)")
    path = request_repo(tmp_path, SHIPPED.read_text().replace("eta: 0.15", "eta: 1.5"))
    monkeypatch.setenv("GITHUB_EVENT_PATH", event(tmp_path, number, "c" * 40))
    assert cli.main(["plan", str(path), "--out", str(tmp_path / "out")]) == 2
    first, plans = github.comments(number)
    assert (first["user"]["login"], first["body"]) == ("github-actions[bot]", forged)
    assert plans["user"]["login"] == "promotion-bot[bot]"
    assert "cannot plan this request" in plans["body"]
    assert github.statuses("c" * 40)[-1]["creator"]["login"] == "promotion-bot[bot]"


def test_accuracy_met_by_a_model_that_flags_nothing_is_called_out(
    production: LocalAWS, tmp_path: Path
) -> None:
    text = (SHIPPED.read_text().replace("num_round: 150", "num_round: 1")
            .replace("eta: 0.15", "eta: 0.001").replace("max_depth: 7", "max_depth: 1"))
    _, result = plan(request_repo(tmp_path, text), tmp_path / "out")
    accuracy_gate = next(g for g in result.gates if g.name.startswith("accuracy"))
    assert accuracy_gate.passed and result.metrics["recall"] == 0
    assert any("says nothing here" in note for note in result.notes)
    assert "says nothing here" in (tmp_path / "out" / "comment.md").read_text()
    # ... and the guard, which no request can turn off, fails the plan.
    guard = result.gates[0]
    assert guard.kind == "guard" and not guard.passed and result.passed is False


def local_data_repo(tmp_path: Path, extra_column: bool = False) -> Path:
    """The shipped request with its data as repository files, optionally one more column."""
    from bot.adapters import data_files as data

    text = (SHIPPED.read_text()
            .replace("s3://fraud-detection-data/processed/train.parquet", "data/train.parquet")
            .replace("s3://fraud-detection-data/processed/test.parquet", "data/test.parquet")
            # Each caller its own content, so no test reuses another's stored plan.
            .replace("num_round: 150", f"num_round: {41 if extra_column else 40}"))
    path = request_repo(tmp_path, text)
    train, test = data.split(data.generate_sample(20_000, seed=3), seed=3)
    (path.parents[1] / "data").mkdir()
    for name, frame in (("train", train), ("test", test)):
        if extra_column:  # a new feature: the hour of day, which the champion never saw
            frame = frame.assign(Hour=(frame["Time"] % 86_400) // 3_600)
        frame.to_parquet(path.parents[1] / "data" / f"{name}.parquet", index=False)
    return path


def test_a_new_feature_is_compared_paired_on_the_champions_own_columns(
    production: LocalAWS, tmp_path: Path
) -> None:
    code, result = plan(local_data_repo(tmp_path, extra_column=True), tmp_path / "out")

    assert code in (0, 1)  # never 2: adding a feature is the commonest reason to promote
    assert result.comparison.paired is True
    assert result.evaluation.rows == result.champion_evaluation.rows  # type: ignore[union-attr]
    note = next(n for n in result.notes if n.startswith("Feature set changed"))
    assert "the candidate reads 31 columns, the champion 30" in note
    assert "adds column `Hour`" in note and "stays paired" in note


def test_compare_gives_the_plans_verdicts_on_the_same_data(
    production: LocalAWS, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.adapters.aws import config_store
    from bot.settings import target

    path = local_data_repo(tmp_path)
    code, planned = plan(path, tmp_path / "out")
    champion = config_store.read(target("fraud-detection")).champion  # type: ignore[union-attr]
    assert champion is not None
    (tmp_path / "candidate.tar.gz").write_bytes(s3_io.read_uri(planned.artifact))
    (tmp_path / "champion.tar.gz").write_bytes(s3_io.read_uri(champion.model_artifact))
    capsys.readouterr()

    compared = cli.main(["compare", str(tmp_path / "candidate.tar.gz"),
                         str(tmp_path / "champion.tar.gz"), "--test",
                         str(path.parents[1] / "data" / "test.parquet"),
                         "--request", str(path), "--json"])
    out = json.loads(capsys.readouterr().out)

    assert compared == code and out["passed"] is planned.passed
    assert out["candidate"]["metrics"] == planned.metrics
    for name, m in planned.comparison.metrics.items():
        assert {k: out["comparison"][name][k] for k in
                ("difference", "ci_low", "ci_high", "verdict")} == {
            "difference": m.difference, "ci_low": m.ci_low, "ci_high": m.ci_high,
            "verdict": m.verdict}
    assert [(g["name"], g["passed"]) for g in out["gates"]] == [
        (g.name, g.passed) for g in planned.gates]


def test_the_trusted_workflow_names_the_pull_request_and_its_head(
    production: LocalAWS, github: LocalGitHub, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under workflow_run the event has no pull_request: --head and --pull-request say which."""
    path = request_repo(tmp_path, SHIPPED.read_text().replace("eta: 0.15", "eta: 1.5"))
    number = github.open_pull(head_sha="d" * 40, author="dana", title="Promote")
    workflow_run = tmp_path / "workflow_run.json"
    workflow_run.write_text(json.dumps({"workflow_run": {"head_sha": "d" * 40}}))
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(workflow_run))
    monkeypatch.setenv("GITHUB_SHA", "e" * 40)  # the default branch's tip, not the PR's head
    code = cli.main(["plan", str(path), "--out", str(tmp_path / "out"), "--head", "d" * 40,
                     "--pull-request", str(number)])
    assert code == 2
    assert "cannot plan this request" in github.comments(number)[0]["body"]
    assert [s["state"] for s in github.statuses("d" * 40)] == ["pending", "error"]
    assert github.statuses("e" * 40) == []


def test_a_plan_whose_comment_github_refuses_does_not_stay_pending(
    production: LocalAWS, github: LocalGitHub, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PROMOTION_BOT_GITHUB_MAX_WAIT_SECONDS", "5")
    path = request_repo(tmp_path)
    number = github.open_pull(head_sha="d" * 40, author="dana", title="Promote")
    monkeypatch.setenv("GITHUB_EVENT_PATH", event(tmp_path, number, "d" * 40))
    github.inject(FaultPlan(rules=(Rule(service="github", operation="POST */comments",
                                        kind="rate-limit", retry_after=600),)))

    code = cli.main(["plan", str(path), "--out", str(tmp_path / "out")])

    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2
    assert last.startswith(f"promotion-bot plan: GitHub secondary rate limit on comment on "
                           f"pull request #{number} in acme/fraud-models: it asks to wait 600 s")
    assert last.endswith("the plan comment was not posted (the plan is in "
                         f"{tmp_path / 'out'}) and the status promotion-bot/plan says error")
    assert [s["state"] for s in github.statuses("d" * 40)] == ["pending", "error"]
    assert (tmp_path / "out" / "plan.json").is_file()


def test_a_status_write_refused_for_a_while_is_retried(
    production: LocalAWS, github: LocalGitHub, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    path = request_repo(tmp_path)
    number = github.open_pull(head_sha="e" * 40, author="dana", title="Promote")
    monkeypatch.setenv("GITHUB_EVENT_PATH", event(tmp_path, number, "e" * 40))
    injector = github.inject(FaultPlan(rules=(Rule(
        service="github", operation="POST */statuses/*", kind="rate-limit", limit="primary",
        reset_in=1, skip=1, times=1),)))  # "pending" goes through, the final one waits

    code, result = plan(path, tmp_path / "out")

    assert code == (0 if result.passed else 1)
    assert injector is not None and len(injector.injected()) == 1
    assert [s["state"] for s in github.statuses("e" * 40)] == [
        "pending", "success" if result.passed else "failure"]
    assert len(github.comments(number)) == 1


def test_a_replan_after_the_data_changed_under_the_same_path_evaluates_afresh(
    production: LocalAWS, tmp_path: Path
) -> None:
    import pandas as pd

    path = local_data_repo(tmp_path)
    _, first = plan(path, tmp_path / "first")
    test_file = path.parents[1] / "data" / "test.parquet"
    frame = pd.read_parquet(test_file)
    half = frame.iloc[: len(frame) // 2]
    half.to_parquet(test_file, index=False)  # the same path, other content

    _, again = plan(path, tmp_path / "again")

    assert again.content_sha256 == first.content_sha256
    assert again.model_key != first.model_key
    assert again.evaluation.rows == len(half) != first.evaluation.rows


def test_a_config_written_during_the_plan_does_not_mix_into_it(
    production: LocalAWS, tmp_path: Path
) -> None:
    """An apply that rewrites the production config while a plan runs: the plan's changes
    are computed from the config it judged the candidate against, not half from each."""
    from bot.adapters.aws import config_store
    from bot.adapters.request_files import load_request
    from bot.core.production_config import to_yaml
    from bot.flows.plan import PlanSource, make_plan
    from bot.settings import target

    t = target("fraud-detection")
    s3 = boto3.client("s3")
    bucket, key = t.config_uri.removeprefix("s3://").split("/", 1)
    original = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    judged = config_store.read(t)
    assert judged is not None
    concurrent = judged.model_copy(update={"experiment_id": "exp-written-meanwhile"})

    def progress(message: str) -> None:
        if message.startswith("evaluating on"):
            s3.put_object(Bucket=bucket, Key=key, Body=to_yaml(concurrent).encode())

    path = request_repo(tmp_path)
    try:
        source = PlanSource(load_request(path)[0], "promotion-requests/fraud-detection.yaml",
                            path.parents[1])
        result = make_plan(source, tmp_path / "out", progress=progress)
    finally:
        s3.put_object(Bucket=bucket, Key=key, Body=original)

    assert result.plan.config_before == to_yaml(judged)
    field = f"{t.config_uri}#experiment_id"
    [change] = [c for c in result.plan.changes if c.key == field]
    assert change.before == judged.experiment_id != "exp-written-meanwhile"


def test_a_model_that_cannot_be_stored_fails_the_plan_and_no_plan_names_it(
    production: LocalAWS, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The new model is stored while it is evaluated: a refused write still ends the plan
    before any plan (which apply would trust) is stored."""
    from bot.adapters.aws import plan_store
    from bot.adapters.request_files import load_request
    from bot.settings import target

    text = SHIPPED.read_text().replace("num_round: 150", "num_round: 23")  # trains anew
    path = request_repo(tmp_path, text)
    sha = load_request(path)[0].content_sha256()
    # The first write of the run is the model's; the plan's own writes would go through.
    production.inject(FaultPlan(rules=(Rule(service="s3", operation="PutObject",
                                            code="AccessDenied", status=403, times=1),)))
    try:
        code = cli.main(["plan", str(path), "--out", str(tmp_path / "out")])
    finally:
        production.inject(None)

    assert code == 2
    assert "AccessDenied" in capsys.readouterr().err.strip().splitlines()[-1]
    assert plan_store.plan_of_content(target("fraud-detection"), sha) is None
    assert not (tmp_path / "out" / "plan.json").exists()


def test_a_plan_whose_files_are_not_all_stored_is_not_signed(
    production: LocalAWS, tmp_path: Path
) -> None:
    """A plan's files are written side by side, its signature only once all are there: a
    refused file leaves a plan that nothing trusts (and a re-plan evaluates afresh)."""
    from bot.adapters.aws import plan_store
    from bot.adapters.request_files import load_request
    from bot.settings import target

    t = target("fraud-detection")
    text = SHIPPED.read_text().replace("num_round: 150", "num_round: 29")  # trains anew
    path = request_repo(tmp_path, text)
    sha = load_request(path)[0].content_sha256()
    def stored() -> set[str]:
        listed = boto3.client("s3").list_objects_v2(Bucket=t.artifacts_bucket,
                                                    Prefix=f"{t.artifacts_prefix}/plans/")
        return {item["Key"] for item in listed.get("Contents", [])}

    before = stored()
    # Writes 1 and 2 store the model and its index entry; 4 is one of the plan's files.
    production.inject(FaultPlan(rules=(Rule(service="s3", operation="PutObject",
                                            code="AccessDenied", status=403, skip=3,
                                            times=1),)))
    try:
        assert cli.main(["plan", str(path), "--out", str(tmp_path / "out")]) == 2
    finally:
        production.inject(None)

    keys = stored() - before
    # Some files written, never the signature nor an entry that would find the plan.
    assert keys and all("/plans/sha256/" in k for k in keys)
    assert not any(k.endswith("/plan.sig") for k in keys)
    assert plan_store.plan_of_content(t, sha) is None
