"""Benchmark: what planning costs on top of the work it cannot avoid.

On full-size sample data (284,807 rows, split 80/20) it measures, each in a fresh process,

* the plan pipeline: load both Parquet tables, version them, train with the seed's
  hyperparameters, package the model, score, re-score a stored champion model, evaluate
  both, compare them paired, and draw the PNGs;
* the floor: bare ``pandas.read_parquet`` and ``xgboost.train`` and predict on the same data,

and prints wall time (fastest of the interleaved runs) and peak RSS (median) of each and
their ratios against the targets.
The measured command is ``measured_command``: swap it for ``promotion-bot plan`` when the
plan command is complete.

    .venv/bin/python benchmarks/plan.py [--rows N] [--repeat N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TIME_TARGET = 1.3
MEMORY_TARGET = 1.5
TARGET_COLUMN = "Class"
#: The seed notebook's hyperparameters.
HYPERPARAMETERS: dict[str, str | int | float] = {
    "objective": "binary:logistic",
    "num_round": 150,
    "max_depth": 7,
    "eta": 0.15,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
}
CHAMPION_HYPERPARAMETERS: dict[str, str | int | float] = {
    **HYPERPARAMETERS, "num_round": 100, "max_depth": 5,
}


def measured_command(workdir: Path) -> list[str]:
    """The command whose cost is measured; the integrator swaps in ``promotion-bot plan``."""
    return [sys.executable, __file__, "_pipeline", str(workdir)]


def floor_command(workdir: Path) -> list[str]:
    """The least any plan has to do: read the data, train, predict."""
    return [sys.executable, __file__, "_floor", str(workdir)]


def pipeline(workdir: Path) -> None:
    """The plan pipeline from the bot's own modules (what ``measured_command`` runs now)."""
    from bot import comparison, data, evaluation, plots, training

    versions = {name: data.data_version(f"data/{name}.parquet", workdir)
                for name in ("train", "test")}
    train = data.load_table("data/train.parquet", workdir, TARGET_COLUMN)
    test = data.load_table("data/test.parquet", workdir, TARGET_COLUMN)
    booster = training.train(HYPERPARAMETERS, train, TARGET_COLUMN)
    del train
    artifact = training.package_model(booster)
    features = training.feature_columns(test, TARGET_COLUMN)
    scores = training.score(booster, test, features)
    champion = training.load_model((workdir / "champion.tar.gz").read_bytes())
    champion_scores = training.score(champion, test, features)
    labels = test[TARGET_COLUMN].to_numpy()
    candidate_evaluation = evaluation.evaluate(labels, scores)
    champion_evaluation = evaluation.evaluate(labels, champion_scores)
    compared = comparison.paired(labels, scores, champion_scores)
    plots.write_pngs(candidate_evaluation, workdir / "out", champion_evaluation)
    (workdir / "out" / "model.tar.gz").write_bytes(artifact)
    print(json.dumps({"versions": versions, "metrics": candidate_evaluation.metrics,
                      "auc_roc_p": compared.metrics["auc_roc"].p_value}))


def floor(workdir: Path) -> None:
    import pandas as pd
    import xgboost

    train = pd.read_parquet(workdir / "data" / "train.parquet")
    test = pd.read_parquet(workdir / "data" / "test.parquet")
    params = {k: v for k, v in HYPERPARAMETERS.items() if k != "num_round"}
    params.update(tree_method="hist", nthread=os.cpu_count() or 1, seed=0)
    booster = xgboost.train(
        params,
        xgboost.DMatrix(train.drop(columns=TARGET_COLUMN), label=train[TARGET_COLUMN]),
        num_boost_round=int(HYPERPARAMETERS["num_round"]),
    )
    scores = booster.predict(xgboost.DMatrix(test.drop(columns=TARGET_COLUMN)))
    print(json.dumps({"mean_score": float(scores.mean())}))


def setup(workdir: Path, rows: int) -> None:
    """Sample data and a stored champion model (not measured)."""
    from bot import data, training

    data.write_sample(str(workdir / "data"), rows=rows, seed=0)
    train = data.load_table("data/train.parquet", workdir, TARGET_COLUMN)
    champion = training.train(CHAMPION_HYPERPARAMETERS, train, TARGET_COLUMN)
    (workdir / "champion.tar.gz").write_bytes(training.package_model(champion))


def measure(command: list[str]) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MiB) and CPU seconds of one run of ``command``, fresh process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed with exit code {process.returncode}")
    # ru_maxrss is in KiB on Linux; CPU time is less disturbed by other work than wall time.
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=284_807)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each, interleaved")
    parser.add_argument("--keep", type=Path, help="work in DIR and keep it (data, PNGs)")
    args = parser.parse_args()

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="plan-benchmark-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([sys.executable, __file__, "_setup", str(workdir), str(args.rows)],
                       cwd=REPO, check=True)
        commands = {"floor": floor_command(workdir), "plan": measured_command(workdir)}
        runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in commands}
        for _ in range(args.repeat):  # interleaved, so both see the same machine load
            for name, command in commands.items():
                runs[name].append(measure(command))
        results = {}
        for name, measured in runs.items():
            # The fastest run is the least disturbed by other work on the machine.
            results[name] = (min(r[0] for r in measured),
                             statistics.median(r[1] for r in measured),
                             min(r[2] for r in measured))
            print(f"{name:>6}: {results[name][0]:6.2f} s  {results[name][1]:7.1f} MiB peak RSS"
                  f"  {results[name][2]:6.2f} s CPU"
                  f"  (runs: {', '.join(f'{r[0]:.2f} s' for r in measured)})")
        time_ratio = results["plan"][0] / results["floor"][0]
        memory_ratio = results["plan"][1] / results["floor"][1]
        cpu_ratio = results["plan"][2] / results["floor"][2]
        time_ok, memory_ok = time_ratio <= TIME_TARGET, memory_ratio <= MEMORY_TARGET
        print(f"  time: {time_ratio:.2f}x the floor (target <= {TIME_TARGET}x) "
              f"{'ok' if time_ok else 'OVER'}")
        print(f"memory: {memory_ratio:.2f}x the floor (target <= {MEMORY_TARGET}x) "
              f"{'ok' if memory_ok else 'OVER'}")
        print(f"   cpu: {cpu_ratio:.2f}x the floor (for reference)")
        print(f"({args.rows:,} rows, {os.cpu_count()} CPUs; fastest of {args.repeat} runs, "
              "median peak RSS)")
        return 0 if time_ok and memory_ok else 1
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1].startswith("_"):
        sys.path.insert(0, str(REPO))
        stage, directory = sys.argv[1], Path(sys.argv[2])
        if stage == "_setup":
            setup(directory, int(sys.argv[3]))
        elif stage == "_pipeline":
            pipeline(directory)
        elif stage == "_floor":
            floor(directory)
        else:
            raise SystemExit(f"unknown stage {stage}")
        sys.exit(0)
    sys.exit(main())
