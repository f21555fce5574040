"""Benchmark: what a plan costs as the data grows, trained locally or by a training job.

For 1x, 4x and 16x the seed's 284,807 rows (16x = 4.6 M rows, split 80/20), each in a
fresh process on the embedded default (moto's server in this process), it measures

* the floor: bare ``pandas.read_parquet`` of both tables, ``xgboost.train`` on a DMatrix and
  predict, the least any plan that holds its data has to do;
* ``promotion-bot plan`` with ``training.backend: local`` (the runner trains);
* ``promotion-bot plan`` with ``training.backend: sagemaker`` on 1 and on 2 instances (the
  embedded default's training job trains, in worker processes of this process's server);

and prints each one's wall time and peak RSS (the plan process: what the runner needs; for
a training job also its largest worker's peak, what one instance needs), the ratio of the
local plan to the floor, and a straight line fitted through each: bytes and seconds per row.

    .venv/bin/python benchmarks/scale.py [--sizes 1,4,16] [--keep DIR]

Each size and mode is run once (a training job's name is its model key, so a second run of
the same plan would attach to the first's job); 16x takes several minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from plan import (  # noqa: E402
    REQUEST,
    floor_command,
    local_request,
    measure,
    plan_command,
)

SEED_ROWS = 284_807
MEMORY_TARGET = 1.5
MODES = ("floor", "local", "job x1", "job x2")


def setup(workdir: Path, rows: int) -> None:
    """Sample data as repository files and one request per mode (not measured)."""
    text = local_request(workdir, rows)
    for mode in MODES[1:]:
        request = text
        if mode.startswith("job"):
            request += ("\ntraining:\n  backend: sagemaker\n  instance_type: ml.m5.2xlarge\n"
                        f"  instance_count: {mode[-1]}\n  max_runtime_minutes: 240\n")
        path = workdir / mode.replace(" ", "-") / REQUEST
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(request)
        # Hard links: the same files inside each plan's repository (a symbolic link out of
        # the repository would be refused).
        (workdir / mode.replace(" ", "-") / "data").mkdir(exist_ok=True)
        for name in ("train.parquet", "test.parquet"):
            os.link(workdir / "data" / name, workdir / mode.replace(" ", "-") / "data" / name)


def run_size(workdir: Path, rows: int) -> dict[str, dict[str, float]]:
    from bot.local import training_runner
    from bot.local.aws_server import LocalAWS
    from bot.local.bootstrap import bootstrap

    results: dict[str, dict[str, float]] = {}
    with LocalAWS():
        bootstrap(rows=5000, progress=lambda _: None)
        for mode in MODES:
            where = workdir / mode.replace(" ", "-")
            command = floor_command(workdir) if mode == "floor" else plan_command(where)
            wall, rss, cpu = measure(command, where if mode != "floor" else workdir)
            result = {"seconds": wall, "rss_mib": rss, "cpu_seconds": cpu}
            if mode.startswith("job"):
                plan = json.loads((where / "out" / "plan.json").read_text())
                result["worker_rss_mib"] = training_runner.peak_rss_mib(
                    plan["training"]["job"]) or 0.0
                result["job_seconds"] = plan["training"]["seconds"]
            results[mode] = result
            print(f"  {rows:>10,} rows  {mode:>7}: {wall:7.1f} s  {rss:7.0f} MiB"
                  + (f"  (worker {result['worker_rss_mib']:.0f} MiB, job "
                     f"{result['job_seconds']:.0f} s)" if mode.startswith("job") else ""),
                  flush=True)
    return results


def fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares line y = a + b x: (a, b)."""
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    spread = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
    return mean_y - slope * mean_x, slope


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,4,16", help="multiples of the seed's rows")
    parser.add_argument("--keep", type=Path, help="work in DIR and keep it")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    base = args.keep or Path(tempfile.mkdtemp(prefix="scale-benchmark-"))
    table: dict[int, dict[str, dict[str, float]]] = {}
    try:
        for size in sizes:
            rows = SEED_ROWS * size
            workdir = base / f"{size}x"
            workdir.mkdir(parents=True, exist_ok=True)
            setup(workdir, rows)
            table[rows] = run_size(workdir, rows)
            if args.keep is None:
                shutil.rmtree(workdir / "data", ignore_errors=True)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)

    rows_list = sorted(table)
    print(f"\n{'rows':>10} | " + " | ".join(f"{m:>17}" for m in MODES) + " | local/floor RSS")
    for rows in rows_list:
        cells = [f"{table[rows][m]['seconds']:6.1f} s {table[rows][m]['rss_mib']:5.0f} MiB"
                 for m in MODES]
        ratio = table[rows]["local"]["rss_mib"] / table[rows]["floor"]["rss_mib"]
        print(f"{rows:>10,} | " + " | ".join(cells) + f" | {ratio:.2f}x")
    workers = [f"{rows:,}: " + ", ".join(
        f"{m} {table[rows][m]['worker_rss_mib']:.0f} MiB" for m in MODES[2:]) for rows in rows_list]
    print("training job workers' peak RSS (one instance): " + "; ".join(workers))
    checks = {}
    if len(rows_list) >= 2:
        print("\nfitted over the sizes (peak RSS = fixed + bytes/row x rows; time likewise):")
        slopes = {}
        for mode in MODES:
            fixed, per_row = fit(rows_list, [table[r][mode]["rss_mib"] * 2**20 for r in rows_list])
            start, per_row_s = fit(rows_list, [table[r][mode]["seconds"] for r in rows_list])
            slopes[mode] = per_row
            print(f"  {mode:>7}: {per_row:7.1f} bytes/row (+{fixed / 2**20:5.0f} MiB), "
                  f"{per_row_s * 1e6:6.2f} s per million rows (+{start:5.1f} s)")
        checks[f"local plan grows by less memory per row than the floor "
               f"({slopes['local']:.0f} < {slopes['floor']:.0f} bytes/row)"] = (
            slopes["local"] < slopes["floor"])
    largest = rows_list[-1]
    ratio = table[largest]["local"]["rss_mib"] / table[largest]["floor"]["rss_mib"]
    checks[f"local plan peak RSS at {largest:,} rows: {ratio:.2f}x the floor "
           f"(target <= {MEMORY_TARGET}x)"] = ratio <= MEMORY_TARGET
    for line, ok in checks.items():
        print(f"{line}: {'ok' if ok else 'OVER'}")
    print(f"({os.cpu_count()} CPUs; one run of each)")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
