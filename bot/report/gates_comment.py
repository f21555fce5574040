"""The comment's gates table and what fraud operations see (Markdown, pure)."""

from __future__ import annotations

from typing import Any

from bot.core.comparison import too_few
from bot.core.domain import GateResult, Plan
from bot.core.power import power_note

_HUGE = 1e8  # a ratio this large means the champion had none: shown as infinite


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _gate_cells(g: GateResult) -> tuple[str, str, str]:
    """A gate's accepted threshold, what it measured (a point estimate), and its interval."""
    relative = g.kind in ("max_alert_increase", "max_cost_increase", "cost_non_inferior")
    if g.kind == "guard":
        return fmt(g.threshold, 0), fmt(g.value, 0), "—"
    if g.kind == "minimum":
        return fmt(g.threshold), fmt(g.value), "—"
    point = g.point if g.point is not None else g.value

    def shown(value: float | None, sign: bool = True) -> str:
        if value is None:
            return "—"
        if relative:
            if value >= _HUGE:
                return "+∞"
            return f"{value:+.1%}" if sign else f"{value:.0%}"
        return f"{value:+.4f}" if sign else f"{value:.4f}"

    ci = (f"[{shown(g.ci_low)}, {shown(g.ci_high)}]"
          if g.ci_low is not None and g.ci_high is not None else "—")
    return shown(g.threshold), shown(point), ci


def gates_section(plan: Plan) -> str:
    rows = ["| gate | threshold | measured (point) | 95 % CI | result |",
            "| --- | ---: | ---: | :---: | --- |"]
    for g in plan.gates:
        if not g.evaluated:
            result = "⚪ **not evaluated**" + ("" if g.passed else ", ❌ **fail**")
        else:
            result = "✅ pass" if g.passed else "❌ **fail**"
        if g.passed and g.warning:
            result += " ⚠️"
        detail = f" — {g.detail}" if g.detail else ""
        threshold, point, ci = _gate_cells(g)
        rows.append(f"| {g.name} | {threshold} | {point} | {ci} | {result}{detail} |")
    rows += ["", "Against the champion, *measured* is the point difference (candidate minus "
             "champion; for alerts and cost the relative change) and a gate reads its 95 % "
             "interval, not the point."]
    notes = [f"- **{g.metric}** ({g.kind.replace('_', ' ')}): {note}"
             for g in plan.gates if (note := power_note(g))]
    if notes:
        rows += ["", f"<details><summary>What this test set can detect: {len(notes)} gate(s) "
                 "against the champion</summary>", "", *notes, "</details>"]
    return "\n".join(rows)


OPERATING_LABELS = {
    "alerts_per_100k": "Alerts per 100,000 transactions",
    "alerts_per_fraud_caught": "Alerts per fraud caught",
    "precision": "Precision at the decision threshold",
    "recall": "Recall at the decision threshold",
    "recall_at_champion_alerts": "Recall with the champion's number of alerts",
    "fraud_amount_caught": "Share of fraud amount caught",
    "cost_per_100k": "Expected cost per 100,000 transactions",
}
OPERATING_VERDICTS = {
    "better": "▲ higher", "worse": "▼ lower", "inconclusive": "≈ inconclusive",
    "not tested": "not tested",
}


def operating_section(plan: Plan) -> str:
    """The operating point as fraud operations see it: alerts, precision, recall at the same
    alert volume, fraud amount caught, cost; candidate against champion, paired."""
    comparison = plan.comparison
    if not comparison.operating:
        return ("Not compared: the champion was not re-scored on the same test rows, so its "
                "alerts are not known.")
    rows = ["| | candidate | champion | difference | 95 % CI | |",
            "| --- | ---: | ---: | ---: | :---: | :--- |"]
    for name, label in OPERATING_LABELS.items():
        m = comparison.operating.get(name) or (
            comparison.metrics.get(name) if name in ("precision", "recall") else None)
        if m is None:
            if name == "fraud_amount_caught":
                rows.append(f"| {label} | not available: the test data has no `Amount` column "
                            "| | | | |")
            continue
        digits = {"alerts_per_100k": ",.1f", "alerts_per_fraud_caught": ".2f",
                  "cost_per_100k": ",.0f"}.get(name, ".4f")

        def value(v: float, digits: str = digits) -> str:
            return "no fraud caught" if v >= 1e9 else format(v, digits)

        if m.relative:
            def percent(v: float) -> str:
                return "+∞" if v >= _HUGE else f"{v:+.1%}"

            difference = percent(m.difference)
            ci = (f"[{percent(m.ci_low)}, {percent(m.ci_high)}]"
                  if m.ci_low is not None and m.ci_high is not None else "—")
        else:
            difference = format(m.difference, "+" + digits)
            ci = (f"[{format(m.ci_low, '+' + digits)}, {format(m.ci_high, '+' + digits)}]"
                  if m.ci_low is not None and m.ci_high is not None else "—")
        rows.append(f"| {label} | {value(m.current)} | {value(m.baseline)} | {difference} | "
                    f"{ci} | {OPERATING_VERDICTS[m.verdict]} |")
    rows += ["", "Alerts are the records flagged at the decision threshold. *Recall with the "
             "champion's number of alerts* lets the candidate raise only as many alerts as the "
             "champion does (its highest-scored records), so a candidate that catches more "
             "only by flagging more gains nothing there. Relative differences (%) are "
             "candidate / champion − 1."]
    if comparison.frauds is not None and comparison.min_frauds is not None \
            and comparison.frauds < comparison.min_frauds:
        rows.append(f"No verdicts: {too_few(comparison.frauds, comparison.min_frauds)}.")
    return "\n".join(rows)
