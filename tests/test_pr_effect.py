"""What a pull request does, told from its plan: one kind per situation, and the comment's
headline and summary for each."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_plan_comment import PLAN

from bot.core.changes import counted
from bot.core.domain import Champion, Change, Plan
from bot.core.hyperparameters import Hyperparameters
from bot.core.pr_effect import effect, judged_against_itself
from bot.core.production_config import ChampionModel, ProductionConfig, to_yaml
from bot.report.plan_comment import render_comment
from bot.report.pr_summary import footer, percent

BASE = ChampionModel(
    experiment_id="exp-base", model_artifact="s3://m/models/sha256/" + "b" * 64
    + "/model.tar.gz", metrics={"recall": 0.70})
OLD = ChampionModel(experiment_id="exp-old", model_artifact="s3://m/models/sha256/" + "o" * 64
                    + "/model.tar.gz", metrics={"recall": 0.75})
NEW = ChampionModel(experiment_id="exp-new", model_artifact="s3://m/models/sha256/" + "e" * 64
                    + "/model.tar.gz", metrics={"recall": 0.80})


HYPERPARAMETERS = Hyperparameters.model_validate({
    "objective": "binary:logistic", "num_round": 100, "max_depth": 6, "eta": 0.1,
    "subsample": 0.8, "colsample_bytree": 0.8})


def config(reviewed: ChampionModel, champion: ChampionModel, share: int | None,
           previous: ChampionModel | None = None) -> str:
    """The production config's YAML: ``reviewed`` is the last reviewed model (the challenger
    while ``share`` is set)."""
    return to_yaml(ProductionConfig(
        target="fraud-detection", algorithm="xgboost", experiment_id=reviewed.experiment_id,
        hyperparameters=HYPERPARAMETERS, metrics=reviewed.metrics,
        test_date="2026-11-25T10:00:00+00:00",
        approvers=["maria"], approval_source="github-reviews", commit="a" * 40,
        content_sha256="c" * 64, model_artifact=reviewed.model_artifact, champion=champion,
        previous_champion=previous, challenger_traffic_percent=share))


def plan_of(candidate: ChampionModel, before: str | None, after: str,
            champion: ChampionModel = BASE) -> Plan:
    return replace(PLAN, experiment_id=candidate.experiment_id,
                   artifact=candidate.model_artifact, config_before=before, config_after=after,
                   champion=Champion(champion.experiment_id, "production-config",
                                     champion.metrics, champion.model_artifact))


def headline(plan: Plan) -> str:
    return render_comment(plan).split("\n\n")[1]


def test_a_new_challenger_starts_at_its_share() -> None:
    plan = plan_of(NEW, config(BASE, BASE, None), config(NEW, BASE, 1))
    assert effect(plan).kind == "new-challenger"
    assert ("Merging starts `exp-new` as a challenger at 1 % (champion `exp-base` keeps 99 %)."
            in headline(plan))


def test_a_rollout_step_states_the_weights_now_and_after() -> None:
    plan = plan_of(NEW, config(NEW, BASE, 1), config(NEW, BASE, 10))
    assert effect(plan).kind == "rollout-step"
    assert ("Merging moves the challenger `exp-new` from 1 % to 10 % (champion `exp-base` "
            "99 % → 90 %).") in headline(plan)
    comment = render_comment(plan)
    assert "| champion 99 % | champion 90 % |" in comment
    assert "| challenger 1 % | challenger 10 % |" in comment
    back = plan_of(NEW, config(NEW, BASE, 10), config(NEW, BASE, 1))
    assert "moves the challenger back `exp-new` from 10 % to 1 %" in headline(back)


def test_now_is_what_serves_live_when_it_is_not_what_the_config_says() -> None:
    """After the watcher's brake the config still says 10 %, the endpoint serves 0 %: the
    revert's plan shows the live shares now, beside the configured ones."""
    revert = plan_of(NEW, config(NEW, BASE, 10), config(NEW, BASE, None))
    braked = render_comment(replace(revert, live_weights={"champion": 100, "challenger": 0}))
    assert ("| champion **100 %** live (90 % by the production config) | champion 100 % |"
            in braked)
    assert "| challenger **0 %** live (10 % by the production config) | — |" in braked
    assert ("Merging rolls back challenger `exp-new` (10 % (0 % live)): it stops serving"
            in braked)
    agreed = render_comment(replace(revert, live_weights={"champion": 90, "challenger": 10}))
    assert "| champion 90 % | champion 100 % |" in agreed and "% live" not in agreed
    back = replace(plan_of(NEW, config(NEW, BASE, 10), config(NEW, BASE, 1)),
                   live_weights={"champion": 100, "challenger": 0})
    assert ("Merging moves the challenger back `exp-new` from 10 % (0 % live) to 1 % "
            "(champion `exp-base` 90 % (100 % live) → 99 %).") in headline(back)


def test_replacing_a_challenger_names_it_and_compares_the_candidate_with_it() -> None:
    plan = plan_of(NEW, config(OLD, BASE, 1), config(NEW, BASE, 1))
    assert effect(plan).kind == "replace-challenger"
    assert "Merging replaces challenger `exp-old` (1 %) with `exp-new` at 1 %." in headline(plan)
    comment = render_comment(plan)
    # The candidate against the challenger it replaces, shown (not folded): one row a model.
    assert "| recorded at each model's review (unpaired: no verdict) | Recall |" in comment
    assert "| challenger after merge `exp-new` | 0.8000 |\n" in comment
    assert "| challenger now, removed `exp-old` | 0.7500 |\n" in comment
    assert "| difference | +0.0500 |" in comment
    assert "reverts" not in headline(plan)


def test_a_revert_of_a_replaced_challenger_says_it_rolls_back_and_what_it_removes() -> None:
    # Production: exp-new replaced exp-old as challenger; git revert brings exp-old back.
    plan = replace(plan_of(OLD, config(NEW, BASE, 1), config(OLD, BASE, 1)),
                   reverts="f" * 40, evaluation=replace(PLAN.evaluation,
                                                        metrics={"recall": 0.75}))
    assert effect(plan).kind == "replace-challenger"
    assert ("This pull request reverts commit `ffffffffffff`. Merging rolls the challenger "
            "back: `exp-new` (1 %) → `exp-old` at 1 %; `exp-new` stops serving (champion "
            "`exp-base` keeps 99 %).") in headline(plan)
    comment = render_comment(plan)
    # What comes back against what leaves, and against the champion in the gates.
    assert "| challenger after merge `exp-old` | 0.7500 |\n" in comment
    assert "| challenger now, removed `exp-new` | 0.8000 |\n" in comment
    assert "| difference | -0.0500 |" in comment
    assert "### Gates" in comment


def test_a_revert_of_a_promotion_says_rollback_and_is_not_judged_against_itself() -> None:
    # Production: exp-new was promoted over exp-base; the revert asks for the step before.
    plan = plan_of(NEW, config(NEW, NEW, None, previous=BASE), config(NEW, BASE, 50),
                   champion=NEW)
    assert effect(plan).kind == "rollback" and judged_against_itself(plan)
    assert ("Merging rolls production back: champion `exp-new` → `exp-base`; `exp-new` stays "
            "as challenger at 50 %.") in headline(plan)
    comment = render_comment(plan)
    assert "is not compared with itself" in comment
    assert "Candidate vs champion" not in comment and "Primary metric" not in comment
    # What comes back against what leaves: recorded metrics, no verdict claimed.
    assert "| champion after merge `exp-base` | 0.7000 |\n" in comment
    assert "| champion now `exp-new` | 0.8000 |\n" in comment
    assert "| difference | -0.1000 |" in comment
    assert "| champion 100 % | challenger 50 % |" in comment
    reverted = replace(plan, reverts="d" * 40)
    assert headline(reverted).count("This pull request reverts commit `dddddddddddd`.") == 1
    # A rollback that leaves nothing for the model leaving says it stops serving.
    gone = plan_of(NEW, config(NEW, NEW, None, previous=BASE), config(BASE, BASE, None),
                   champion=NEW)
    assert ("Merging rolls production back: champion `exp-new` → `exp-base`; `exp-new` stops "
            "serving.") in headline(gone)


def test_a_revert_of_a_new_challenger_removes_it() -> None:
    plan = plan_of(BASE, config(NEW, BASE, 1), config(BASE, BASE, None))
    assert effect(plan).kind == "remove-challenger"
    assert ("Merging rolls back challenger `exp-new` (1 %): it stops serving and champion "
            "`exp-base` takes 100 %.") in headline(plan)
    assert "| challenger 1 % | — |" in render_comment(plan)


def test_a_promotion_makes_the_challenger_champion() -> None:
    plan = plan_of(NEW, config(NEW, BASE, 50), config(NEW, NEW, None, previous=BASE))
    assert effect(plan).kind == "promotion"
    assert ("Merging promotes challenger `exp-new` to champion at 100 %; champion `exp-base` "
            "is kept for rollback.") in headline(plan)


@pytest.mark.parametrize(("before", "kind"), [(None, "first"),
                                              (config(BASE, BASE, None), "update")])
def test_the_first_model_and_a_change_that_keeps_the_models(before: str | None,
                                                            kind: str) -> None:
    after = config(BASE, BASE, None)
    plan = plan_of(BASE, before, after)
    assert effect(plan).kind == kind
    words = {"first": "Merging makes `exp-base` production's first champion.",
             "update": "Merging leaves the models serving production as they are."}[kind]
    assert words in headline(plan)


def test_the_count_leaves_out_who_approves_which_merge_records() -> None:
    placeholders = (Change("s3-config", "s3://c/p.yaml#approvers", ["maria"], ["(on merge)"]),
                    Change("s3-config", "s3://c/p.yaml#approval_source", "github-reviews",
                           "pending"))
    real = Change("s3-config", "s3://c/p.yaml#experiment_id", "exp-base", "exp-new")
    assert counted((*placeholders, real)) == (real,)
    plan = replace(plan_of(NEW, config(BASE, BASE, None), config(NEW, BASE, 1)),
                   changes=(*placeholders, real))
    assert "It changes **1** thing(s) in AWS" in headline(plan)


def test_the_footer_says_what_happens_next_and_links_the_run() -> None:
    env = {"GITHUB_SERVER_URL": "https://github.example", "GITHUB_REPOSITORY": "acme/models",
           "GITHUB_RUN_ID": "42"}
    text = footer(env)
    assert "merging applies this plan" in text and "revert the merge commit" in text
    assert "a push to this branch plans again" in text
    assert "(https://github.example/acme/models/actions/runs/42)" in text
    assert "actions/runs" not in footer({})
    comment = render_comment(PLAN, env=env)
    assert comment.rstrip().endswith(
        "[this plan's run and log](https://github.example/acme/models/actions/runs/42) · the "
        "pictures and plan.json: [the run's artifact]"
        "(https://github.example/acme/models/actions/runs/42#artifacts)")
    assert ("(https://github.example/acme/models/blob/HEAD/docs/request-format.md"
            "#how-the-plan-judges-a-difference)") in comment


def test_percentages_never_round_a_real_count_to_zero() -> None:
    assert percent(14, 56_863) == "<0.1 %"
    assert percent(0, 56_863) == "0.0 %"
    assert percent(56_862, 56_863) == ">99.9 %"
    assert percent(98, 56_961, 2) == "0.17 %"


def test_the_headline_names_one_risk_and_counts_the_others() -> None:
    from bot.core.domain import GateResult

    gates = tuple(GateResult(f"{m} not clearly below", -0.01, None, True, evaluated=False,
                             warning=f"{m} not tested: 10 frauds") for m in ("recall", "pr_auc"))
    text = headline(replace(PLAN, gates=gates))
    assert ("**All 2 gates pass, with a risk: recall not tested: 10 frauds (and 1 more ⚠️ in "
            "the gates).**") in text


def test_history_shows_an_endpoint_change_as_weights() -> None:
    from bot.report.audit_trail import _summary

    uri = BASE.model_artifact
    lines = _summary((Change("endpoint", "prod/champion", f"{uri} @ 99% (1x ml.m5.xlarge)",
                             f"{uri} @ 90% (1x ml.m5.xlarge)"),))
    assert lines == ["endpoint prod/champion: bbbbbbbbbbbb 99 % → bbbbbbbbbbbb 90 %"]


def test_an_endpoint_change_in_the_comment_names_the_model_and_its_weight() -> None:
    plan = replace(plan_of(NEW, config(NEW, BASE, 1), config(NEW, BASE, 10)), changes=(
        Change("endpoint", "prod/challenger", f"{NEW.model_artifact} @ 1% (1x ml.m5.xlarge)",
               f"{NEW.model_artifact} @ 10% (1x ml.m5.xlarge)"),))
    assert ("| `prod/challenger` | `exp-new` `eeeeeeeeeeee` **1 %** (1x ml\\.m5\\.xlarge) | "
            "`exp-new` `eeeeeeeeeeee` **10 %** (1x ml\\.m5\\.xlarge) |") in render_comment(plan)


def test_a_rollout_step_says_how_long_the_step_serving_now_has_soaked() -> None:
    from bot.core.domain import PlanIdentity
    from bot.core.request import Rollout
    from bot.core.rollout_rules import Soak

    rollout = Rollout.model_validate({"challenger": {"traffic_percent": 10, "steps": [
        {"percent": 1, "soak_hours": 24}, {"percent": 10, "soak_hours": 24},
        {"percent": 100, "soak_hours": 0}]}})
    identity = PlanIdentity("h" * 40, {}, None, None, "0.1.0", "2026-11-26T16:30:00+00:00")
    step = replace(plan_of(NEW, config(NEW, BASE, 1), config(NEW, BASE, 10)), rollout=rollout,
                   identity=identity,
                   soak=Soak(1, "2026-11-25T10:00:00+00:00", 24.0))
    assert ("→ **10 % (24 h) ← this request** → 100 % = promotion. The 1 % step has soaked "
            "30.5 h of its 24 h minimum (since 2026-11-25 10:00 UTC).") in render_comment(step)
    early = replace(step, soak=Soak(1, "2026-11-26T16:00:00+00:00", 24.0))
    assert "The 1 % step has soaked 30 min of its 24 h minimum ⚠️" in render_comment(early)
    unknown = replace(step, soak=Soak(1, None, 24.0))
    assert "When the 1 % step started is unknown (its 24 h minimum)." in render_comment(unknown)
    # The same share, or a step back down (which never waits): nothing to say.
    for share in (10, 50):
        same = replace(step, soak=Soak(share, "2026-11-25T10:00:00+00:00", 24.0))
        assert "has soaked" not in render_comment(same)


def test_the_provenance_names_the_data_with_versions_rows_and_frauds() -> None:
    from bot.core.domain import PlanIdentity
    from bot.core.provenance import DataUsed

    identity = PlanIdentity("h" * 40, {"train": "3LtOgHWOTB4mgA2AdlBn", "test": "a" * 64},
                            None, None, "9.9.9", "2026-11-26T16:30:00+00:00")
    plan = replace(PLAN, identity=identity, data=(
        DataUsed("train", "s3://data/processed/train.parquet", 227_846, 394),
        DataUsed("test", "data/test.parquet", 56_961, 98)))
    line = next(x for x in render_comment(plan).splitlines() if x.startswith("<sub>"))
    assert ("train `s3://data/processed/train.parquet` @ `3LtOgHWOTB4m` 227,846 rows "
            "(394 frauds, 0.17 %) · test `data/test.parquet` @ `aaaaaaaaaaaa` 56,961 rows "
            "(98 frauds, 0.17 %) · model sha256 `") in line
    assert line.endswith("promotion-bot 9\\.9\\.9</sub>")  # the bot that made the plan


def folded(comment: str) -> list[str]:
    """The comment's lines as a reviewer first sees it: each details block one line."""
    lines, depth = [], 0
    for line in comment.splitlines():
        if depth == 0:
            lines.append(line)
        depth += line.count("<details>") - line.count("</details>")
    return lines


def busy(plan: Plan) -> Plan:
    """``plan`` with as much as a demo pull request carries: seven gates, a description, a
    rollout override, both data sets, every kind of change and a live comparison."""
    from bot.core.domain import GateResult, PlanIdentity
    from bot.core.endpoint_values import EndpointComparison, LiveDifference, VariantStats
    from bot.core.provenance import DataUsed
    from bot.core.request import Rollout
    from bot.core.rollout_rules import Soak

    gates = tuple(GateResult(f"gate {i} of a long name, not clearly more than 0.02 below", -0.02,
                             0.01, True, "difference +0.0459, 95 % CI [-0.0026, +0.0998]: fails "
                             "only when the whole interval lies below -0.0200", kind="max_drop",
                             metric="pr_auc", detectable=0.07, point=0.01, ci_low=-0.01,
                             ci_high=0.03, frauds=98) for i in range(7))
    stats = VariantStats("champion", 10, 2, 1, 0.1, 0.2, 0.5, 0.25, 4.0, 7.5, 0.8, None)
    live = EndpointComparison("ep", 10, 0.5, (stats, replace(stats, variant="challenger")),
                              0.9, 4, 2.5, (LiveDifference("recall", 0.5, 0.75, 0.25, -0.1,
                                                           0.5, "inconclusive", 0.0),), 0, 1,
                              1.0, "fine")
    changes = (*(Change("ssm", f"/fraud-detection/hyperparameters/p{i}", "1", "2")
                 for i in range(5)),
               *(Change("s3-config", f"s3://c/p.yaml#f{i}", "a", "b") for i in range(10)),
               Change("pipeline", "run", None, "start execution"),
               Change("endpoint", "ep/champion", None, None),
               Change("endpoint", "ep/challenger", None, None))
    rollout = Rollout.model_validate({"challenger": {
        "traffic_percent": 10, "override_reason": "demo: no live traffic to soak",
        "steps": [{"percent": 1, "soak_hours": 24}, {"percent": 10, "soak_hours": 24},
                  {"percent": 50, "soak_hours": 48}, {"percent": 100, "soak_hours": 0}]}})
    return replace(
        plan, gates=gates, endpoint_comparison=live, changes=changes, rollout=rollout,
        description="Optimized XGBoost hyperparameters from the January 2024 tuning "
                    "experiment: deeper trees and a higher learning rate than the baseline.",
        identity=PlanIdentity("h" * 40, {"train": "v1", "test": "v2"}, None, None, "0.1.0",
                              "2026-11-26T16:30:00+00:00"),
        data=(DataUsed("train", "s3://fraud-detection-data/processed/train.parquet", 227_846,
                       394),
              DataUsed("test", "s3://fraud-detection-data/processed/test.parquet", 56_961, 98)),
        soak=Soak(1, "2026-11-25T10:00:00+00:00", 24.0), reverts="f" * 40,
        primary_metric="pr_auc")


KINDS = {
    "first": plan_of(NEW, None, config(NEW, NEW, None)),
    "new-challenger": plan_of(NEW, config(BASE, BASE, None), config(NEW, BASE, 1)),
    "rollout-step": plan_of(NEW, config(NEW, BASE, 1), config(NEW, BASE, 10)),
    "replace-challenger": plan_of(NEW, config(OLD, BASE, 1), config(NEW, BASE, 1)),
    "remove-challenger": plan_of(BASE, config(NEW, BASE, 1), config(BASE, BASE, None)),
    "promotion": plan_of(NEW, config(NEW, BASE, 50), config(NEW, NEW, None, previous=BASE)),
    "rollback": plan_of(NEW, config(NEW, NEW, None, previous=BASE), config(NEW, BASE, 50),
                        champion=NEW),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_of_comment_fits_on_one_screen_folded(kind: str) -> None:
    plan = busy(KINDS[kind])
    assert effect(plan).kind == kind
    lines = folded(render_comment(plan))
    assert len(lines) <= 60, "\n".join(lines)


def test_apply_tells_endpoint_values_whole_and_only_what_it_did() -> None:
    from bot.core.domain import Approval, Fact, Outcome, ResourceOutcome
    from bot.report.apply_outcome import comment, describe

    uri = NEW.model_artifact
    endpoint = ResourceOutcome("endpoint", (
        Change("endpoint", "prod/challenger", f"{uri} @ 1% (1x ml.m5.xlarge)",
               f"{uri} @ 10% (1x ml.m5.xlarge)"),), {},
        (Fact("endpoint", "prod: champion 90%, challenger 10%", "endpoint prod: weights"),))
    # A rollout step starts no retraining: the execution an earlier apply started is not its.
    pipeline = ResourceOutcome("pipeline", (), {"execution_arn": "arn:old"},
                               (Fact("pipeline execution", "arn:old (SUCCEEDED)",
                                     "pipeline: arn:old SUCCEEDED", in_noop=True),))
    outcome = Outcome("fraud-detection", "promotion-requests/fraud-detection.yaml", "a" * 40,
                      "c" * 64, (pipeline, endpoint), Approval(("maria",), "github-reviews"))
    text = describe(outcome)
    assert ("endpoint  prod/challenger: model eeeeeeeeeeee at 1 % (1x ml.m5.xlarge) → model "
            "eeeeeeeeeeee at 10 % (1x ml.m5.xlarge)") in text
    assert "…" not in text and "arn:old" not in text and "endpoint prod: weights" in text
    assert "arn:old" not in comment(outcome)
    # Nothing changed: what is there is said, as such.
    noop = replace(outcome, resources=(pipeline,))
    assert "no changes" in describe(noop) and "pipeline: arn:old SUCCEEDED" in describe(noop)


def test_a_live_comparison_without_spread_claims_no_detectable_difference() -> None:
    from bot.report.plan_comment import detectable_text

    assert detectable_text(0.0) == "—" and detectable_text(None) == "—"
    assert detectable_text(0.1234) == "0.123" and detectable_text(0.0001) == "<0.001"
    comment = render_comment(busy(KINDS["rollout-step"]))  # its live recall spread is 0
    assert "| inconclusive | —" in comment.replace("≈ ", "") and "0.000 |" not in comment


def test_history_names_a_pipeline_execution_only_where_the_apply_started_it() -> None:
    from bot.core.apply_record import ApplyRecord, ResourceStep
    from bot.core.audit import Commit, Entry
    from bot.core.domain import Approval
    from bot.report.audit_trail import render

    uri = NEW.model_artifact
    weights = Change("endpoint", "prod/challenger", f"{uri} @ 1% (1x ml.m5.xlarge)",
                     f"{uri} @ 10% (1x ml.m5.xlarge)")
    started = Change("pipeline", "fraud-detection-abc", None, "start execution")
    record = ApplyRecord(
        "fraud-detection", "p.yaml", "a" * 40, "complete", "2026-11-25T10:00:00+00:00",
        "2026-11-25T10:01:00+00:00", "tag", Approval(("maria",), "github-reviews"),
        content_sha256="c" * 64, changes=(weights,),
        steps=(ResourceStep("pipeline", "done", (), {"execution_arn": "arn:old"}),))
    entry = Entry("fraud-detection", "p.yaml", Commit("a" * 40, "Dana", "d@e", "2026", "Step",
                                                     ""), 4, "c" * 64, "exp-new", None,
                  (record,), None)
    text = render([entry])
    assert "endpoint prod/challenger: eeeeeeeeeeee 1 % → eeeeeeeeeeee 10 %" in text
    assert "arn:old" not in text  # a rollout step starts no retraining
    again = replace(record, changes=(started, weights))
    assert "pipeline: arn:old" in render([replace(entry, applies=(again,))])
