"""A request's content hash follows its meaning: defaults spelled out or left away hash the
same, and a field added later with a default keeps every existing request's hash."""

from __future__ import annotations

import yaml
from conftest import request_yaml
from pydantic import Field, create_model

from bot.core.request import Challenger, Request, Rollout, RolloutStep, Training

ROLLOUT = "rollout:\n  challenger:\n    traffic_percent: 10\n"


def parsed(text: str, model: type[Request] = Request) -> Request:
    return model.model_validate(yaml.safe_load(text))


def test_spelling_a_default_out_keeps_the_hash() -> None:
    plain = parsed(request_yaml(rollout=ROLLOUT))
    spelled = parsed(request_yaml(rollout=ROLLOUT) + (
        "  pipeline: false\n"
        "description: ''\n"
        "gates:\n  primary_metric: pr_auc\n"
        "  max_drop: {recall: 0.05, auc_roc: 0.01, pr_auc: 0.02}\n"
        "training:\n  backend: local\n"))
    steps = "".join(f"      - {{percent: {p}, soak_hours: {h}}}\n" for p, h in
                    ((1, 24), (10, 24), (50, 48), (100, 0)))
    with_steps = parsed(request_yaml(rollout=ROLLOUT + "    steps:\n" + steps))

    assert spelled.content_sha256() == plain.content_sha256() == with_steps.content_sha256()


def test_a_value_other_than_the_default_changes_the_hash() -> None:
    plain = parsed(request_yaml())
    changed = [request_yaml() + "description: why\n",
               request_yaml() + "gates:\n  primary_metric: recall\n",
               request_yaml() + "training:\n  backend: sagemaker\n",
               request_yaml(rollout=ROLLOUT + "    comparison_records: 5000\n"),
               request_yaml(eta=0.2)]
    hashes = {parsed(text).content_sha256() for text in changed}
    assert len(hashes) == len(changed) and plain.content_sha256() not in hashes


def test_a_field_added_with_a_default_keeps_existing_hashes() -> None:
    """The request format grows (a top-level field, one in a nested model, one in the items of
    a list): requests that do not use the new fields keep their hash and their plans."""
    step = create_model("Step", __base__=RolloutStep, pause=(bool, False))
    challenger = create_model(
        "Later", __base__=Challenger, alarm=(str | None, None),
        steps=(list[step], Field(default_factory=lambda: [  # type: ignore[valid-type]
            step(percent=p, soak_hours=h) for p, h in ((1, 24), (10, 24), (50, 48), (100, 0))],
            min_length=1)))
    rollout = create_model("Rollout2", __base__=Rollout, challenger=(challenger | None, None))
    training = create_model("Training2", __base__=Training, spot=(bool, False))
    later = create_model("Request2", __base__=Request, owner=(str, "ml-team"),
                         rollout=(rollout, Field(default_factory=rollout)),
                         training=(training, Field(default_factory=training)))

    for text in (request_yaml(), request_yaml(rollout=ROLLOUT),
                 request_yaml(rollout=ROLLOUT + "    steps: [{percent: 10}, {percent: 100}]\n"),
                 request_yaml() + "training:\n  backend: sagemaker\n  instance_count: 2\n"):
        now, grown = parsed(text), parsed(text, later)
        assert type(grown) is later  # the new fields are there, at their defaults
        assert grown.content_sha256() == now.content_sha256(), text
    used = parsed(request_yaml() + "owner: fraud-team\n", later)
    assert used.content_sha256() != parsed(request_yaml()).content_sha256()
