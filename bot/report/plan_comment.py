"""The plan as the pull request's comment (Markdown, pure).

It is rendered from a ``Plan`` alone, so a stored plan re-renders without re-evaluating.
"""

from __future__ import annotations

import difflib
import math
from datetime import datetime
from typing import Any

from bot.core.changes import counted
from bot.core.domain import Curve, Plan
from bot.core.endpoint_values import EndpointComparison
from bot.core.gates import warnings
from bot.core.pr_effect import Effect, effect, judged_against_itself
from bot.report import markdown as md
from bot.report import pr_summary
from bot.report.gates_comment import fmt, gates_section, operating_section
from bot.report.pr_summary import METRIC_LABELS

ROC_GRID = (0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
PR_GRID = tuple(round(0.1 * i, 1) for i in range(11))
#: How the comment names each resource kind; a kind without a label here is shown by its
#: kind's name, so a new kind needs no edit of the report to be shown.
TARGET_LABELS = {
    "ssm": "SSM Parameter Store",
    "s3-config": "S3 production config",
    "pipeline": "Step Functions retraining pipeline",
    "alarms": "CloudWatch alarms on the challenger",
    "endpoint": "SageMaker endpoint",
    "registry": "SageMaker Model Registry (approval status by model digest)",
}


def _interp(xs: tuple[float, ...], ys: tuple[float, ...], grid: tuple[float, ...],
            upper: bool) -> list[float]:
    """Piecewise-linear y at each grid x (for PR: the best precision at recall >= x)."""
    points = sorted(zip(xs, ys, strict=True))
    out = []
    for g in grid:
        if upper:
            candidates = [y for x, y in points if x >= g - 1e-12]
            out.append(max(candidates) if candidates else 0.0)
            continue
        below = [(x, y) for x, y in points if x <= g]
        above = [(x, y) for x, y in points if x >= g]
        if not below or not above:
            out.append((below or above)[-1 if below else 0][1])
            continue
        (x0, y0), (x1, y1) = below[-1], above[0]
        out.append(y0 if x1 == x0 else y0 + (y1 - y0) * (g - x0) / (x1 - x0))
    return [round(v, 4) for v in out]


def _chart(title: str, x_title: str, y_title: str, grid: tuple[float, ...],
           lines: list[list[float]]) -> str:
    labels = ", ".join(f'"{g:g}"' for g in grid)
    body = "\n".join(f"    line [{', '.join(f'{v:g}' for v in line)}]" for line in lines)
    return (
        "```mermaid\nxychart-beta\n"
        f'    title "{title}"\n'
        f'    x-axis "{x_title}" [{labels}]\n'
        f'    y-axis "{y_title}" 0 --> 1\n'
        f"{body}\n```"
    )


def curves_section(plan: Plan) -> str:
    champion = plan.champion_evaluation
    legend = "candidate" + (" (first line) vs champion (second line)" if champion else "")
    parts = []
    for kind, title, xt, yt, grid, upper in (
        ("roc", "ROC curve", "false positive rate", "true positive rate", ROC_GRID, False),
        ("pr", "Precision-recall curve", "recall", "precision", PR_GRID, True),
    ):
        curves: list[Curve] = [getattr(e, kind) for e in (plan.evaluation, champion) if e]
        lines = [_interp(c.x, c.y, grid, upper) for c in curves]
        parts.append(_chart(title, xt, yt, grid, lines))
    return f"Lines: {legend}.\n\n" + "\n\n".join(parts)


VERDICT_LABELS = {
    "better": "▲ better",
    "worse": "▼ worse",
    "inconclusive": "≈ inconclusive",
    "not tested": "not tested",
}


def verdict_line(plan: Plan) -> str:
    """The declared primary metric's verdict, in one sentence."""
    name = plan.primary_metric
    m = plan.comparison.metrics.get(name) if name else None
    if name is None or m is None:
        return ""
    label = METRIC_LABELS.get(name, name)
    if m.ci_low is None or m.ci_high is None:
        why = ("too few frauds for an interval" if plan.comparison.paired
               else "unpaired: no interval")
        return (f"Primary metric {label}: {m.current:.4f} vs {m.baseline:.4f} for the "
                f"champion — **not tested** ({why}).")
    words = {"better": "**▲ better** than the champion",
             "worse": "**▼ worse** than the champion",
             "inconclusive": "**≈ inconclusive**: this test set cannot tell it from the champion",
             }[m.verdict]
    return (f"Primary metric {label}: {words} (difference {m.difference:+.4f}, "
            f"95 % CI [{m.ci_low:+.4f}, {m.ci_high:+.4f}]).")


def comparison_section(plan: Plan, env: dict[str, str] | None = None) -> str:
    comparison, champion, evaluation = plan.comparison, plan.champion, plan.evaluation
    how = (
        f"paired on the same {evaluation.rows:,} test rows ({evaluation.positives:,} frauds); "
        f"{comparison.method}"
        if comparison.paired
        else f"**unpaired**: against recorded metrics ({champion.source}), "
        "so differences carry no confidence interval and are **not tested**"
    )
    rows = [
        f"Champion: {md.code(champion.experiment_id)} — {how}.",
        "",
        "| metric | candidate | champion | difference | change | 95 % CI of difference "
        "| verdict |",
        "| --- | ---: | ---: | ---: | ---: | :---: | :--- |",
    ]
    secondary_better = False
    for name, label in METRIC_LABELS.items():
        if name == plan.primary_metric:
            label += " (primary)"
        m = comparison.metrics.get(name)
        if m is None:
            rows.append(f"| {label} | {fmt(plan.metrics.get(name))} | — | — | — | — | — |")
            continue
        ci = (f"[{m.ci_low:+.4f}, {m.ci_high:+.4f}]"
              if m.ci_low is not None and m.ci_high is not None else "—")
        if m.p_value is not None:
            ci += f" (DeLong p={m.p_value:.3g})"
        secondary_better |= m.verdict == "better" and name != plan.primary_metric
        rows.append(
            f"| {label} | {m.current:.4f} | {m.baseline:.4f} | {m.difference:+.4f} | "
            f"{m.percent_change:+.2f} % | {ci} | {VERDICT_LABELS[m.verdict]} |"
        )
    if comparison.paired:
        rows += ["", "▲ / ▼: the 95 % interval of the difference lies above / below 0; ≈: it "
                 f"holds 0 (how to read this: {pr_summary.docs_link(env or {})})."]
    if secondary_better:
        rows.append(SECONDARY_NOTE)
    return "\n".join(rows)


#: Measured by benchmarks/verdicts.py: an equal candidate shows ▲ on at least one of the
#: six metrics in this share of runs, although each metric alone stays under 5 %.
SECONDARY_NOTE = (
    "A ▲ on a secondary metric is not a claim: six metrics give six chances, so an equal "
    "candidate shows one somewhere more often than any one metric does. Claims rest on the "
    "primary metric, declared in the request before the plan is seen."
)


def confusion_section(plan: Plan) -> str:
    cm = plan.evaluation.confusion_matrix
    return (
        "| | predicted legit | predicted fraud |\n| --- | ---: | ---: |\n"
        f"| **actual legit** | {cm.tn:,} (TN) | {cm.fp:,} (FP) |\n"
        f"| **actual fraud** | {cm.fn:,} (FN) | {cm.tp:,} (TP) |"
    )


def _show(value: Any) -> str:
    if value is None:
        return "*(absent)*"
    return md.code(value, 118, cell=True)


def changes_section(plan: Plan, e: Effect | None = None) -> str:
    changes, e = plan.changes, e or effect(plan)
    if not changes:
        return "Nothing: production already matches this request."
    out: list[str] = []
    # In apply's order (the order plan lists the changes in).
    for target in dict.fromkeys(c.target for c in changes):
        mine = [c for c in changes if c.target == target]
        out.append(f"**{TARGET_LABELS.get(target, target)}**\n")
        if target == "s3-config":
            out.append(config_diff(plan))
            continue
        def show(value: Any, endpoint: bool = target == "endpoint") -> str:
            return pr_summary.variant_text(value, e) if endpoint else _show(value)

        out += ["| what | now | after merge |", "| --- | --- | --- |"]
        for c in mine:
            drift = " ⚠️ drift" if c.drift else ""
            out.append(f"| {md.code(c.key, cell=True)}{drift} | {show(c.before)} | "
                       f"{show(c.after)} |")
        out.append("")
    drifted = [c for c in changes if c.drift]
    if drifted:
        out.append(
            f"> ⚠️ **Drift:** {len(drifted)} live value(s) differ from what `main` last applied "
            "(changed by hand, or braked by the watcher). Merging overwrites them; the live "
            "values stay in the hyperparameters' backup, the config archive or the apply record."
        )
    return "\n".join(out)


def rollout_line(plan: Plan) -> str:
    """The staged rollout plan with the step this request asks for in bold, and how long the
    step serving now has soaked when this request moves on from it."""
    challenger = plan.rollout.challenger if plan.rollout else None
    if challenger is None:
        return ""
    steps = []
    for step in challenger.steps:
        text = f"{step.percent} %"
        text += " = promotion" if step.percent == 100 else f" ({step.soak_hours:g} h)"
        steps.append(f"**{text} ← this request**" if step.percent ==
                     challenger.traffic_percent else text)
    line = "Rollout plan (share, minimum soak): " + " → ".join(steps)
    soak = plan.soak
    if soak is not None and soak.share < challenger.traffic_percent:  # a step up
        line += ". " + soak_text(plan)
    return line


def soak_text(plan: Plan) -> str:
    """How long the step serving now has soaked, against its minimum: "The 10 % step has
    soaked 30.5 h of its 24 h minimum (since 2026-11-24 09:00 UTC)"."""
    soak = plan.soak
    if soak is None:
        return ""
    minimum = f"its {soak.minimum_hours:g} h minimum" if soak.minimum_hours else "no minimum"
    if soak.since is None:
        return f"When the {soak.share} % step started is unknown ({minimum})."
    since = datetime.fromisoformat(soak.since)
    now = datetime.fromisoformat(plan.identity.signed_at if plan.identity is not None
                                 else plan.evaluated_at)
    hours = max(0.0, (now - since).total_seconds() / 3600)
    short = " ⚠️" if hours < soak.minimum_hours else ""
    return (f"The {soak.share} % step has soaked {_duration(hours)} of {minimum}{short} "
            f"(since {since.strftime('%Y-%m-%d %H:%M')} UTC).")


def _duration(hours: float) -> str:
    """Rounded down, so a soak a minute short never reads as complete."""
    if hours < 1:
        return f"{math.floor(hours * 60)} min"
    return f"{math.floor(hours * 10) / 10:g} h"


def config_diff(plan: Plan) -> str:
    before = (plan.config_before or "").splitlines(keepends=True)
    after = (plan.config_after or "").splitlines(keepends=True)
    diff = "".join(difflib.unified_diff(before, after, "production-model-config.yaml (now)",
                                        "production-model-config.yaml (after merge)"))
    n = len([c for c in counted(plan.changes) if c.target == "s3-config"])
    return (f"<details><summary>{n} field(s) change, and who approved is recorded on merge "
            "— YAML diff</summary>\n\n"
            f"{md.block(diff, 'diff')}\n</details>\n")


def endpoint_comparison_section(comparison: EndpointComparison) -> str:
    sent = (f"{comparison.records:,} labelled test records to each variant: all "
            f"{comparison.frauds:,} frauds and a random sample of legit ones, each standing "
            f"for {comparison.legit_weight:,.1f} of the test set's"
            if comparison.frauds is not None and comparison.legit_weight is not None
            else f"{comparison.records:,} unlabelled test records to each variant")
    rows = [f"Sent {sent}; rates are estimates for the whole test set.", "",
            "| variant | records | errors | recall | precision | flagged | mean score | "
            "requests | p95 latency / request |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for v in comparison.variants:
        rows.append(
            f"| {v.variant} | {v.records:,} | {v.errors:,} | {fmt(v.recall, 3)} | "
            f"{fmt(v.precision, 3)} | {fmt(v.flagged_rate)} | {fmt(v.score_mean)} | "
            f"{v.requests} | {fmt(v.latency_p95_ms, 1)} ms |"
        )
    if comparison.differences:
        rows += ["", "| challenger − champion | difference | 95 % CI | verdict | detectable "
                 "(80 % power) |", "| --- | ---: | :---: | :--- | ---: |"]
        for d in comparison.differences:
            rows.append(f"| {d.metric} | {d.difference:+.4f} | [{d.ci_low:+.4f}, "
                        f"{d.ci_high:+.4f}] | {VERDICT_LABELS[d.verdict]} | "
                        f"{detectable_text(d.detectable)} |")
    extra = []
    if comparison.agreement is not None:
        extra.append(f"Decisions agree on **{comparison.agreement:.2%}** of the test set.")
    if comparison.mcnemar_p is not None:
        extra.append(f"McNemar exact test on the frauds only one catches: "
                     f"p = {comparison.mcnemar_p:.3g}.")
    if comparison.verdict:
        extra.append(f"\n> {comparison.verdict}")
    return "\n".join(rows) + "\n\n" + " ".join(extra)


def detectable_text(value: float | None) -> str:
    """The smallest difference a sample detects, or "—" when it has no spread to measure it
    by (identical answers): no claim rather than "detects 0.000"."""
    if value is None or not math.isfinite(value) or value <= 0:
        return "—"
    return f"{value:.3f}" if value >= 0.0005 else "<0.001"


def training_note(plan: Plan) -> str:
    """How the candidate was trained: where, on what, how long, at what cost."""
    how = plan.training or {}
    if how.get("backend") == "sagemaker":
        cost = how.get("estimated_cost_usd")
        return (f"trained by SageMaker training job {md.code(str(how['job']))} on "
                f"{how['instance_count']} × "
                f"{how['instance_type']}, {how['seconds'] / 60:.1f} min, "
                f"{how['instance_hours']:.3f} instance-hours"
                + (f" ≈ ${cost:.2f} on demand" if cost is not None and cost >= 0.01
                   else f" ≈ ${cost:.4f} on demand" if cost is not None else ""))
    if how.get("backend") == "local":
        return f"trained for this plan in the runner, {how['seconds']:.0f} s"
    return "trained for this plan"


def _details(summary: str, body: str) -> str:
    return f"<details><summary>{summary}</summary>\n\n{body}\n</details>"


def render_comment(plan: Plan, links: dict[str, str] | None = None,
                   env: dict[str, str] | None = None) -> str:
    """The one PR comment per target, rebuilt in full on every push: a headline sentence,
    what merging does by kind, the gates, details collapsed, what happens next. ``env``: the
    workflow's variables, for the run's and the docs' links (none: no links).

    The code host adds the hidden marker that finds it again (``GitHubHost.upsert_comment``).
    """
    env = env or {}
    e = effect(plan)
    risks = warnings(plan.gates)
    icon = "❌" if not plan.passed else "⚠️" if risks else "✅"
    how = training_note(plan) if plan.trained else "reused, not retrained"
    sections = [
        f"## {icon} Promotion plan — {md.code(plan.target)} · {md.code(plan.experiment_id)}",
        pr_summary.headline(plan, risks),
        pr_summary.provenance(plan, how),
    ]
    itself = judged_against_itself(plan)
    if verdict_line(plan) and not itself:
        sections.append(verdict_line(plan))
    if plan.description.strip():
        sections.append("> **Description** (by the request's author): "
                        + md.quote(plan.description).removeprefix(">").lstrip())
    challenger = plan.rollout.challenger if plan.rollout else None
    if challenger is not None and challenger.override_reason:
        sections.append(f"> ⚠️ **Rollout override:** {md.text(challenger.override_reason)}")
    sections += [f"> ⚠️ {md.text(note, None)}" for note in plan.notes]
    recorded = pr_summary.recorded_section(plan, e)
    serving = [part for part in (
        pr_summary.serving_section(plan, e), rollout_line(plan), recorded,
        pr_summary.self_note(plan)) if part]
    if serving:
        sections += ["### Who serves production", "\n\n".join(serving)]
    if itself:
        sections.append(_details(f"Gates: {len(plan.gates)}, against the champion the model "
                                 "is compared with itself", gates_section(plan)))
    else:
        sections += ["### Gates", gates_section(plan)]
        sections += [
            _details("What fraud operations see: alerts, precision, recall, cost",
                     operating_section(plan)),
            _details("Candidate vs champion, every metric",
                     comparison_section(plan, env)),
            _details("Curves (ROC, precision-recall) and the candidate's confusion matrix",
                     curves_section(plan) + "\n\n" + confusion_section(plan)),
        ]
    if plan.endpoint_comparison is not None:
        sections.append(_details("Live endpoints: champion vs challenger",
                                 endpoint_comparison_section(plan.endpoint_comparison)))
    sections.append(_details(
        f"What merging changes in AWS: {len(counted(plan.changes))} thing(s)",
        changes_section(plan, e)))
    if links:
        sections.append(_details("Artifacts", "\n".join(
            f"- {md.text(name)}: {md.code(uri)}" for name, uri in links.items())))
    sections.append(pr_summary.footer(env))
    return "\n\n".join(sections) + "\n"
