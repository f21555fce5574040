"""Benchmark: what the plan concludes about fixed model pairs over many test sets.

It trains, once, a champion with the shipped request's hyperparameters and candidates on a
training split of sample data (``promotion-bot sample-data``'s generator), scores a large
population of other sample rows once with each, then draws many test sets from that
population (``--frauds`` frauds and the legit rows that go with them at the data's fraud
rate) and judges each candidate against the champion on each test set exactly as ``plan``
and ``compare`` do (``bot.flows.judge.judge_scores``: paired bootstrap + DeLong, operating
point, verdicts, guard, gates), with the shipped request's gates and with the format's
defaults. The candidates:

* **equal**: the same hyperparameters with another ``seed`` (no true difference);
* **shallow**: 5 rounds of depth-1 trees;
* **dropped**: the champion's hyperparameters without its three most used features;
* **rebalanced**: the common rebalancing mistake, trained on every fraud and 1 % of the
  legit rows (its probabilities no longer mean what the threshold assumes);
* **over+3**, **over+6**: the champion's own ranking with every margin raised by 3 or 6
  (it flags several times as many records; recall rises, precision falls).

It prints, with a 95 % Wilson interval for each rate: how often each metric calls the
equal candidate better, how often the gates block it and each worse candidate; with
``--coverage``, how often each metric's 95 % interval covers the population's true
difference at a few fraud counts (intervals computed even below ``MIN_FRAUDS`` to show why
they are not claimed there); and whether nameless models are refused or scored on the
right columns. Test sets run in parallel processes.

    .venv/bin/python benchmarks/verdicts.py [--sets N] [--frauds N] [--coverage 5,17,30]

The defaults (60 test sets of 98 frauds, coverage at 5, 17 and 30 frauds over 100 test sets
each) take about 3 minutes on two idle cores; ``--sets 400 --coverage-sets 400`` about 10
(docs/request-format.md quotes its output).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

REQUEST = REPO / "promotion-requests" / "fraud-detection.yaml"
TARGET = "Class"
EQUAL_TARGET = 0.05  # most "better" per metric for the equal candidate
EQUAL_UPPER = 0.07  # ... with the rate's interval's upper end at most this
EQUAL_BLOCK = 0.025  # most blocks of the equal candidate
BLOCK_TARGET = 0.95  # least blocks of a worse candidate
COVERAGE_TARGET = 0.93  # least coverage of an interval the plan claims
WORSE = ("shallow", "dropped", "rebalanced", "over+3", "over+6")

#: Set in the parent before the pool forks: the population's labels, amounts and scores.
_STATE: dict[str, Any] = {}


def wilson(count: int, total: int) -> tuple[float, float]:
    """95 % Wilson score interval of a rate count / total."""
    if total == 0:
        return 0.0, 1.0
    z = 1.959963984540054
    p = count / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def rate(count: int, total: int) -> str:
    low, high = wilson(count, total)
    return f"{count:>3}/{total} {count / total:6.1%} [{low:5.1%}, {high:5.1%}]"


def prepare(train_rows: int, population: int, jobs: int) -> None:
    """Train the models and score the population into ``_STATE``."""
    import numpy as np
    import pandas as pd

    from bot.adapters import data_files as data
    from bot.adapters.request_files import load_request
    from bot.core import training

    request, _ = load_request(REQUEST)
    params: dict[str, Any] = {**request.hyperparameters.as_dict(), "nthread": jobs}
    train, _ = data.split(data.generate_sample(train_rows, seed=0), seed=0)
    champion = training.train(params, train, TARGET)
    used = champion.get_score(importance_type="weight")
    top = sorted(used, key=lambda name: -used[name])[:3]
    legit = train[train[TARGET] == 0].sample(frac=0.01, random_state=0)
    boosters = {
        "champion": champion,
        "equal": training.train({**params, "seed": 1}, train, TARGET),
        "shallow": training.train({**params, "num_round": 5, "max_depth": 1}, train, TARGET),
        "dropped": training.train(params, train.drop(columns=top), TARGET),
        "rebalanced": training.train(
            params, pd.concat([train[train[TARGET] == 1], legit]).sort_index(), TARGET),
    }
    del train
    rows = data.generate_sample(population, seed=1_000)
    columns = training.feature_columns(rows, TARGET)
    scores = {name: training.predict(b, rows, training.model_features(b, columns))
              for name, b in boosters.items()}
    margin = scores["champion"].ranking
    for shift in (3, 6):
        raised = margin + shift
        scores[f"over+{shift}"] = training.Scores(1 / (1 + np.exp(-raised)), raised)
    _STATE.update(labels=rows[TARGET].to_numpy(), amounts=rows["Amount"].to_numpy(),
                  scores=scores, gates={"shipped": request.gates},
                  dropped=top, boosters=boosters, columns=columns,
                  nameless_rows=rows.iloc[:200_000])


def draw(seed: int, frauds: int) -> Any:
    """One test set: ``frauds`` frauds and the legit rows that go with them."""
    import numpy as np

    from bot.adapters.data_files import FRAUD_RATE

    labels = _STATE["labels"]
    rng = np.random.default_rng(seed)
    positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    legit = round(frauds * (1 - FRAUD_RATE) / FRAUD_RATE)
    return np.sort(np.concatenate([rng.choice(positives, frauds, replace=False),
                                   rng.choice(negatives, legit, replace=False)]))


def judge_set(seed: int, frauds: int) -> dict[str, Any]:
    """Every candidate against the champion on test set ``seed``, both gate sets."""
    from bot.core import gates as gate_checks
    from bot.core.domain import Champion
    from bot.core.request import Gates
    from bot.core.training import Scores
    from bot.flows.judge import judge_scores

    rows = draw(seed, frauds)
    y, amounts = _STATE["labels"][rows], _STATE["amounts"][rows]
    scores = {name: Scores(s.probability[rows], s.ranking[rows])
              for name, s in _STATE["scores"].items()}
    out: dict[str, Any] = {}
    for name in ("equal", *WORSE):
        judged = judge_scores(_STATE["gates"]["shipped"], y, scores[name],
                              Champion("champion", "benchmark", {}), scores["champion"],
                              amounts)
        default = gate_checks.check(Gates(), judged.evaluation, judged.comparison)
        compared = {**judged.comparison.metrics, **judged.comparison.operating}
        out[name] = {
            "shipped": [g.kind + (f":{g.metric}" if g.metric else "")
                        for g in judged.gates if not g.passed],
            "default": [g.kind + (f":{g.metric}" if g.metric else "")
                        for g in default if not g.passed],
            "verdicts": {m: c.verdict for m, c in compared.items()},
            "intervals": {m: (c.ci_low, c.ci_high) for m, c in compared.items()},
            "warned": bool(gate_checks.warnings(judged.gates)),
        }
    return out


def coverage_set(seed: int, frauds: int) -> dict[str, dict[str, tuple[float, float] | None]]:
    """Intervals of the equal and shallow pairs on a small test set, claimed or not."""
    from bot.core.comparison import paired

    rows = draw(seed, frauds)
    y, amounts = _STATE["labels"][rows], _STATE["amounts"][rows]
    champion = _STATE["scores"]["champion"]
    out = {}
    for name in ("equal", "shallow"):
        s = _STATE["scores"][name]
        result = paired(y, s.probability[rows], champion.probability[rows],
                        ranking=(s.ranking[rows], champion.ranking[rows]), amounts=amounts,
                        min_frauds=0)
        out[name] = {m: (c.ci_low, c.ci_high) if c.ci_low is not None else None
                     for m, c in {**result.metrics, **result.operating}.items()}
    return out


def truth() -> dict[str, dict[str, float]]:
    """Each pair's difference on the whole population: what the intervals should cover."""
    from bot.core.comparison import paired

    y, champion = _STATE["labels"], _STATE["scores"]["champion"]
    out = {}
    for name in ("equal", "shallow", *WORSE):
        s = _STATE["scores"][name]
        result = paired(y, s.probability, champion.probability, n_boot=0,
                        ranking=(s.ranking, champion.ranking), amounts=_STATE["amounts"])
        out[name] = {m: c.difference
                     for m, c in {**result.metrics, **result.operating}.items()}
    return out


def nameless(cases: int) -> tuple[int, int, int]:
    """Nameless champion and candidate on test files with their columns reversed: how many
    were refused without the column list, scored as the named models with it."""
    import numpy as np

    from bot.adapters import data_files as data
    from bot.core.domain import Champion
    from bot.core.request import Gates
    from bot.errors import BotError
    from bot.flows.judge import judge

    refused = right = 0
    frame = _STATE["nameless_rows"]
    columns = _STATE["columns"]
    models = {}
    for name in ("champion", "equal"):
        copy = _STATE["boosters"][name].copy()
        copy.feature_names = None
        models[name] = copy
    with tempfile.TemporaryDirectory() as tmp:
        for case in range(cases):
            rng = np.random.default_rng(case)
            part = frame.iloc[np.sort(rng.choice(len(frame), 50_000, replace=False))]
            order = list(rng.permutation(part.columns))
            path = Path(tmp) / f"test-{case}.parquet"
            part[order].to_parquet(path, index=False)
            named = Path(tmp) / f"named-{case}.parquet"
            part.to_parquet(named, index=False)
            gates, champion = Gates(), Champion("champion", "benchmark", {})
            with data.open_table(path.name, Path(tmp), TARGET) as table:
                try:
                    judge(gates, table, TARGET, models["equal"], champion, models["champion"])
                except BotError:
                    refused += 1
                scored = judge(gates, table, TARGET, models["equal"], champion,
                               models["champion"], feature_columns=columns)
            with data.open_table(named.name, Path(tmp), TARGET) as table:
                expected = judge(gates, table, TARGET, _STATE["boosters"]["equal"], champion,
                                 _STATE["boosters"]["champion"])
            right += (scored.evaluation.metrics == expected.evaluation.metrics
                      and scored.champion.metrics == expected.champion.metrics)
    return cases, refused, right


def report(results: list[dict[str, Any]], covered: dict[int, list[Any]],
           truths: dict[str, dict[str, float]], names: tuple[int, int, int],
           frauds: int, elapsed: float) -> bool:
    from bot.core.comparison import MIN_FRAUDS

    n = len(results)
    ok = True

    def check(good: bool) -> str:
        nonlocal ok
        ok &= good
        return "ok" if good else "MISSED"

    print(f"{n} test sets of {frauds} frauds drawn from the population; "
          f"{_STATE['labels'].size:,} population rows; {elapsed:.0f} s")
    print("Rates with their 95 % Wilson interval.\n")
    metrics = list(results[0]["equal"]["verdicts"])
    print("Equal candidate (same hyperparameters, another seed) — called better / worse:")
    for m in metrics:
        better = sum(r["equal"]["verdicts"][m] == "better" for r in results)
        worse = sum(r["equal"]["verdicts"][m] == "worse" for r in results)
        good = better / n <= EQUAL_TARGET and wilson(better, n)[1] <= EQUAL_UPPER
        print(f"  {m:<26} better {rate(better, n)}  worse {rate(worse, n)}  "
              f"{check(good) if m in truths['equal'] else ''}")
    for gates in ("shipped", "default"):
        blocked = sum(bool(r["equal"][gates]) for r in results)
        by = sorted({b for r in results for b in r["equal"][gates]})
        print(f"  {gates} gates block it: {rate(blocked, n)}  "
              f"{check(blocked / n <= EQUAL_BLOCK)}" + (f"  (by {', '.join(by)})" if by else ""))
    warned = sum(r["equal"]["warned"] for r in results)
    print(f"  headline warns (a point estimate past a margin): {rate(warned, n)}")

    print(f"\nWorse candidates — blocked (target >= {BLOCK_TARGET:.0%}); true differences "
          "on the population:")
    for name in WORSE:
        cells = []
        for gates in ("shipped", "default"):
            blocked = sum(bool(r[name][gates]) for r in results)
            cells.append(f"{gates} {rate(blocked, n)} {check(blocked / n >= BLOCK_TARGET)}")
        t = truths[name]
        print(f"  {name:<10} " + "  ".join(cells))
        print(f"             auc_roc {t['auc_roc']:+.3f}, pr_auc {t['pr_auc']:+.3f}, "
              f"recall {t['recall']:+.3f}, alerts per fraud caught "
              f"{t['alerts_per_fraud_caught']:+.0%}; blocked by: "
              + ", ".join(sorted({b for r in results for b in r[name]['shipped']})))

    print(f"\nCoverage of the 95 % intervals (target >= {COVERAGE_TARGET:.0%} where claimed, "
          f"at {MIN_FRAUDS}+ frauds):")
    sets = {frauds: [{name: r[name]["intervals"] for name in ("equal", "shallow")}
                     for r in results], **covered}
    for count in sorted(sets):
        for pair in ("equal", "shallow"):
            line = []
            for m in truths[pair]:
                inside = [iv[pair][m] for iv in sets[count]
                          if iv[pair].get(m) and iv[pair][m][0] is not None]
                if not inside:
                    continue
                hit = sum(low <= truths[pair][m] <= high for low, high in inside)
                claimed = count >= MIN_FRAUDS
                mark = (check(hit / len(inside) >= COVERAGE_TARGET) if claimed
                        else "(not claimed)")
                line.append(f"{m} {hit / len(inside):.0%} {mark}")
            print(f"  {count:>3} frauds, {pair:<8}: " + "; ".join(line))

    cases, refused, right = names
    print(f"\nNameless models, test columns reordered: refused without the column list "
          f"{refused}/{cases} {check(refused == cases)}; scored as the named models with it "
          f"{right}/{cases} {check(right == cases)}")
    print("\nall targets met" if ok else "\nSOME TARGETS MISSED")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-rows", type=int, default=284_807,
                        help="rows of sample data whose training split trains the models")
    parser.add_argument("--population", type=int, default=1_500_000,
                        help="rows of the population test sets are drawn from")
    parser.add_argument("--sets", type=int, default=60, help="test sets of --frauds frauds")
    parser.add_argument("--frauds", type=int, default=98, help="frauds per test set")
    parser.add_argument("--coverage", default="5,17,30",
                        help="fraud counts to measure coverage at (comma-separated, '' none)")
    parser.add_argument("--coverage-sets", type=int, default=100)
    parser.add_argument("--nameless", type=int, default=3, help="nameless-model cases")
    parser.add_argument("--jobs", type=int, default=2, help="test sets judged at once")
    args = parser.parse_args()
    started = time.monotonic()
    prepare(args.train_rows, args.population, args.jobs)
    print(f"models trained and population scored ({time.monotonic() - started:.0f} s); "
          f"dropped features: {', '.join(_STATE['dropped'])}", file=sys.stderr, flush=True)
    truths = truth()
    names = nameless(args.nameless)
    covered: dict[int, list[Any]] = {}
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for count in (int(c) for c in args.coverage.split(",") if c.strip()):
            covered[count] = list(pool.map(coverage_set, range(args.coverage_sets),
                                           [count] * args.coverage_sets, chunksize=10))
            print(f"coverage at {count} frauds done ({time.monotonic() - started:.0f} s)",
                  file=sys.stderr, flush=True)
        results = []
        for result in pool.map(judge_set, range(args.sets), [args.frauds] * args.sets):
            results.append(result)
            if len(results) % 10 == 0:
                print(f"{len(results)} test sets judged ({time.monotonic() - started:.0f} s)",
                      file=sys.stderr, flush=True)
    return 0 if report(results, covered, truths, names, args.frauds,
                       time.monotonic() - started) else 1


if __name__ == "__main__":
    sys.exit(main())
