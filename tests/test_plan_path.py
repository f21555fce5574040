"""The plan's path through the adapters: each adapter module is entered at most twice.

A plan reads git, the request, the data, the stored plans and models and each piece of live
state once, in one place, and passes values on: an adapter that is entered again and again
(once every S3 helper was entered 14 times per plan) means the flows use it as a library of
small steps instead of asking it for what they need. The count follows every call from the
commands and flows into a function of ``bot.adapters`` (threads included); calls on a handle
an adapter returned (an open table's reads) are the flow using that one answer and are not
counted, nor are adapters calling each other.
"""

from __future__ import annotations

import collections
import inspect
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from bot import cli

PRODUCTION_ROWS = 5_000
PATH = "promotion-requests/fraud-detection.yaml"
SHIPPED = Path(__file__).resolve().parents[1] / PATH
MOST = 2


def entries(argv: list[str]) -> tuple[int, dict[str, collections.Counter[str]]]:
    """Run ``promotion-bot ARGV``; its exit code and, per adapter module, the adapter
    functions the commands and flows called, with how often (a call handed to a thread pool
    counts for whoever handed it over; a generator counts when it starts, not each time it
    resumes)."""
    found: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    submitted: dict[int, tuple[object, str | None]] = {}  # the function kept alive: its id
    started: dict[int, FrameType] = {}

    def pooled(frame: FrameType) -> bool:
        return "concurrent/futures" in frame.f_code.co_filename

    def caller(frame: FrameType | None) -> str | None:
        """The module of ours that made the call ``frame`` runs."""
        while frame is not None:
            module = frame.f_globals.get("__name__", "")
            if module.startswith("bot."):
                return str(module)
            if pooled(frame) and frame.f_code.co_name == "run":  # a pool's worker
                work = getattr(frame.f_locals.get("self"), "fn", None)
                return submitted.get(id(work), (None, None))[1]
            frame = frame.f_back
        return None

    def called(frame: FrameType, event: str, _: Any) -> None:
        if event != "call":
            return
        code = frame.f_code
        if pooled(frame) and code.co_name == "submit":
            work = frame.f_locals.get("fn")
            submitted[id(work)] = (work, caller(frame.f_back))
            return
        module = frame.f_globals.get("__name__", "")
        if (not module.startswith("bot.adapters.") or "." in code.co_qualname
                or code.co_name == "<module>"):
            return
        if code.co_flags & inspect.CO_GENERATOR:
            if id(frame) in started:
                return
            started[id(frame)] = frame
        by = caller(frame.f_back)
        if by is not None and not by.startswith("bot.adapters."):
            found[module][code.co_name] += 1

    threading.setprofile(called)
    sys.setprofile(called)
    try:
        code = cli.main(argv)
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    return code, found


@pytest.fixture
def repo(tmp_path: Path, git_repo: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    git_repo.commit({PATH: SHIPPED.read_text()}, "Promote the shipped request")
    monkeypatch.chdir(git_repo.path)
    return Path(git_repo.path)


def test_a_plan_enters_each_adapter_at_most_twice(
    production: Any, repo: Path, tmp_path: Path, no_github_context: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["plan", PATH, "--base", "main", "--no-github"]
    for run in ("first", "again"):  # a new model, then the stored evaluation reused
        code, found = entries([*argv, "--out", str(tmp_path / run)])
        assert code in (0, 1), capsys.readouterr().err
        over = {module: dict(calls) for module, calls in found.items()
                if sum(calls.values()) > MOST}
        assert not over, f"{run} plan: {over}"
        assert {"bot.adapters.git", "bot.adapters.request_files",
                "bot.adapters.aws.plan_store"} <= set(found)
