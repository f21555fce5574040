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


def test_replacing_a_challenger_names_it_and_compares_the_candidate_with_it() -> None:
    plan = plan_of(NEW, config(OLD, BASE, 1), config(NEW, BASE, 1))
    assert effect(plan).kind == "replace-challenger"
    assert "Merging replaces challenger `exp-old` (1 %) with `exp-new` at 1 %." in headline(plan)
    comment = render_comment(plan)
    assert ("| metric | candidate `exp-new` | challenger it replaces `exp-old` | difference |"
            in comment)
    assert "| Recall | 0.8000 | 0.7500 | +0.0500 |" in comment


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
    assert "| Recall | 0.7000 | 0.8000 | -0.1000 |" in comment
    assert "| champion 100 % | challenger 50 % |" in comment


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
    assert comment.rstrip().endswith("[this plan's run and log]"
                                     "(https://github.example/acme/models/actions/runs/42)")
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
