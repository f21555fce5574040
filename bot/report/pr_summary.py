"""The plan comment's headline, its summary of what the pull request does, its provenance
and its footer (Markdown, pure).

What merging does is told by kind (``bot.core.pr_effect``): a new challenger, a rollout
step (weights now → after), a replaced or removed challenger, a promotion, a rollback.
"""

from __future__ import annotations

from bot import __version__
from bot.core.changes import counted, variant_value
from bot.core.domain import Plan
from bot.core.pr_effect import Effect, Model, Serving, effect, judged_against_itself
from bot.core.provenance import DataUsed
from bot.report import markdown as md

METRIC_LABELS = {
    "accuracy": "Accuracy",
    "precision": "Precision",
    "recall": "Recall",
    "f1_score": "F1",
    "auc_roc": "ROC AUC",
    "pr_auc": "PR AUC (avg. precision)",
}
#: Where the verdicts, gates and detectable differences are explained.
DOCS = "docs/request-format.md"
DOCS_ANCHOR = "#how-the-plan-judges-a-difference"


def _name(model: Model | None) -> str:
    return md.code(model.experiment_id) if model is not None else "*(none)*"


def _shares(serving: Serving, role: str, live: dict[str, int] | None
            ) -> tuple[int | None, int | None]:
    """``role``'s share in ``serving`` (what the production config says) and the one the
    endpoint serves ``live`` (the same unless, say, the watcher braked the challenger)."""
    configured = serving.weight(role)
    return configured, (live or {}).get(role, configured)


def _now(plan: Plan, before: Serving, role: str) -> str:
    """``role``'s share now, with the live share when the endpoint serves another (a braked
    challenger: "10 % (0 % live)")."""
    configured, live = _shares(before, role, plan.live_weights)
    return f"{configured} %" + ("" if live == configured else f" ({live} % live)")


def merging_sentence(plan: Plan, e: Effect | None = None) -> str:
    """What merging does, in words (the shares now as the config says them, and the live
    ones where the endpoint serves others)."""
    e = e or effect(plan)
    before, after = e.before, e.after
    champion = _name(after.champion)
    if e.kind == "first":
        return f"Merging makes {md.code(plan.experiment_id)} production's first champion."
    if e.kind == "new-challenger":
        return (f"Merging starts {_name(after.challenger)} as a challenger at {after.share} % "
                f"(champion {champion} keeps {after.weight('champion')} %).")
    if e.kind == "rollout-step":
        back = (after.share or 0) < (before.share or 0)
        return (f"Merging {'moves the challenger back' if back else 'moves the challenger'} "
                f"{_name(after.challenger)} from {_now(plan, before, 'challenger')} to "
                f"{after.share} % (champion {champion} {_now(plan, before, 'champion')} → "
                f"{after.weight('champion')} %).")
    if e.kind == "replace-challenger" and plan.reverts:
        return (f"Merging rolls the challenger back: {_name(before.challenger)} "
                f"({_now(plan, before, 'challenger')}) → {_name(after.challenger)} at "
                f"{after.share} %; "
                f"{_name(before.challenger)} stops serving (champion {champion} keeps "
                f"{after.weight('champion')} %).")
    if e.kind == "replace-challenger":
        return (f"Merging replaces challenger {_name(before.challenger)} "
                f"({_now(plan, before, 'challenger')}) with {_name(after.challenger)} at "
                f"{after.share} %.")
    if e.kind == "remove-challenger":
        return (f"Merging rolls back challenger {_name(before.challenger)} "
                f"({_now(plan, before, 'challenger')}): it stops serving and champion "
                f"{champion} takes 100 %.")
    if e.kind == "promotion":
        was = ("challenger " if before.challenger is not None
               and before.challenger.artifact == plan.artifact else "")
        return (f"Merging promotes {was}{md.code(plan.experiment_id)} to champion at "
                f"{after.weight('champion')} %; champion {_name(before.champion)} is kept "
                "for rollback.")
    if e.kind == "rollback":
        leaving = before.champion
        stays = (f"; {_name(after.challenger)} stays as challenger at {after.share} %"
                 if after.challenger is not None else "")
        if leaving is not None and leaving.artifact not in {
                m.artifact for m in (after.champion, after.challenger) if m is not None}:
            stays += f"; {_name(leaving)} stops serving"
        return (f"Merging rolls production back: champion {_name(before.champion)} → "
                f"{champion}{stays}.")
    return "Merging leaves the models serving production as they are."


def headline(plan: Plan, risks: list[str]) -> str:
    """One sentence: the verdict, the risk if any, what merging does."""
    failed = [g.name for g in plan.gates if not g.passed]
    if failed:
        verdict = f"**{len(failed)} gate(s) fail: {', '.join(failed)}. Do not merge.**"
    elif risks:
        more = f" (and {len(risks) - 1} more ⚠️ in the gates)" if len(risks) > 1 else ""
        verdict = f"**All {len(plan.gates)} gates pass, with a risk: {risks[0]}{more}.**"
    else:
        verdict = f"**All {len(plan.gates)} gates pass.**"
    n = len(counted(plan.changes))
    return (f"{verdict} {revert_sentence(plan)}{merging_sentence(plan)} It changes **{n}** "
            "thing(s) in AWS, listed below.")


def revert_sentence(plan: Plan) -> str:
    """That the pull request is a revert, as its head commit's message says (with a space)."""
    if not plan.reverts:
        return ""
    return f"This pull request reverts commit {md.code(plan.reverts[:12])}. "


def _weight(serving: Serving, model: Model, live: dict[str, int] | None = None) -> str:
    """``model``'s role and share in ``serving``; with ``live`` (the endpoint's shares now),
    the live share where it is not the configured one (a braked challenger serves 0 %)."""
    for role, serves in (("champion", serving.champion), ("challenger", serving.challenger)):
        if serves is not None and serves.artifact == model.artifact:
            configured, now = _shares(serving, role, live)
            if now == configured:
                return f"{role} {configured} %"
            return f"{role} **{now} %** live ({configured} % by the production config)"
    return "—"


def serving_section(plan: Plan, e: Effect | None = None) -> str:
    """Who serves what share of traffic, now and after merge (empty when nothing serves)."""
    e = e or effect(plan)
    models: dict[str, Model] = {}
    for serving in (e.before, e.after):
        for model in (serving.champion, serving.challenger):
            if model is not None:
                models.setdefault(model.artifact, model)
    if not models:
        return ""
    rows = ["| model | now | after merge |", "| --- | --- | --- |"]
    for model in models.values():
        digest = model.artifact.rsplit("/", 2)[-2][:12]
        rows.append(f"| {md.code(model.experiment_id, cell=True)} {md.code(digest, cell=True)} | "
                    f"{_weight(e.before, model, plan.live_weights)} | "
                    f"{_weight(e.after, model)} |")
    return "\n".join(rows)


def recorded_section(plan: Plan, e: Effect | None = None) -> str:
    """For a replaced challenger, a rollback or a removed challenger: the two models' recorded
    metrics, one row each (each measured when it was reviewed: not paired, so no verdict).
    Empty otherwise."""
    e = e or effect(plan)
    pair: tuple[Model, Model, str, str]
    if e.kind == "replace-challenger" and e.before.challenger is not None:
        pair = (Model(plan.experiment_id, plan.artifact, plan.metrics), e.before.challenger,
                "challenger after merge", "challenger now, removed")
    elif e.kind == "rollback" and e.after.champion and e.before.champion:
        pair = (e.after.champion, e.before.champion, "champion after merge", "champion now")
    elif e.kind == "remove-challenger" and e.after.champion and e.before.challenger:
        pair = (e.after.champion, e.before.challenger, "champion (stays)",
                "challenger now, removed")
    else:
        return ""
    first, second, first_label, second_label = pair
    names = [n for n in METRIC_LABELS if n in first.metrics and n in second.metrics]
    if not names:
        return ""
    rows = ["| recorded at each model's review (unpaired: no verdict) | "
            + " | ".join(METRIC_LABELS[n] for n in names) + " |",
            "| --- |" + " ---: |" * len(names)]
    for label, model in ((first_label, first), (second_label, second)):
        rows.append(f"| {label} {_name(model)} | "
                    + " | ".join(f"{model.metrics[n]:.4f}" for n in names) + " |")
    rows.append("| difference | " + " | ".join(
        f"{first.metrics[n] - second.metrics[n]:+.4f}" for n in names) + " |")
    return "\n".join(rows)


def self_note(plan: Plan) -> str:
    """Why a candidate that is the champion's own model shows no comparison."""
    if not judged_against_itself(plan):
        return ""
    return (f"The candidate {md.code(plan.experiment_id)} is the model the champion serves "
            "now, so it is not compared with itself; who serves what changes, above.")


def provenance(plan: Plan, how: str) -> str:
    """What was judged: the data (location, version, rows, frauds), the model, the request
    content, when, and the bot that made the plan."""
    ev = plan.evaluation
    versions = plan.identity.data_versions if plan.identity is not None else {}
    if plan.data:
        data = " · ".join(_data(d, versions.get(d.role)) for d in plan.data)
    else:  # a plan stored before it named its data
        data = (f"tested on {ev.rows:,} rows ({ev.positives:,} frauds, "
                f"{percent(ev.positives, ev.rows, 2)})")
    digest = plan.model_sha256 or plan.model_key
    bot = plan.identity.bot_version if plan.identity is not None else __version__
    return (f"<sub>{data} · model sha256 `{digest[:12]}` ({how}) · "
            f"request {md.code(plan.request_path)} content `{plan.content_sha256[:12]}` · "
            f"evaluated {md.text(plan.evaluated_at)} · promotion-bot {md.text(bot, 40)}</sub>")


def _data(used: DataUsed, version: str | None) -> str:
    """``train `s3://…/train.parquet` @ `3f2a…` 227,846 rows (394 frauds, 0.17 %)``."""
    at = f" @ {md.code(version[:12])}" if version else ""
    counted = ""
    if used.rows is not None:
        counted = f" {used.rows:,} rows"
        if used.frauds is not None:
            counted += (f" ({used.frauds:,} frauds, "
                        f"{percent(used.frauds, used.rows, 2)})")
    return f"{used.role} {md.code(used.uri, 200)}{at}{counted}"


def percent(count: int, total: int, digits: int = 1) -> str:
    """``count`` of ``total`` as a percentage that never shows a real count as 0 or 100."""
    if total <= 0:
        return "—"
    value = 100 * count / total
    smallest = 10 ** -digits
    if 0 < value < smallest:
        return f"<{smallest:.{digits}f} %"
    if count < total and value > 100 - smallest:
        return f">{100 - smallest:.{digits}f} %"
    return f"{value:.{digits}f} %"


def run_url(env: dict[str, str]) -> str | None:
    """The workflow run's page, from the variables GitHub Actions sets
    (https://docs.github.com/en/actions/learn-github-actions/variables#default-environment-variables)."""
    server, repo, run = (env.get(k) for k in (
        "GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    if not (server and repo and run):
        return None
    return f"{server.rstrip('/')}/{repo}/actions/runs/{run}"


def docs_url(env: dict[str, str]) -> str | None:
    server, repo = env.get("GITHUB_SERVER_URL"), env.get("GITHUB_REPOSITORY")
    if not (server and repo):
        return None
    return f"{server.rstrip('/')}/{repo}/blob/HEAD/{DOCS}{DOCS_ANCHOR}"


def docs_link(env: dict[str, str]) -> str:
    url = docs_url(env)
    return f"[{DOCS}]({url})" if url else md.code(DOCS)


def footer(env: dict[str, str]) -> str:
    """What happens next, and the run that wrote this comment."""
    run = run_url(env)
    # The pictures open from the run's artifact (the plan workflow uploads comment.md, the
    # PNGs and plan.json; https://docs.github.com/en/actions/concepts/workflows-and-actions/workflow-artifacts),
    # not from presigned S3 links: a link signed with the plan role's session credentials
    # dies with the session, within hours, long before a review ends
    # (https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-presigned-url.html).
    log = (f" · [this plan's run and log]({run}) · the pictures and plan.json: "
           f"[the run's artifact]({run}#artifacts)") if run else ""
    return ("---\n**Next:** merging applies this plan and the apply job comments what it did "
            "· to roll back, revert the merge commit and merge the revert · a push to this "
            f"branch plans again{log}")


def variant_text(value: object, e: Effect) -> str:
    """An endpoint variant's value (``bot.core.changes``) as its model's name and weight."""
    if value is None:
        return "*(absent)*"
    found = variant_value(value)
    if found is None:
        return md.code(value, 118, cell=True)
    model = e.model_named(found.model)
    digest = found.model.rsplit("/", 2)[-2][:12]
    name = md.code(model.experiment_id, cell=True) + " " if model is not None else ""
    return (f"{name}{md.code(digest, cell=True)} **{found.weight} %** "
            f"({md.text(found.instances)})")
