"""Plan outputs for people and machines: the PR comment (Markdown) and plan.json (pure).

The comment is rendered from plan.json, so a cached plan re-renders without re-evaluating.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from bot.core.domain import Plan

METRIC_LABELS = {
    "accuracy": "Accuracy",
    "precision": "Precision",
    "recall": "Recall",
    "f1_score": "F1",
    "auc_roc": "ROC AUC",
    "pr_auc": "PR AUC (avg. precision)",
}
ROC_GRID = (0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
PR_GRID = tuple(round(0.1 * i, 1) for i in range(11))
TARGET_LABELS = {
    "ssm": "SSM Parameter Store",
    "s3-config": "S3 production config",
    "pipeline": "Step Functions retraining pipeline",
    "endpoint": "SageMaker endpoint",
}


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """plan.json without the live part (changes, config diff), which planning adds."""
    evaluation = plan.evaluation
    champion_eval = plan.champion_evaluation
    return {
        "target": plan.target,
        "request_path": plan.request_path,
        "experiment_id": plan.experiment_id,
        "content_sha256": plan.content_sha256,
        "model_key": plan.model_key,
        "artifact": plan.artifact,
        "evaluated_at": plan.evaluated_at,
        "trained": plan.trained,
        "metrics": evaluation.metrics,
        "confusion_matrix": dataclasses.asdict(evaluation.confusion_matrix),
        "rows": evaluation.rows,
        "positives": evaluation.positives,
        "majority_accuracy": evaluation.majority_accuracy,
        "curves": _curves(evaluation),
        "champion": {
            **dataclasses.asdict(plan.champion),
            "curves": _curves(champion_eval) if champion_eval else None,
            "confusion_matrix": (
                dataclasses.asdict(champion_eval.confusion_matrix) if champion_eval else None
            ),
        },
        "comparison": {
            "paired": plan.comparison.paired,
            "method": plan.comparison.method,
            "metrics": {k: dataclasses.asdict(v) for k, v in plan.comparison.metrics.items()},
        },
        "gates": [dataclasses.asdict(g) for g in plan.gates],
        "passed": plan.passed,
        "notes": list(plan.notes),
        "endpoint_comparison": plan.endpoint_comparison,
        "training": plan.training,
    }


def _curves(evaluation: Any) -> dict[str, dict[str, list[float]]]:
    return {
        "roc": {"x": list(evaluation.roc.x), "y": list(evaluation.roc.y)},
        "pr": {"x": list(evaluation.pr.x), "y": list(evaluation.pr.y)},
    }


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _interp(xs: list[float], ys: list[float], grid: tuple[float, ...], upper: bool) -> list[float]:
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


def curves_section(plan: dict[str, Any]) -> str:
    champion_curves = (plan.get("champion") or {}).get("curves")
    legend = "candidate" + (" (first line) vs champion (second line)" if champion_curves else "")
    parts = []
    for kind, title, xt, yt, grid, upper in (
        ("roc", "ROC curve", "false positive rate", "true positive rate", ROC_GRID, False),
        ("pr", "Precision-recall curve", "recall", "precision", PR_GRID, True),
    ):
        lines = [_interp(plan["curves"][kind]["x"], plan["curves"][kind]["y"], grid, upper)]
        if champion_curves:
            c = champion_curves[kind]
            lines.append(_interp(c["x"], c["y"], grid, upper))
        parts.append(_chart(title, xt, yt, grid, lines))
    return f"Lines: {legend}.\n\n" + "\n\n".join(parts)


def gates_section(plan: dict[str, Any]) -> str:
    rows = ["| gate | threshold | value | result |", "| --- | ---: | ---: | --- |"]
    for g in plan["gates"]:
        result = "✅ pass" if g["passed"] else "❌ **fail**"
        detail = f" — {g['detail']}" if g.get("detail") else ""
        rows.append(f"| {g['name']} | {_fmt(g['threshold'])} | {_fmt(g['value'])} | "
                    f"{result}{detail} |")
    return "\n".join(rows)


def comparison_section(plan: dict[str, Any]) -> str:
    comparison, champion = plan["comparison"], plan["champion"]
    how = (
        f"paired on the same {plan['rows']:,} test rows ({plan['positives']:,} frauds); "
        f"{comparison['method']}"
        if comparison["paired"]
        else f"**unpaired**: against recorded metrics ({champion['source']}), "
        "so differences carry no confidence interval"
    )
    rows = [
        f"Champion: `{champion['experiment_id']}` — {how}.",
        "",
        "| metric | candidate | champion | difference | change | 95 % CI of difference "
        "| improved |",
        "| --- | ---: | ---: | ---: | ---: | :---: | :---: |",
    ]
    for name, label in METRIC_LABELS.items():
        m = comparison["metrics"].get(name)
        if m is None:
            rows.append(f"| {label} | {_fmt(plan['metrics'].get(name))} | — | — | — | — | — |")
            continue
        ci = (f"[{m['ci_low']:+.4f}, {m['ci_high']:+.4f}]" if m.get("ci_low") is not None
              else "—")
        if m.get("p_value") is not None:
            ci += f" (DeLong p={m['p_value']:.3g})"
        rows.append(
            f"| {label} | {m['current']:.4f} | {m['baseline']:.4f} | {m['difference']:+.4f} | "
            f"{m['percent_change']:+.2f} % | {ci} | {'✅' if m['improved'] else '—'} |"
        )
    return "\n".join(rows)


def confusion_section(plan: dict[str, Any]) -> str:
    cm = plan["confusion_matrix"]
    return (
        "| | predicted legit | predicted fraud |\n| --- | ---: | ---: |\n"
        f"| **actual legit** | {cm['tn']:,} (TN) | {cm['fp']:,} (FP) |\n"
        f"| **actual fraud** | {cm['fn']:,} (FN) | {cm['tp']:,} (TP) |"
    )


def _show(value: Any) -> str:
    if value is None:
        return "*(absent)*"
    text = str(value)
    return f"`{text}`" if len(text) < 120 else f"`{text[:117]}…`"


def changes_section(plan: dict[str, Any]) -> str:
    changes = plan["changes"]
    if not changes:
        return "Nothing: production already matches this request."
    out: list[str] = []
    for target, label in TARGET_LABELS.items():
        mine = [c for c in changes if c["target"] == target]
        if not mine:
            continue
        out.append(f"**{label}**\n")
        if target == "s3-config":
            out.append(config_diff(plan))
            continue
        if target == "endpoint" and rollout_line(plan):
            out.append(rollout_line(plan) + "\n")
        out += ["| what | now | after merge |", "| --- | --- | --- |"]
        for c in mine:
            drift = " ⚠️ drift" if c.get("drift") else ""
            out.append(f"| `{c['key']}`{drift} | {_show(c['before'])} | {_show(c['after'])} |")
        out.append("")
    drifted = [c for c in changes if c.get("drift")]
    if drifted:
        out.append(
            f"> ⚠️ **Drift:** {len(drifted)} live value(s) differ from what `main` last applied "
            "(changed by hand?). Merging overwrites them; apply backs up the live values first."
        )
    return "\n".join(out)


def rollout_line(plan: dict[str, Any]) -> str:
    """The staged rollout plan with the step this request asks for in bold."""
    challenger = (plan.get("rollout") or {}).get("challenger")
    if not challenger:
        return ""
    steps = []
    for step in challenger["steps"]:
        text = f"{step['percent']} %"
        text += " = promotion" if step["percent"] == 100 else f" ({step['soak_hours']:g} h)"
        steps.append(f"**{text} ← this request**" if step["percent"] ==
                     challenger["traffic_percent"] else text)
    return "Rollout plan (share, minimum soak): " + " → ".join(steps)


def config_diff(plan: dict[str, Any]) -> str:
    before = (plan.get("config_before") or "").splitlines(keepends=True)
    after = plan["config_after"].splitlines(keepends=True)
    diff = "".join(difflib.unified_diff(before, after, "production-model-config.yaml (now)",
                                        "production-model-config.yaml (after merge)"))
    n = sum(1 for c in plan["changes"] if c["target"] == "s3-config")
    return (f"<details><summary>{n} field(s) change — YAML diff</summary>\n\n"
            f"```diff\n{diff}```\n</details>\n")


def endpoint_comparison_section(comparison: dict[str, Any]) -> str:
    rows = ["| variant | records | errors | mean score | p99 score | flagged | mean latency | "
            "p95 latency |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for v in comparison.get("variants", []):
        rows.append(
            f"| {v['variant']} | {v['count']} | {v['errors']} | {_fmt(v.get('score_mean'))} | "
            f"{_fmt(v.get('score_p99'))} | {_fmt(v.get('positive_rate'))} | "
            f"{_fmt(v.get('latency_mean_ms'), 1)} ms | {_fmt(v.get('latency_p95_ms'), 1)} ms |"
        )
    extra = []
    if comparison.get("agreement") is not None:
        extra.append(f"Decisions agree on **{comparison['agreement']:.1%}** of records.")
    if comparison.get("mcnemar_p") is not None:
        extra.append(f"McNemar exact test on disagreements: p = {comparison['mcnemar_p']:.3g}.")
    if comparison.get("verdict"):
        extra.append(f"\n> {comparison['verdict']}")
    return "\n".join(rows) + "\n\n" + " ".join(extra)


def training_note(plan: dict[str, Any]) -> str:
    """How the candidate was trained: where, on what, how long, at what cost."""
    how = plan.get("training") or {}
    if how.get("backend") == "sagemaker":
        cost = how.get("estimated_cost_usd")
        return (f"trained by SageMaker training job `{how['job']}` on {how['instance_count']} × "
                f"{how['instance_type']}, {how['seconds'] / 60:.1f} min, "
                f"{how['instance_hours']:.3f} instance-hours"
                + (f" ≈ ${cost:.2f} on demand" if cost is not None and cost >= 0.01
                   else f" ≈ ${cost:.4f} on demand" if cost is not None else ""))
    if how.get("backend") == "local":
        return f"trained for this plan in the runner, {how['seconds']:.0f} s"
    return "trained for this plan"


def render_comment(plan: dict[str, Any], links: dict[str, str] | None = None) -> str:
    """The one PR comment per target, rebuilt in full on every push.

    The code host adds the hidden marker that finds it again (``GitHubHost.upsert_comment``).
    """
    passed = plan["passed"]
    failed = [g["name"] for g in plan["gates"] if not g["passed"]]
    head = (
        f"## {'✅' if passed else '❌'} Promotion plan — `{plan['target']}` · "
        f"`{plan['experiment_id']}`\n\n"
        + (f"**All {len(plan['gates'])} gates pass.** " if passed
           else f"**{len(failed)} gate(s) fail: {', '.join(failed)}.** Do not merge. ")
        + f"Merging changes **{len(plan['changes'])}** thing(s) in AWS, listed below.\n\n"
        f"<sub>request `{plan['request_path']}` · content `{plan['content_sha256'][:12]}` · "
        f"model `{plan['model_key'][:12]}` "
        f"({training_note(plan) if plan['trained'] else 'reused, not retrained'}) · "
        f"evaluated {plan['evaluated_at']}</sub>"
    )
    sections = [head]
    sections += [f"> ⚠️ {note}" for note in plan.get("notes", [])]
    sections += [
        "### Gates", gates_section(plan),
        "### Candidate vs champion", comparison_section(plan),
        "### Curves", curves_section(plan),
        "<details><summary>Confusion matrix (candidate)</summary>\n\n"
        + confusion_section(plan) + "\n</details>",
    ]
    if plan.get("endpoint_comparison"):
        sections += ["### Live endpoints: champion vs challenger",
                     endpoint_comparison_section(plan["endpoint_comparison"])]
    sections += ["### What merging changes in AWS", changes_section(plan)]
    if links:
        sections.append(
            "<details><summary>Artifacts</summary>\n\n"
            + "\n".join(f"- {name}: `{uri}`" for name, uri in links.items())
            + "\n</details>"
        )
    return "\n\n".join(sections) + "\n"
