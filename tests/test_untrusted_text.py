"""Text a branch author controls is shown inert, refused when it cannot be, and request files
must be files (issue #9: comment injection, a data path breaking out of a code block, a
request file that is a link to a file outside the repository)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from conftest import GitRepo, a_plan, request_yaml

from bot import cli
from bot.adapters.request_files import load_request, parse_request_text
from bot.commands.plan import report_failure
from bot.core.domain import Approval, Change, Outcome, Plan
from bot.core.request import Request
from bot.errors import BotError, InvalidRequest, NotPlanned
from bot.flows.apply import apply
from bot.local.github import LocalGitHub
from bot.report import markdown as md
from bot.report.apply_outcome import comment, failure_comment
from bot.report.plan_comment import render_comment
from bot.settings import Target

PATH = "promotion-requests/fraud-detection.yaml"
FAKE_HEADING = "## ✅ All gates pass - safe to merge"
INJECTION = (f"{FAKE_HEADING} cc @acme/model-risk "
             "<img src=https://tracker.example/p.png> [click](https://evil.example) <!-- ")
ALLOWED_TAGS = re.compile(r"<(/?)(details|summary|sub)>")


def inert(markdown: str) -> None:
    """Nothing in ``markdown`` (outside its fenced code blocks) but the bot's own markup: no
    injected heading, HTML, comment or mention."""
    markdown = outside_code_blocks(markdown)
    headings = [line for line in markdown.splitlines() if line.lstrip().startswith("#")]
    assert all(re.match(r"#{2,3} (✅|❌|\w)", h) and "All gates pass" not in h
               for h in headings), headings
    assert not ALLOWED_TAGS.sub("", markdown).count("<"), "raw HTML in the comment"
    assert "<!--" not in markdown and "<img" not in markdown
    assert "@acme/model-risk" not in markdown and "](https://evil" not in markdown


def outside_code_blocks(markdown: str) -> str:
    """``markdown`` without its code blocks (a block ends at its own fence only) and code
    spans: what GitHub renders as Markdown and HTML."""
    kept, fence = [], None
    for line in markdown.splitlines():
        if fence is None and (opened := re.match(r"^(`{3,})", line)):
            fence = opened.group(1)
        elif fence is not None and line.strip() == fence:
            fence = None
        elif fence is None:
            kept.append(line)
    assert fence is None, "a code block is never closed"
    return re.sub(r"(`+).*?(?<!`)\1(?!`)", "", "\n".join(kept))  # and code spans


def injected_request() -> Request:
    document = yaml.safe_load(request_yaml(rollout=(
        "rollout:\n  challenger:\n    traffic_percent: 10\n")))
    document["rollout"]["challenger"]["override_reason"] = INJECTION
    document["description"] = f"Why:\n\n{INJECTION}\n```\n</details>"
    return parse_request_text(yaml.safe_dump(document), PATH)[0]  # valid: shown, escaped


def test_the_plan_comment_shows_description_and_override_inert() -> None:
    request = injected_request()
    plan = replace(a_plan(request), rollout=request.rollout, description=request.description)

    text = render_comment(plan, {"plan.json": "s3://fraud-detection-models/p/plan.json"})

    inert(text)
    assert "**Rollout override:** " in text and "**Description** (by the request" in text
    assert "cc @\u200dacme\\/model\\-risk" in text  # shown, not a mention
    assert "&lt;img src\\=https\\:\\/\\/tracker\\.example\\/p\\.png&gt;" in text
    # What the injection tried to hide is still there, after it.
    assert text.index("&lt;\\!\\-\\- ") < text.index("### Gates") < text.index(
        "What merging changes in AWS")


def test_markdown_helpers_cannot_be_closed_from_inside() -> None:
    assert md.code("a`b``c") == "```a`b``c```"
    assert md.code("`x`") == "`` `x` ``"
    assert md.code("a|b", cell=True) == "`a\\|b`"
    assert md.code("line\nbreak") == "`line break`"
    body = md.block("x\n```\n## pwned\n````")
    fence = body.splitlines()[0]
    assert fence == "`````" and body.splitlines().count(fence) == 2
    assert md.text("@team/x <b>\u202etxet") == "@\u200dteam\\/x &lt;b&gt; txet"
    assert md.text("a" * 400).endswith("…") and len(md.text("a" * 400)) == 300
    assert md.quote("one\ntwo <i>") == "> one\n> two &lt;i&gt;"


@pytest.fixture
def github() -> Iterator[LocalGitHub]:
    with LocalGitHub(repository="acme/fraud-models") as server:
        yield server


def test_the_failure_comment_keeps_the_error_in_its_code_block(github: LocalGitHub) -> None:
    from bot.adapters.github import GitHubHost

    pr = github.open_pull(head_sha="a" * 40, author="dana", title="t")
    host = GitHubHost(github.token, github.repository, github.url)
    message = f"data.train: bad\n```\n{FAKE_HEADING}\n<!--"
    report_failure(host, pr, "a" * 40, "fraud-detection<img src=x>", BotError(message))

    [posted] = github.comments(pr)
    body = posted["body"]
    lines = body.splitlines()
    opening = next(i for i, line in enumerate(lines) if line.startswith("```"))
    fence = lines[opening]
    closing = lines.index(fence, opening + 1)
    assert FAKE_HEADING in lines[opening + 1:closing]  # inside the block, as text
    marker, rest = body.split("\n", 1)
    assert marker == "<!-- promotion-bot:plan:fraud-detection_img_src_x_ -->"
    inert(rest)


def test_the_apply_comments_escape_what_a_committer_wrote() -> None:
    outcome = Outcome(
        target="fraud-detection", path=PATH, commit="c" * 40, content_sha256="d" * 64,
        changes=(Change("ssm", "/fraud-detection/hyperparameters/eta", "0.1|x", "`0.2`"),),
        drift=(), backup_key="/b/1", config_version="v1", config_archive=None,
        execution_arn=None, execution_status=None, endpoint=None, variants=(),
        endpoint_actions=(), noop=False,
        approval=Approval(("@acme/model-risk <img src=x> <dana@example.com>",),
                          "commit-author"))
    text = comment(outcome)
    inert(text)
    assert "| `0.1\\|x` | `` `0.2` `` |" in text
    stopped = failure_comment("fraud-detection", f"boom\n```\n{FAKE_HEADING}\n<!--", ["/b/1"])
    inert(stopped.replace(FAKE_HEADING, "inside a code block"))
    assert stopped.count("````") == 2


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("data.train", "data/train.parquet\n```\n## pwned", "must not contain control characters"),
    ("data.test", "s3://fraud-detection-data/t\u202e.parquet", "must not contain control"),
    ("data.target_column", "Class\r", "must not contain control characters"),
    ("rollout.challenger.override_reason", "first line\nsecond line", "control characters"),
    ("rollout.challenger.override_reason", "x" * 501, "at most 500 characters"),
    ("description", "ok\u0007", "must not contain control characters"),
    ("description", "x" * 2001, "at most 2000 characters"),
])
def test_validation_refuses_what_cannot_be_shown_plainly(field: str, value: str,
                                                         reason: str) -> None:
    document = yaml.safe_load(request_yaml(
        rollout="rollout:\n  challenger:\n    traffic_percent: 1\n"))
    parent = document
    *path, last = field.split(".")
    for part in path:
        parent = parent[part]
    parent[last] = value
    with pytest.raises(InvalidRequest) as caught:
        parse_request_text(yaml.safe_dump(document), PATH)
    [problem] = caught.value.problems
    assert problem.field == field and reason in problem.reason
    assert "\n" not in str(problem)


def test_a_multi_line_description_is_fine() -> None:
    text = request_yaml() + "description: |\n  Why:\n  \tbetter recall\n"
    assert parse_request_text(text, PATH)[0].description == "Why:\n\tbetter recall\n"


# -- request files that are links ------------------------------------------------------


def linked_request(tmp_path: Path) -> Path:
    secret = tmp_path / "outside" / "secret.yaml"
    secret.parent.mkdir()
    secret.write_text(request_yaml())
    link = tmp_path / "repo" / "promotion-requests" / "fraud-detection.yaml"
    link.parent.mkdir(parents=True)
    link.symlink_to(secret)
    return link


def test_a_request_file_that_is_a_link_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    link = linked_request(tmp_path)
    with pytest.raises(InvalidRequest, match=r"is a symbolic link .* not a file"):
        load_request(link)

    assert cli.main(["validate", str(link)]) == 1
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "is a symbolic link" in out
    assert cli.main(["plan", str(link), "--no-github", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "is a symbolic link" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_a_request_file_committed_as_a_link_is_refused_at_apply(
        aws: Target, git_repo: GitRepo, store_plan: Callable[..., Plan],
        no_github_context: None) -> None:
    store_plan(request_yaml())
    before = git_repo.head()
    (git_repo.path / "outside.yaml").write_text(request_yaml())
    (git_repo.path / PATH).symlink_to("../outside.yaml")
    git_repo.git("add", "outside.yaml", PATH)
    git_repo.git("commit", "-q", "-m", "Promote through a link")

    with pytest.raises(NotPlanned, match=r"fraud-detection\.yaml at [0-9a-f]{12} is a symbolic "
                                         r"link in git \(mode 120000\)"):
        apply(git_repo.path, before, "HEAD", None)
    from bot.adapters.aws import config_store, ssm

    assert ssm.read(aws) == {} and config_store.read(aws) is None


def test_a_target_name_must_be_what_aws_names_take(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from bot.settings import target

    for bad in ("Fraud", "fraud detection", "fraud--x", "<img>", "-x", "x" * 64, ""):
        with pytest.raises(BotError, match="cannot be a target"):
            target(bad)
    assert target("fraud-detection-2").name == "fraud-detection-2"
    path = tmp_path / "promotion-requests" / "Fraud <b>.yaml"
    path.parent.mkdir()
    path.write_text(request_yaml())
    assert cli.main(["plan", str(path), "--no-github", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot be a target" in err
