"""Apply enforces the staged-rollout rules itself, however plan was run (issue #9: a 1 % →
100 % jump without ``override_reason`` planned without ``--base`` was promoted)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from conftest import GitRepo, request_yaml

from bot import cli
from bot.adapters.aws import config_store
from bot.core.domain import Plan
from bot.errors import RolloutRefused
from bot.flows.apply import apply
from bot.settings import Target

PATH = "promotion-requests/fraud-detection.yaml"


def at(share: int, override: str = "", steps: str = "") -> str:
    """The challenger at ``share``; ``steps`` e.g. "1:24,100" for its own steps list."""
    reason = f"    override_reason: {override}\n" if override else ""
    listed = "".join(
        f"      - percent: {percent}\n" + (f"        soak_hours: {hours[0]}\n" if hours else "")
        for percent, *hours in (step.split(":") for step in steps.split(",") if step))
    return request_yaml("exp-xgboost-1", rollout=(
        f"rollout:\n  challenger:\n{reason}    traffic_percent: {share}\n"
        + (f"    steps:\n{listed}" if listed else "")))


pytestmark = pytest.mark.usefixtures("no_github_context", "endpoint_polls_fast")


@pytest.fixture
def serving_one_percent(aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
                        champion_serving: str) -> str:
    """A challenger at the first step (1 %), applied; returns the commit."""
    store_plan(at(1))
    start = git_repo.head()
    git_repo.commit({PATH: at(1)}, "Challenger at 1 %")
    apply(git_repo.path, start, "HEAD", None)
    config = config_store.read(aws)
    assert config is not None and config.challenger_traffic_percent == 1
    return git_repo.head()


def test_a_jump_from_1_to_100_percent_is_refused_at_apply(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
        serving_one_percent: str, capsys: pytest.CaptureFixture[str]) -> None:
    store_plan(at(100))  # planned without --base: the plan passed
    git_repo.commit({PATH: at(100)}, "Promote now")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=20)  # soaked long enough

    with pytest.raises(RolloutRefused) as caught:
        apply(git_repo.path, serving_one_percent, "HEAD", None, now=later)
    assert caught.value.message == (
        f"{PATH}:15: rollout.challenger.traffic_percent: skips the 10% and 50% steps: from 1% "
        "the next step is 10% (got 100%); set override_reason to do it anyway (apply checks the "
        "rollout rules against what production serves); nothing was applied")
    capsys.readouterr()
    assert cli.main(["apply", "--repo", str(git_repo.path), "--before",
                     serving_one_percent]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "skips the 10% and 50% steps" in err and "must soak 24h" in err
    config = config_store.read(aws)
    assert config is not None and config.challenger_traffic_percent == 1


def test_the_same_jump_with_an_override_reason_is_applied(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
        serving_one_percent: str) -> None:
    text = at(100, "incident 42, the champion is broken")
    store_plan(text)
    git_repo.commit({PATH: text}, "Promote now, on purpose")
    [outcome] = apply(git_repo.path, serving_one_percent, "HEAD", None)
    assert [(v.name, v.weight) for v in outcome.variants] == [("champion", 100)]


def test_the_next_step_after_its_soak_is_applied_and_too_early_is_refused(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
        serving_one_percent: str) -> None:
    store_plan(at(10))
    git_repo.commit({PATH: at(10)}, "Challenger at 10 %")
    with pytest.raises(RolloutRefused, match=r"the 1% step must soak 24h before the next step; "
                                             r"it has soaked 0min"):
        apply(git_repo.path, serving_one_percent, "HEAD", None)
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(hours=25)
    [outcome] = apply(git_repo.path, serving_one_percent, "HEAD", None, now=tomorrow)
    assert [(v.name, v.weight) for v in outcome.variants] == [("champion", 90),
                                                             ("challenger", 10)]


def test_a_new_challenger_starts_at_the_first_step(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
        champion_serving: str) -> None:
    store_plan(at(50))
    start = git_repo.head()
    git_repo.commit({PATH: at(50)}, "Straight to 50 %")
    with pytest.raises(RolloutRefused, match=r"a new challenger starts at the first step, 1% "
                                             r"\(got 50%\)"):
        apply(git_repo.path, start, "HEAD", None)


def test_a_step_whose_run_was_cancelled_counts_from_what_production_serves(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
        serving_one_percent: str) -> None:
    """1 % applied; the 10 % change's run never ran; 50 % is pushed: production would jump
    from 1 % to 50 %, which the rules forbid even though git's previous version says 10 %."""
    for share in (10, 50):
        store_plan(at(share))
    git_repo.commit({PATH: at(10)}, "10 % (its apply run was cancelled)")
    ten = git_repo.head()
    git_repo.commit({PATH: at(50)}, "50 %")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=20)
    with pytest.raises(RolloutRefused, match=r"from 1% the next step is 10% \(got 50%\)"):
        apply(git_repo.path, ten, "HEAD", None, now=later)


def test_deleting_the_steps_in_between_does_not_skip_them(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
        serving_one_percent: str, capsys: pytest.CaptureFixture[str]) -> None:
    """After the 1 % soak a pull request edits its own steps to [1, 100] and asks for 100 %:
    the steps in force are those production was applied from, so 10 % and 50 % (and their
    72 h of soak) are still ahead; plan and apply both say so, and nothing changes."""
    text = at(100, steps="1:24,100")
    store_plan(text)  # planned without --base: the plan passed
    git_repo.commit({PATH: text}, "Steps [1, 100], promote now")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=20)
    problem = (
        f"{PATH}:15: rollout.challenger.traffic_percent: skips the 10% and 50% steps: from 1% "
        "the next step is 10% (got 100%, with the steps in force [1% 24h, 10% 24h, 50% 48h, "
        "100%] and this change's [1% 24h, 100%]); set override_reason to do it anyway")

    with pytest.raises(RolloutRefused) as caught:
        apply(git_repo.path, serving_one_percent, "HEAD", None, now=later)
    assert caught.value.message == (
        f"{problem} (apply checks the rollout rules against what production serves); "
        "nothing was applied")
    capsys.readouterr()
    assert cli.main(["apply", "--repo", str(git_repo.path), "--before",
                     serving_one_percent]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "skips the 10% and 50% steps: from 1%" in err
    assert err.rstrip().endswith("nothing was applied")
    config = config_store.read(aws)
    assert config is not None and config.challenger_traffic_percent == 1

    # The plan of that pull request, against its base, refuses it before training.
    assert cli.main(["plan", str(git_repo.path / PATH), "--base", serving_one_percent,
                     "--no-github", "--out", str(git_repo.path / "out")]) == 2
    skipped, soak = capsys.readouterr().err.splitlines()  # planned now: not soaked yet either
    assert skipped == problem and "the 1% step must soak 24h before the next step" in soak


def test_a_change_that_only_deletes_steps_is_refused_so_the_next_cannot_skip(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
        serving_one_percent: str) -> None:
    text = at(1, steps="1:24,100")
    store_plan(text)
    git_repo.commit({PATH: text}, "Steps [1, 100]")
    with pytest.raises(RolloutRefused, match=r"fraud-detection.yaml:\d+: rollout.challenger.steps: "
                                             r"leaves out the 10% and 50% steps still ahead"):
        apply(git_repo.path, serving_one_percent, "HEAD", None)


def test_deleting_steps_with_an_override_reason_and_going_down_are_applied(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
        serving_one_percent: str) -> None:
    text = at(100, "incident 42, the champion is broken", steps="1:24,100")
    store_plan(text)
    git_repo.commit({PATH: text}, "Promote now, on purpose")
    promoted = git_repo.head()
    [outcome] = apply(git_repo.path, serving_one_percent, "HEAD", None)
    assert [(v.name, v.weight) for v in outcome.variants] == [("champion", 100)]

    down = at(1, steps="1,100")  # back down, with a shorter list: never waits
    store_plan(down)
    git_repo.commit({PATH: down}, "Back to 1 %")
    [outcome] = apply(git_repo.path, promoted, "HEAD", None)
    config = config_store.read(aws)
    assert config is not None and config.challenger_traffic_percent == 1
