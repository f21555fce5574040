"""The demo's journey end to end, asserting AWS after every step: the product's contract."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from test_pr_effect import folded

from bot.core import plan_json
from bot.core.changes import counted
from bot.local import demo, faults
from bot.local.faults import FaultPlan
from bot.report.apply_outcome import outcomes_from_json
from bot.settings import settings, target

ROOT = Path(__file__).resolve().parent.parent

T = target("fraud-detection")
SEED = {"objective": "binary:logistic", "num_round": "150", "max_depth": "7", "eta": "0.15",
        "subsample": "0.8", "colsample_bytree": "0.8"}


def aws_state() -> dict[str, Any]:
    """Everything a promotion touches, read straight from (local) AWS with boto3."""
    ssm, s3 = boto3.client("ssm"), boto3.client("s3")
    sfn, sm = boto3.client("stepfunctions"), boto3.client("sagemaker")
    params = ssm.get_parameters_by_path(Path=T.ssm_prefix, Recursive=True)["Parameters"]
    backups = ssm.get_parameters_by_path(Path=T.ssm_backup_prefix, Recursive=True)["Parameters"]
    config = yaml.safe_load(
        s3.get_object(Bucket=T.config_bucket, Key=T.config_key)["Body"].read())
    archive = s3.list_objects_v2(Bucket=T.config_bucket, Prefix=T.config_archive_prefix)
    machine = next(m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]
                   if m["name"] == T.state_machine_name)
    endpoint = sm.describe_endpoint(EndpointName=T.endpoint_name)
    endpoint_config = sm.describe_endpoint_config(
        EndpointConfigName=endpoint["EndpointConfigName"])
    models = {v["VariantName"]: sm.describe_model(ModelName=v["ModelName"])[
        "PrimaryContainer"]["ModelDataUrl"] for v in endpoint_config["ProductionVariants"]}
    jobs = [sm.describe_training_job(TrainingJobName=j["TrainingJobName"])
            for j in sm.list_training_jobs()["TrainingJobSummaries"]]
    packages = [sm.describe_model_package(ModelPackageName=p["ModelPackageArn"]) for p in
                sm.list_model_packages(ModelPackageGroupName=T.name)["ModelPackageSummaryList"]]
    return {
        # The Model Registry: each registered model's approval status, by its model.tar.gz.
        "registry": {p["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]:
                     p["ModelApprovalStatus"] for p in packages},
        "ssm": {p["Name"].rsplit("/", 1)[1]: p["Value"] for p in params},
        "backups": len(backups),
        "config": config,
        "archived": archive.get("KeyCount", 0),
        "executions": len(sfn.list_executions(stateMachineArn=machine)["executions"]),
        "weights": {v["VariantName"]: v["CurrentWeight"] for v in endpoint["ProductionVariants"]},
        "models": models,
        "all_models": len(sm.list_models(NameContains=T.name)["Models"]),
        "all_configs": len(sm.list_endpoint_configs(NameContains=T.name)["EndpointConfigs"]),
        "training_jobs": {j["TrainingJobName"]: (j["TrainingJobStatus"],
                                                 j["ResourceConfig"]["InstanceCount"])
                          for j in jobs},
    }


@dataclass
class Run:
    """A journey and what AWS (and GitHub) looked like after each step."""

    journey: demo.Journey
    seen: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    again: tuple[int, str] = (0, "")  # the first apply, run a second time
    again_changed: bool = False
    comments: dict[int, list[str]] = field(default_factory=dict)  # PR → comment markers
    injected: list[tuple[str, str]] = field(default_factory=list)  # (service, kind)
    pulls: list[dict[str, Any]] = field(default_factory=list)  # as the API shows them
    bodies: dict[int, list[str]] = field(default_factory=dict)  # PR → its comments


def run_journey(directory: Path, plan: FaultPlan | None = None) -> Run:
    """The demo's journey at 20,000 rows (a test set with frauds), AWS read back after every
    step."""
    run = Run(journey=None)  # type: ignore[arg-type]

    def state() -> dict[str, Any]:
        with faults.paused():  # the test's own reads are not the bot's to survive
            return aws_state()

    def after(step: str, journey: demo.Journey) -> None:
        run.seen.append((step, state()))
        if step == "apply" and len([s for s, _ in run.seen if s == "apply"]) == 1:
            # Applying the same range again changes nothing and says so.
            before, after_sha = journey.git("rev-parse", "main~1"), journey.git("rev-parse",
                                                                                 "main")
            code = journey.bot("apply-again", "apply", "--repo", str(journey.repo), "--before",
                               before, "--after", after_sha)
            run.again = (code, journey.outputs[f"{journey.step:02d}-apply-again"].read_text())
            run.again_changed = state() != run.seen[-1][1]
        github = journey.github
        run.pulls = github.pulls()
        run.bodies = {n: [c["body"] for c in github.comments(n)] for n in range(1, 13)}
        run.comments = {n: sorted(c["body"].splitlines()[0] for c in github.comments(n))
                        for n in range(1, 13)}
        aws_faults, github_faults = faults.active(), github.injector()
        run.injected = [(i.service, i.kind) for injector in (aws_faults, github_faults)
                        if injector is not None for i in injector.injected()]

    run.journey = demo.run(directory, rows=20_000, log=lambda _: None, after_step=after,
                           faults=plan)
    return run


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_journey(tmp_path_factory.mktemp("clean") / "demo")


def test_demo_journey_changes_production_exactly_as_planned(clean: Run) -> None:
    seen, journey = clean.seen, clean.journey
    code, again = clean.again
    assert code == 0 and "no changes" in again and not clean.again_changed
    applies = [state for step, state in seen if step == "apply"]
    plans = [state for step, state in seen if step.startswith("plan")]
    assert len(applies) == 10 and len(plans) == 12  # the forged plan's PR was planned twice
    # The forged plan: apply refused it and changed nothing; the re-plan signed it anew.
    [refused] = [i for i, (step, _) in enumerate(seen) if step == "apply-refused"]
    assert seen[refused][1] == seen[refused - 1][1]
    [said] = [path.read_text() for name, path in journey.outputs.items()
              if name.endswith("-apply-refused")]
    assert "is not the plan that was signed (plan_sha256: signed" in said
    assert "nothing was applied" in said and "Traceback" not in said
    # Planning changes nothing in production.
    assert plans[0]["ssm"] != SEED and plans[0]["backups"] == 0

    (first, second, reverted, at10, unbraked, at10_again, at50, promoted, unpromoted,
     repository_data) = applies
    assert first["ssm"] == SEED and first["backups"] == 1 and first["archived"] == 1
    assert first["config"]["experiment_id"] == "exp-xgboost-optimized-20240115"
    assert first["config"]["approvers"] == ["maria"]
    assert first["executions"] == 1
    assert first["weights"] == {"champion": 99.0, "challenger": 1.0}

    assert second["ssm"] == {**SEED, "num_round": "200", "max_depth": "9"}
    assert second["models"]["challenger"] != first["models"]["challenger"]
    # The second promotion was trained by a (local) training job on two instances, and
    # that job's model is what the challenger serves.
    trained_by = json.loads((journey.root / "outputs" / "plan-pr2" / "plan.json").read_text())
    assert trained_by["training"]["backend"] == "sagemaker"
    assert plans[0]["training_jobs"] == {}
    assert plans[1]["training_jobs"] == {trained_by["training"]["job"]: ("Completed", 2)}
    assert second["models"]["challenger"] == trained_by["artifact"]
    assert second["backups"] == 2 and second["executions"] == 2

    # The Model Registry mirrors git: each planned model registered once, pending until the
    # apply that deploys it approves it, rejected when a revert takes it away.
    first_model, second_model = first["models"]["challenger"], second["models"]["challenger"]
    assert plans[0]["registry"] == {first_model: "PendingManualApproval"}
    assert first["registry"] == {first_model: "Approved"}
    # The second promotion replaced the challenger; its revert brings the first one back.
    assert second["registry"] == {first_model: "Rejected", second_model: "Approved"}
    assert reverted["registry"] == {first_model: "Approved", second_model: "Rejected"}

    # The revert restores the exact previous parameters, config content and challenger.
    assert reverted["ssm"] == first["ssm"]
    same = ("experiment_id", "hyperparameters", "metrics", "model_artifact", "content_sha256",
            "champion", "challenger_traffic_percent")
    assert {k: reverted["config"][k] for k in same} == {k: first["config"][k] for k in same}
    assert reverted["models"] == first["models"]

    assert at10["weights"] == {"champion": 90.0, "challenger": 10.0}
    # An alarm fires during the 10 % step: the watcher takes the challenger's traffic to 0
    # and rejects its model; its revert pull request (opened by the bot) is merged and
    # applied: the 1 % step again, then the 10 % step once more.
    [watched] = [state for step, state in seen if step == "watch"]
    assert watched["weights"] == {"champion": 100.0, "challenger": 0.0}
    assert watched["registry"][at10["models"]["challenger"]] == "Rejected"
    assert {k: v for k, v in watched.items() if k not in ("weights", "registry")} == {
        k: v for k, v in at10.items() if k not in ("weights", "registry")}
    revert = [p for p in clean.pulls if p["number"] == 5]
    assert revert[0]["user"]["login"] == "promotion-bot[bot]"
    assert revert[0]["head"]["ref"].startswith("promotion-bot/brake-fraud-detection-")
    assert "fraud-detection-challenger-error-rate" in revert[0]["body"]
    assert any("The watcher braked this change's challenger" in c
               for c in clean.bodies[4])
    assert unbraked["weights"] == {"champion": 99.0, "challenger": 1.0}
    assert unbraked["config"]["challenger_traffic_percent"] == 1
    assert at10_again["weights"] == {"champion": 90.0, "challenger": 10.0}
    assert at50["weights"] == {"champion": 50.0, "challenger": 50.0}
    # Promotion: one clean endpoint serving the reviewed model, nothing left behind.
    assert promoted["weights"] == {"champion": 100.0}
    assert promoted["models"] == {"champion": first["models"]["challenger"]}
    assert promoted["all_models"] == 1 and promoted["all_configs"] == 1
    assert promoted["config"]["previous_champion"]["model_artifact"] == first["models"][
        "champion"]

    # Reverting the promotion brings the previous champion back at the previous share.
    assert unpromoted["weights"] == {"champion": 50.0, "challenger": 50.0}
    assert unpromoted["models"] == first["models"]
    assert unpromoted["config"]["champion"]["model_artifact"] == first["models"]["champion"]

    # Two pull requests with the same request and different data: the merged one's reviewed
    # model is what production serves, whatever the other one's later plan says.
    reviewed, other = (plan_json.from_bytes((journey.root / "outputs" / f"plan-pr{n}" /
                                             "plan.json").read_bytes(), f"plan-pr{n}")
                       for n in (10, 11))
    assert reviewed.content_sha256 == other.content_sha256
    assert reviewed.identity is not None and other.identity is not None
    assert reviewed.identity.head != other.identity.head
    assert reviewed.identity.data_versions["train"] != other.identity.data_versions["train"]
    assert reviewed.artifact != other.artifact
    assert repository_data["config"]["model_artifact"] == reviewed.artifact
    assert repository_data["models"]["challenger"] == reviewed.artifact
    assert repository_data["weights"] == {"champion": 99.0, "challenger": 1.0}

    history = next((journey.root / "outputs").glob("*-history.txt")).read_text()
    assert "maria" in history
    assert "the reviewed plan" in history and "NOT the reviewed plan" not in history
    comment = json.loads(
        (journey.root / "outputs" / "plan-pr1" / "plan.json").read_text())["content_sha256"]
    assert len(comment) == 64

    # Each rollout step's plan compares the live variants on labelled test records: every
    # fraud of the test set, paired recall and precision with intervals and verdicts.
    for number in (4, 6, 7, 8):
        stored = journey.root / "outputs" / f"plan-pr{number}" / "plan.json"
        live = plan_json.from_bytes(stored.read_bytes(), str(stored)).endpoint_comparison
        assert live is not None and live.frauds is not None and live.frauds > 0
        assert live.records > live.frauds  # and legit records, weighted
        assert [d.metric for d in live.differences] == ["recall", "precision"]
        assert all(d.verdict in ("better", "worse", "inconclusive") for d in live.differences)
        assert "this sample detects recall differences of" in live.verdict
        assert all(v.requests < v.records for v in live.variants)  # multi-record requests


def comparable(state: dict[str, Any]) -> dict[str, Any]:
    """A production state without what differs between two runs of the journey by nature:
    the commits (git hashes carry their time) and the time of each evaluation."""
    config = {k: v for k, v in state["config"].items() if k not in ("commit", "test_date")}
    return {**state, "config": config}


def test_each_comment_says_what_its_pull_request_does_on_one_screen(clean: Run) -> None:
    out = clean.journey.root / "outputs"
    comments = {n: (out / f"plan-pr{n}" / "comment.md").read_text() for n in range(1, 12)}
    for n, comment in comments.items():
        assert len(folded(comment)) <= 60, f"PR #{n}: {len(folded(comment))} lines"
    heads = {n: comment.split("\n\n")[1] for n, comment in comments.items()}
    # Both reverts say so, and what they roll back.
    assert "This pull request reverts commit" in heads[3] and "rolls the challenger back" \
        in heads[3] and "stops serving" in heads[3]
    assert "This pull request reverts commit" in heads[9] and "rolls production back" \
        in heads[9]
    assert "This pull request reverts commit" in heads[5]  # the watcher's revert
    assert not any("reverts" in heads[n] for n in (1, 2, 4, 6, 7, 8, 10, 11))
    # Each rollout step: the weights now and after, and how long the step has soaked.
    for n, (old, new) in {4: (1, 10), 6: (1, 10), 7: (10, 50)}.items():
        assert f"from {old} % to {new} %" in heads[n]
        assert f"The {old} % step has soaked" in comments[n]
    assert "promotes challenger" in heads[8] and "The 50 % step has soaked" in comments[8]
    # The data judged, with versions, rows and frauds.
    assert "train `s3://fraud-detection-data/processed/train.parquet` @ `" in comments[1]
    # What each plan counts is what its apply changed (PR #11 was never merged).
    for step, n in enumerate(range(1, 11), start=1):
        plan = plan_json.from_bytes((out / f"plan-pr{n}" / "plan.json").read_bytes(), "p")
        [outcome] = outcomes_from_json(json.loads(
            (out / f"{step:02d}-apply.outcomes.json").read_text()))
        assert len(counted(outcome.changes)) == len(counted(plan.changes)), f"PR #{n}"
        assert f"It changes **{len(counted(plan.changes))}** thing(s)" in heads[n]


def test_the_journey_ends_the_same_while_aws_and_github_keep_failing(
        clean: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMOTION_BOT_GITHUB_BACKOFF_SECONDS", "0.1")
    settings.cache_clear()
    plan = FaultPlan.load(ROOT / "docs" / "chaos-faults.yaml")

    chaos = run_journey(tmp_path / "chaos", plan)

    kinds = {kind for _, kind in chaos.injected}
    services = {service for service, _ in chaos.injected}
    assert {"throttle", "server-error", "rate-limit"} <= kinds, chaos.injected
    assert {"s3", "sagemaker", "cloudwatch", "github"} <= services
    assert len(chaos.injected) >= 20
    assert [step for step, _ in chaos.seen] == [step for step, _ in clean.seen]
    for (step, state), (_, expected) in zip(chaos.seen, clean.seen, strict=True):
        assert comparable(state) == comparable(expected), step
    assert chaos.comments == clean.comments  # one plan and one apply comment per PR
    assert chaos.again[0] == 0 and not chaos.again_changed
