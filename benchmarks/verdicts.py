"""Benchmark: what the plan concludes, over independent data seeds — verdicts and gates.

For each data seed it generates sample data (``promotion-bot sample-data``'s generator),
splits it 80/20, trains the champion with the shipped request's hyperparameters (the bot's
default seed 0) and five candidates, and judges each against the champion exactly as
``plan`` and ``compare`` do (``bot.flows.judge``: paired bootstrap + DeLong, verdicts,
guard, gates), once with the shipped request's gates and once with the format's defaults:

* **equal**: the same hyperparameters with another ``seed`` (no true difference);
* **depth-1**: 5 rounds of depth-1 trees (the rest as shipped);
* **shuffled**: the shipped hyperparameters trained on shuffled labels;
* **all-zero**: a model that scores 0 for every record;
* **squeezed**: the champion's scores squeezed below the decision threshold (same ranking,
  no record flagged).

It prints, for the equal candidate, how often each metric is called better or worse, how
often ``better_than_champion`` on the declared primary metric would pass, how often the
gates block it, the spread of each difference and the smallest difference the test set
detects; for the worse candidates, how often the gates block them; and each rate against
its target. Seeds run in parallel processes, one xgboost thread each.

    .venv/bin/python benchmarks/verdicts.py [--rows N] [--seeds N] [--first N] [--jobs N]

Full size (284,807 rows, 98 test frauds) takes about 15 minutes for 20 seeds on a shared
two-core machine; the default, 100,000 rows (34 test frauds), about 4 minutes.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

REQUEST = REPO / "promotion-requests" / "fraud-detection.yaml"
CANDIDATES = ("equal", "depth-1", "shuffled", "all-zero", "squeezed")
WORSE = CANDIDATES[1:]
TARGET = "Class"
RATE_TARGET = 0.05  # most false "better" / false block of the equal candidate
BLOCK_TARGET = 0.95  # least share of runs a clearly worse candidate is blocked in


def one_seed(seed: int, rows: int) -> dict[str, Any]:
    """Every candidate judged against the champion on data seed ``seed``."""
    import numpy as np

    from bot.adapters import data_files as data
    from bot.adapters.request_files import load_request
    from bot.core import training
    from bot.core.domain import Champion
    from bot.core.request import Gates
    from bot.flows.judge import judge, judge_scores

    request, _ = load_request(REQUEST)
    shipped = {"shipped": request.gates, "default": Gates()}
    params: dict[str, Any] = {**request.hyperparameters.as_dict(), "nthread": 1}
    train, test = data.split(data.generate_sample(rows, seed), seed=seed)
    columns = training.feature_columns(test, TARGET)
    y = test[TARGET].to_numpy()

    champion = training.train(params, train, TARGET)
    boosters = {
        "equal": training.train({**params, "seed": 1}, train, TARGET),
        "depth-1": training.train({**params, "num_round": 5, "max_depth": 1}, train, TARGET),
        "shuffled": training.train(
            params, train.assign(**{TARGET: np.random.default_rng(seed).permutation(
                train[TARGET].to_numpy())}), TARGET),
    }
    champion_scores = training.predict(champion, test, columns)
    threshold = request.gates.decision_threshold
    synthetic = {
        "all-zero": training.Scores(np.zeros(y.size), np.zeros(y.size)),
        # Same ranking, every probability below the threshold: flags nothing.
        "squeezed": training.Scores(
            champion_scores.probability * (0.999 * threshold / champion_scores.probability.max()),
            champion_scores.ranking),
    }
    out: dict[str, Any] = {"seed": seed, "frauds": int(y.sum()), "rows": int(y.size)}
    for name in CANDIDATES:
        for gates_name, gates in shipped.items():
            baseline = Champion("champion", "benchmark", {})
            if name in boosters:
                judged = judge(gates, test, TARGET, boosters[name], baseline, champion)
            else:
                judged = judge_scores(gates, y, synthetic[name], baseline, champion_scores)
            out[f"{name}/{gates_name}"] = {
                "blocked": not judged.passed,
                "by": [g.kind + (f":{g.metric}" if g.metric else "")
                       for g in judged.gates if not g.passed],
                "verdicts": {m: c.verdict for m, c in judged.comparison.metrics.items()},
                "differences": {m: c.difference for m, c in judged.comparison.metrics.items()},
                "se": {m: c.se for m, c in judged.comparison.metrics.items()},
                "primary": judged.comparison.metrics[gates.primary_metric].verdict,
                "candidate": judged.evaluation.metrics,
            }
    return out


def rate(count: int, total: int) -> str:
    return f"{count:>3}/{total} ({count / total:5.1%})"


def report(results: list[dict[str, Any]], rows: int, elapsed: float) -> bool:
    from bot.core.comparison import detectable_difference
    from bot.core.request import METRICS

    n = len(results)
    frauds = statistics.mean(r["frauds"] for r in results)
    ok = True

    def check(good: bool) -> str:
        nonlocal ok
        ok &= good
        return "ok" if good else "MISSED"

    print(f"{n} data seeds, {rows:,} rows each (test split {results[0]['rows']:,} rows, "
          f"{frauds:.0f} frauds on average); {elapsed:.0f} s\n")
    equal = [r["equal/shipped"] for r in results]
    print("Equal candidate (same hyperparameters, another seed) — verdict per metric:")
    print(f"  {'metric':<10} {'better':>16} {'worse':>16} {'SD of diff':>11} "
          f"{'detectable':>11}  target: better <= {RATE_TARGET:.0%}")
    for m in METRICS:
        better = sum(e["verdicts"][m] == "better" for e in equal)
        worse = sum(e["verdicts"][m] == "worse" for e in equal)
        spread = statistics.stdev(e["differences"][m] for e in equal)
        se = statistics.mean(e["se"][m] for e in equal)
        print(f"  {m:<10} {rate(better, n):>16} {rate(worse, n):>16} {spread:>11.4f} "
              f"{detectable_difference(se) or math.nan:>11.4f}  "
              f"{check(better / n <= RATE_TARGET)}")
    anywhere = sum(any(v == "better" for v in e["verdicts"].values()) for e in equal)
    print(f"  some metric called better (six looks): {rate(anywhere, n)}")
    primary = sum(e["primary"] == "better" for e in equal)
    print(f"  better_than_champion on the declared primary metric passes: {rate(primary, n)}  "
          f"{check(primary / n <= RATE_TARGET)}")
    for gates_name in ("shipped", "default"):
        runs = [r[f"equal/{gates_name}"] for r in results]
        blocked = sum(e["blocked"] for e in runs)
        by = sorted({b for e in runs for b in e["by"]})
        print(f"  {gates_name} gates block it: {rate(blocked, n)}  "
              f"{check(blocked / n <= RATE_TARGET)}"
              + (f"  (by {', '.join(by)})" if by else ""))

    print(f"\nClearly worse candidates — blocked (target >= {BLOCK_TARGET:.0%}):")
    print(f"  {'candidate':<10} {'shipped gates':>16} {'default gates':>16}   "
          "mean ROC AUC, PR AUC, recall")
    for name in WORSE:
        cells = []
        for gates_name in ("shipped", "default"):
            blocked = sum(r[f"{name}/{gates_name}"]["blocked"] for r in results)
            cells.append(f"{rate(blocked, n):>16} {check(blocked / n >= BLOCK_TARGET)}")
        means = [statistics.mean(r[f"{name}/shipped"]["candidate"][m] for r in results)
                 for m in ("auc_roc", "pr_auc", "recall")]
        print(f"  {name:<10} {cells[0]} {cells[1]}   "
              + ", ".join(f"{v:.3f}" for v in means))
    champion = [r["equal/shipped"]["candidate"] for r in results]
    print("\nChampion-like models (equal candidate) score on average: "
          + ", ".join(f"{m} {statistics.mean(c[m] for c in champion):.3f}"
                      for m in ("auc_roc", "pr_auc", "recall", "precision")))
    print("\nall targets met" if ok else "\nSOME TARGETS MISSED")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows of sample data per seed")
    parser.add_argument("--seeds", type=int, default=20, help="independent data seeds")
    parser.add_argument("--first", type=int, default=1, help="first data seed")
    parser.add_argument("--jobs", type=int, default=2, help="seeds run at once")
    args = parser.parse_args()
    started = time.monotonic()
    seeds = range(args.first, args.first + args.seeds)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = []
        for result in pool.map(one_seed, seeds, [args.rows] * args.seeds):
            results.append(result)
            print(f"seed {result['seed']} done ({time.monotonic() - started:.0f} s)",
                  file=sys.stderr, flush=True)
    return 0 if report(results, args.rows, time.monotonic() - started) else 1


if __name__ == "__main__":
    sys.exit(main())
