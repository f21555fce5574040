"""Benchmark: apply's wall time against the same boto3 calls made directly.

On the embedded default (moto's server on 127.0.0.1), it commits two request contents
alternately, plans each commit (not measured: apply deploys the plan of the merged head) and
applies it (each apply changes SSM, the config, starts the pipeline and moves the
challenger's traffic share). While apply runs, every boto3 call it makes is recorded
(service, operation, parameters) together with its waits for the endpoint; the floor replays
exactly those calls, and those waits, directly with boto3 (botocore's default client, where
apply's clients carry the bot's retry policy and timeouts, and its lock is checked before
every write). The ratio is what the bot adds: git, validation, planning checks, rendering,
bookkeeping. Target: <= 1.5x.

    .venv/bin/python benchmarks/apply.py [--rounds N]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TARGET = 1.5
REQUEST = "promotion-requests/fraud-detection.yaml"

Call = tuple[str, str, dict[str, Any]] | tuple[str, float]


@contextlib.contextmanager
def recording(calls: list[Call]) -> Iterator[None]:
    """Record every boto3 call made through the default session, and every endpoint wait."""
    import boto3
    from botocore import xform_name

    from bot.adapters.aws import endpoint

    def on_call(params: dict[str, Any], model: Any, **_: Any) -> None:
        calls.append((model.service_model.service_name, xform_name(model.name),
                      copy.deepcopy(params)))

    def on_sleep(seconds: float) -> None:
        calls.append(("sleep", seconds))
        real_sleep(seconds)

    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("provide-client-params.*.*", on_call)
    real_sleep = endpoint.time.sleep
    endpoint.time.sleep = on_sleep  # type: ignore[assignment]
    try:
        yield
    finally:
        endpoint.time.sleep = real_sleep  # type: ignore[assignment]
        boto3.DEFAULT_SESSION.events.unregister("provide-client-params.*.*", on_call)


def replay(calls: list[Call]) -> float:
    """Make the recorded calls directly with boto3; seconds taken."""
    import boto3
    from botocore.exceptions import ClientError

    clients: dict[str, Any] = {}
    started = time.perf_counter()
    for call in calls:
        if call[0] == "sleep":
            time.sleep(call[1])  # type: ignore[misc]
            continue
        service, operation, params = call  # type: ignore[misc]
        if service not in clients:
            clients[service] = boto3.client(service)
        with contextlib.suppress(ClientError):  # e.g. a start of an execution that exists
            getattr(clients[service], operation)(**params)
    return time.perf_counter() - started


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def quiet_cli(*argv: str) -> int:
    from bot import cli

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return cli.main(list(argv))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()

    from bot.local.aws_server import LocalAWS
    from bot.local.bootstrap import bootstrap

    with tempfile.TemporaryDirectory() as tmp, LocalAWS():
        bootstrap(rows=20_000, progress=lambda _: None)  # a test set with frauds
        repo = Path(tmp) / "repo"
        (repo / "promotion-requests").mkdir(parents=True)
        git(repo, "init", "-q", "-b", "main")
        git(repo, "config", "user.name", "Bench")
        git(repo, "config", "user.email", "bench@example.com")
        # 20,000 rows hold a handful of test frauds: too few for an interval, so the gates
        # would fail closed; the benchmark measures apply, not the verdict.
        shipped = (REPO / REQUEST).read_text().replace(
            "\ngates:\n", '\ngates:\n  accept_few_frauds: "benchmark on 20,000 rows"\n', 1)
        contents = [shipped, shipped.replace("max_depth: 7", "max_depth: 6").replace(
            "traffic_percent: 1", "override_reason: \"benchmark: alternate shares\"\n"
            "    traffic_percent: 10")]

        def planned(name: str) -> bool:
            """Plan the checked-out head (not measured): apply deploys its plan."""
            if quiet_cli("plan", str(repo / REQUEST), "--out", f"{tmp}/{name}") != 0:
                print(f"the plan of {name} did not pass", file=sys.stderr)
                return False
            return True

        (repo / REQUEST).write_text(contents[0])
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "content 0")
        if not planned("content-0"):
            return 2
        quiet_cli("apply", "--repo", str(repo), "--before", "", "--after", "HEAD")

        bot_times, direct_times = [], []
        for round_ in range(args.rounds):
            (repo / REQUEST).write_text(contents[(round_ + 1) % 2])
            git(repo, "commit", "-q", "-am", f"round {round_}")
            if not planned(f"round-{round_}"):
                return 2
            calls: list[Call] = []
            with recording(calls):
                started = time.perf_counter()
                code = quiet_cli("apply", "--repo", str(repo))
                bot_times.append(time.perf_counter() - started)
            if code != 0:
                print("apply failed", file=sys.stderr)
                return 2
            direct_times.append(replay(calls))
            print(f"round {round_ + 1}: apply {bot_times[-1]:.3f}s, the same "
                  f"{sum(1 for c in calls if c[0] != 'sleep')} boto3 calls directly "
                  f"{direct_times[-1]:.3f}s")

    bot, floor = statistics.median(bot_times), statistics.median(direct_times)
    ratio = bot / floor
    print(f"\napply (median of {args.rounds}): {bot:.3f}s")
    print(f"same boto3 calls directly:      {floor:.3f}s")
    print(f"ratio: {ratio:.2f}x (target <= {TARGET}x) "
          f"{'OK' if ratio <= TARGET else 'OVER TARGET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
