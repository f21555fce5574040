"""The PR comment, rendered from frozen plan values."""

from __future__ import annotations

from dataclasses import replace

from bot.core.domain import (
    Champion,
    Change,
    Comparison,
    ConfusionMatrix,
    Curve,
    Evaluation,
    GateResult,
    MetricComparison,
    Plan,
)
from bot.core.request import Rollout
from bot.report.plan_comment import _interp, render_comment

EVALUATION = Evaluation(
    metrics={"accuracy": 0.9995, "precision": 0.9, "recall": 0.8, "f1_score": 0.847,
             "auc_roc": 0.97, "pr_auc": 0.81},
    confusion_matrix=ConfusionMatrix(tn=56_850, fp=9, fn=20, tp=80),
    roc=Curve((0.0, 0.01, 1.0), (0.0, 0.9, 1.0)),
    pr=Curve((0.0, 0.5, 1.0), (1.0, 0.9, 0.0)),
    positives=100, rows=56_959, majority_accuracy=0.99824,
)
PLAN = Plan(
    target="fraud-detection", request_path="promotion-requests/fraud-detection.yaml",
    content_sha256="c" * 64, model_key="m" * 64, evaluation=EVALUATION,
    champion=Champion("exp-old", "production-config", {"accuracy": 0.999}, "s3://b/old"),
    comparison=Comparison(True, "paired stratified bootstrap", {
        "accuracy": MetricComparison(0.9995, 0.999, 0.0005, 0.05, "better", 0.0001, 0.0009),
        "recall": MetricComparison(0.8, 0.78, 0.02, 2.6, "inconclusive", -0.04, 0.08,
                                   se=0.03),
        "auc_roc": MetricComparison(0.97, 0.95, 0.02, 2.1, "better", 0.01, 0.03, 0.004),
        "pr_auc": MetricComparison(0.81, 0.86, -0.05, -5.8, "worse", -0.09, -0.01, se=0.02),
    }),
    gates=(GateResult("accuracy >= 0.90", 0.9, 0.9995, True),),
    artifact="s3://fraud-detection-models/x/model.tar.gz",
    evaluated_at="2026-11-25T10:00:00+00:00", experiment_id="exp-new", trained=True,
    champion_identity="s3://b/old", primary_metric="pr_auc",
)
ETA = Change("ssm", "/fraud-detection/hyperparameters/eta", "0.3", "0.15", drift=True)


def planned(plan: Plan = PLAN, *changes: Change) -> Plan:
    """The plan as planning completes it: the evaluation plus what merging changes."""
    return replace(plan, changes=changes or (ETA,), config_before="experiment_id: exp-old\n",
                   config_after="experiment_id: exp-new\n")


def test_comment_is_found_by_its_marker_and_shows_curves_and_drift() -> None:
    comment = render_comment(planned(), {"plan.json": "s3://b/plan.json"})
    assert comment.startswith("## ✅ Promotion plan — `fraud-detection`")
    assert comment.count("```mermaid\nxychart-beta") == 2
    assert "✅ Promotion plan" in comment and "All 1 gates pass" in comment
    assert "Drift:" in comment and "`0.3`" in comment and "`0.15`" in comment
    assert "[+0.0100, +0.0300] (DeLong p=0.004)" in comment
    assert "<details><summary>Artifacts</summary>" in comment


def test_each_metric_has_a_verdict_in_symbols_and_words_never_a_check_mark() -> None:
    comment = render_comment(planned())
    rows = {line.split("|")[1].strip(): line for line in comment.splitlines()
            if line.startswith("| ") and line.count("|") == 8}

    assert rows["Accuracy"].endswith("| ▲ better |")
    assert rows["Recall"].endswith("| ≈ inconclusive |")
    assert rows["ROC AUC"].endswith("| ▲ better |")
    assert rows["PR AUC (avg. precision) (primary)"].endswith("| ▼ worse |")
    assert "✅" not in "".join(rows.values())
    # The declared primary metric's verdict heads the comment; a ▲ elsewhere is secondary.
    assert "Primary metric PR AUC (avg. precision): **▼ worse** than the champion" in comment
    assert "A ▲ on a secondary metric is not a claim" in comment


def test_an_unpaired_comparison_gives_no_verdict() -> None:
    recorded = Comparison(False, "recorded", {
        "accuracy": MetricComparison(0.9995, 0.952, 0.0475, 4.99, "not tested")})
    comment = render_comment(planned(replace(PLAN, comparison=recorded)))

    assert "| not tested |" in comment and "▲" not in comment and "✅ |" not in comment
    assert "**not tested**" in comment


def test_gates_show_not_evaluated_and_what_the_test_set_can_detect() -> None:
    gates = (
        GateResult("candidate flags fraud", 1.0, 89.0, True, "flags 89 records", kind="guard"),
        GateResult("pr_auc not clearly more than 0.02 below the champion", -0.02, None, True,
                   "not evaluated: the champion has no pr_auc value", evaluated=False,
                   kind="max_drop", metric="pr_auc"),
        GateResult("recall not clearly more than 0.01 below the champion", -0.01, 0.08, True,
                   "difference", kind="max_drop", metric="recall", detectable=0.084),
    )
    comment = render_comment(planned(replace(PLAN, gates=gates)))

    assert "⚪ **not evaluated** — not evaluated: the champion has no pr_auc value" in comment
    assert "What this test set can detect:" in comment
    assert ("- **recall** (max drop): The smallest difference in recall this test set detects "
            "is 0.084 (80 % power)") in comment
    assert "Its margin 0.01 is below 0.084" in comment


def test_failed_gate_says_do_not_merge() -> None:
    failed = replace(PLAN, gates=(GateResult("pr_auc >= 0.90", 0.9, 0.81, False),))
    comment = render_comment(planned(failed))
    assert "❌ Promotion plan" in comment and "Do not merge" in comment and "pr_auc" in comment


def test_unpaired_comparison_says_so() -> None:
    unpaired = replace(PLAN, comparison=Comparison(False, "recorded metrics", {}))
    assert "**unpaired**" in render_comment(planned(unpaired))


def test_config_diff_is_a_unified_diff() -> None:
    config_change = Change("s3-config", "s3://c/p.yaml#experiment_id", "exp-old", "exp-new")
    comment = render_comment(planned(PLAN, config_change))
    assert "-experiment_id: exp-old\n+experiment_id: exp-new" in comment


def test_interpolation_on_the_grid() -> None:
    assert _interp((0.0, 1.0), (0.0, 1.0), (0.0, 0.25, 1.0), upper=False) == [0.0, 0.25, 1.0]
    # Interpolated precision: the best precision at recall at or above each grid point.
    assert _interp((0.0, 0.5, 1.0), (0.2, 0.9, 0.1), (0.0, 0.6, 1.0), upper=True) == [
        0.9, 0.1, 0.1]


def test_endpoint_changes_show_the_rollout_plan_and_the_requested_step() -> None:
    change = Change("endpoint", "fraud-detection-production/challenger", None, "m @ 10%")
    plan = replace(planned(PLAN, change), rollout=Rollout.model_validate({"challenger": {
        "traffic_percent": 10, "steps": [{"percent": 1, "soak_hours": 24.0},
                                         {"percent": 10, "soak_hours": 24.0},
                                         {"percent": 100, "soak_hours": 0.0}]}}))
    assert ("Rollout plan (share, minimum soak): 1 % (24 h) → **10 % (24 h) ← this request** "
            "→ 100 % = promotion") in render_comment(plan)


def test_the_headline_states_a_risk_the_gates_let_pass() -> None:
    from bot.core.gates import check
    from bot.core.request import Gates

    recall = MetricComparison(0.749, 0.8, -0.051, -6.4, "inconclusive", -0.12, 0.02, se=0.035)
    comparison = Comparison(True, "paired", {"recall": recall}, frauds=98, min_frauds=30)
    gates = check(Gates(minimum={}, max_drop={"recall": 0.05}), EVALUATION, comparison)
    comment = render_comment(planned(replace(PLAN, comparison=comparison, gates=gates)))

    head = comment.splitlines()[0] + comment.split("\n\n")[1]
    assert head.startswith("## ⚠️ Promotion plan") and "✅" not in head
    assert ("recall -0.051, past the -0.050 you accept; 98 frauds cannot confirm it"
            in head)
    # The gate's row shows the point difference and its interval, not the interval's end.
    [row] = [line for line in comment.splitlines() if line.startswith("| recall not clearly")]
    assert "| -0.0500 | -0.0510 | [-0.1200, +0.0200] | ✅ pass ⚠️" in row


def test_a_clean_pass_keeps_the_check_mark() -> None:
    from bot.core.gates import check
    from bot.core.request import Gates

    recall = MetricComparison(0.79, 0.8, -0.01, -1.25, "inconclusive", -0.08, 0.06, se=0.035)
    comparison = Comparison(True, "paired", {"recall": recall}, frauds=98, min_frauds=30)
    gates = check(Gates(minimum={}, max_drop={"recall": 0.05}), EVALUATION, comparison)
    comment = render_comment(planned(replace(PLAN, comparison=comparison, gates=gates)))

    assert comment.startswith("## ✅ Promotion plan") and "gates pass.**" in comment


def test_the_operating_point_is_shown_as_operations_see_it() -> None:
    operating = {
        "alerts_per_100k": MetricComparison(120.0, 30.0, 3.0, 300.0, "better", 2.5, 3.5,
                                            relative=True),
        "alerts_per_fraud_caught": MetricComparison(3.0, 1.15, 1.61, 161.0, "better", 1.2,
                                                    2.1, relative=True),
    }
    comparison = replace(PLAN.comparison, operating=operating, frauds=98, min_frauds=30)
    comment = render_comment(planned(replace(PLAN, comparison=comparison)))

    assert "<summary>What fraud operations see" in comment
    assert ("| Alerts per 100,000 transactions | 120.0 | 30.0 | +300.0% | [+250.0%, +350.0%] |"
            in comment)
    assert "| Alerts per fraud caught | 3.00 | 1.15 | +161.0% | [+120.0%, +210.0%] |" in comment
    assert "not available: the test data has no `Amount` column" in comment
