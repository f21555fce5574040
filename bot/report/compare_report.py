"""``promotion-bot compare``'s output: a short text report, or JSON for scripts (pure)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.core.power import power_note
from bot.core.request import METRICS
from bot.report.gates_comment import OPERATING_LABELS
from bot.report.plan_comment import VERDICT_LABELS
from bot.report.pr_summary import METRIC_LABELS

if TYPE_CHECKING:
    from bot.core.domain import Compared


def to_json(result: Compared) -> dict[str, Any]:
    """Metrics of both models, each metric's difference, interval and verdict, the gates."""
    j = result.judgement
    comparison = {
        name: {"candidate": m.current, "champion": m.baseline, "difference": m.difference,
               "ci_low": m.ci_low, "ci_high": m.ci_high, "verdict": m.verdict,
               "p_value": m.p_value, "se": m.se}
        for name, m in j.comparison.metrics.items()
    }
    return {
        "passed": result.passed,
        "candidate": {"file": result.candidate, "metrics": j.evaluation.metrics},
        "champion": {"file": result.champion, "metrics": j.champion.metrics},
        "test": {"data": result.test, "rows": j.evaluation.rows,
                 "frauds": j.evaluation.positives},
        "paired": j.comparison.paired,
        "method": j.comparison.method,
        "primary_metric": result.primary_metric,
        "comparison": comparison,
        "operating": {
            name: {"candidate": m.current, "champion": m.baseline, "difference": m.difference,
                   "relative": m.relative, "ci_low": m.ci_low, "ci_high": m.ci_high,
                   "verdict": m.verdict}
            for name, m in j.comparison.operating.items()
        },
        "gates": [{"name": g.name, "passed": g.passed, "kind": g.kind, "metric": g.metric,
                   "value": g.value, "threshold": g.threshold, "evaluated": g.evaluated,
                   "detectable": g.detectable, "detail": g.detail} for g in j.gates],
        "notes": list(j.notes),
    }


def to_text(result: Compared) -> str:
    """What a data scientist reads in the terminal before opening a pull request."""
    j = result.judgement
    lines = [
        f"candidate {result.candidate} vs champion {result.champion} on {result.test} "
        f"({j.evaluation.rows:,} rows, {j.evaluation.positives:,} frauds; "
        f"{'paired' if j.comparison.paired else 'unpaired'})",
        "",
        f"{'metric':<34}{'candidate':>10}{'champion':>10}{'difference':>12}"
        f"{'95 % CI':>22}  verdict",
    ]
    for name in METRICS:
        m = j.comparison.metrics.get(name)
        if m is None:
            continue
        label = METRIC_LABELS[name] + (" (primary)" if name == result.primary_metric else "")
        ci = (f"[{m.ci_low:+.4f}, {m.ci_high:+.4f}]"
              if m.ci_low is not None and m.ci_high is not None else "—")
        lines.append(f"{label:<34}{m.current:>10.4f}{m.baseline:>10.4f}{m.difference:>+12.4f}"
                     f"{ci:>22}  {VERDICT_LABELS[m.verdict]}")
    for name, m in j.comparison.operating.items():
        label = OPERATING_LABELS.get(name, name)
        if m.relative:
            ci = (f"[{m.ci_low:+.1%}, {m.ci_high:+.1%}]"
                  if m.ci_low is not None and m.ci_high is not None else "—")
            change = f"{m.difference:>+12.1%}" if m.difference < 1e8 else f"{'+inf':>12}"
        else:
            ci = (f"[{m.ci_low:+.4f}, {m.ci_high:+.4f}]"
                  if m.ci_low is not None and m.ci_high is not None else "—")
            change = f"{m.difference:>+12.4f}"
        lines.append(f"{label[:33]:<34}{m.current:>10.4g}{m.baseline:>10.4g}{change}"
                     f"{ci:>22}")
    lines += ["", "gates:"]
    for g in j.gates:
        state = ("PASS" if g.passed else "FAIL") + ("" if g.evaluated else " (not evaluated)")
        lines.append(f"  {state:<6} {g.name} — {g.detail}")
        note = power_note(g)
        if note:
            lines.append(f"         {note}")
    lines += [f"note: {note}" for note in j.notes]
    failed = [g for g in j.gates if not g.passed]
    lines += ["", "all gates pass" if not failed else f"{len(failed)} gate(s) fail"]
    return "\n".join(lines)
