"""Judge a candidate against the champion on one test set: score both, evaluate, compare, gate.

The one code path behind ``promotion-bot plan`` (``bot.flows.plan``) and ``promotion-bot
compare`` (``bot.flows.compare``), so both reach the same verdicts on the same data.

The test table is read once, in record batches that both models score, so memory holds
labels and scores, not the table. Each model is scored on the columns it was trained with
(its booster knows them): a candidate with a new feature is compared paired with a champion
re-scored on its own columns. Only when the test data lacks a column the champion needs
does the comparison fall back to the champion's recorded metrics (unpaired), saying which
columns changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from bot.core import comparison as cmp
from bot.core import evaluation, training
from bot.core import gates as gate_checks
from bot.core.data_checks import check_features, check_table
from bot.core.domain import Champion, Evaluation, Judgement
from bot.core.request import Gates
from bot.core.resampling import Costs
from bot.core.training import Scores
from bot.errors import BotError, InvalidRequest

if TYPE_CHECKING:
    import xgboost

    from bot.adapters.data_files import ParquetTable

Progress = Callable[[str], None]


def judge(
    gates: Gates,
    test: ParquetTable,
    target_column: str,
    candidate: xgboost.Booster,
    champion: Champion,
    champion_booster: xgboost.Booster | None,
    progress: Progress = lambda _: None,
    feature_columns: list[str] | None = None,
) -> Judgement:
    """Evaluate ``candidate`` on the ``test`` table, compare it with ``champion``, check ``gates``.

    With ``champion_booster`` the champion is re-scored on the same rows (paired); without
    it, or when the test data lacks a column the champion reads, ``champion.metrics`` (its
    recorded values) are the baseline (unpaired, no verdicts). The table is read once, in
    batches, both models scoring each batch: memory holds the labels and the scores (33
    bytes a row), never the table.

    A model without feature names is never scored by position: ``feature_columns`` (the
    request's ``data.feature_columns``, ``compare --feature-columns``) names its columns in
    training order, and without it the model is refused.
    """
    data_columns = test.features(target_column)
    candidate_columns = model_columns(candidate, "candidate", data_columns, feature_columns)
    notes: list[str] = []
    columns = (None if champion_booster is None else
               model_columns(champion_booster, "champion", data_columns, feature_columns,
                             missing_ok=True))
    if champion_booster is not None and columns is not None:
        missing = [c for c in columns if c not in test.columns]
        note = _feature_note(candidate_columns, columns, missing)
        if note:
            notes.append(note)
        if missing and not champion.metrics:
            raise BotError(
                f"the test data lacks the champion's columns {', '.join(missing[:10])}, and no "
                "recorded metrics of the champion are known: nothing to compare with"
            )
        if missing:
            champion_booster = None
    models = [(candidate, candidate_columns)]
    if champion_booster is not None and columns is not None:
        progress(f"re-scoring the champion {champion.experiment_id} on the same test set ...")
        models.append((champion_booster, columns))
    labels, scores = score_table(test, target_column, models)
    amounts = None
    if AMOUNT in test.columns and target_column != AMOUNT:
        try:
            amounts = test.read([AMOUNT])[AMOUNT].to_numpy(dtype="float64",
                                                           na_value=float("nan"))
        except (TypeError, ValueError):
            amounts = None  # not numbers: no amount caught, said as "not available"
    judged = judge_scores(gates, labels, scores[0], champion,
                          scores[1] if len(scores) > 1 else None, amounts)
    return replace(judged, notes=(*notes, *judged.notes))


#: The column holding each transaction's amount: what fraud caught and missed is worth.
AMOUNT = "Amount"


def score_table(
    test: ParquetTable, target_column: str, models: list[tuple[xgboost.Booster, list[str]]],
) -> tuple[npt.NDArray[Any], list[Scores]]:
    """The test table's labels and each model's scores on its own ``columns``, in one pass.

    The labels are checked whole first (rows, 0/1, both classes), the features each batch as
    it is read, so bad data is refused with ``PATH: FIELD: REASON`` lines before any verdict.
    """
    labels = test.read([target_column])
    problems = check_table(labels, target_column, test.uri)
    if problems:
        raise InvalidRequest(problems)
    needed = list(dict.fromkeys(name for _, columns in models for name in columns))
    parts: list[list[Scores]] = [[] for _ in models]
    for frame in test.frames(needed, training.BATCH_ROWS):
        problems = check_features(frame, target_column, test.uri)
        if problems:
            raise InvalidRequest(problems)
        for part, (booster, columns) in zip(parts, models, strict=True):
            part.append(training.predict(booster, frame, columns))
    scores = [training.Scores(np.concatenate([p.probability for p in part]),
                              np.concatenate([p.ranking for p in part])) for part in parts]
    return labels[target_column].to_numpy(), scores


def judge_scores(
    gates: Gates,
    labels: npt.ArrayLike,
    candidate: Scores,
    champion: Champion,
    champion_scores: Scores | None,
    amounts: npt.ArrayLike | None = None,
) -> Judgement:
    """``judge`` once both models have scored the test rows (pure): evaluate, compare, gate.

    ``amounts`` (the test rows' ``Amount``) give the fraud amount caught and the cost."""
    threshold = gates.decision_threshold
    result = evaluation.evaluate(labels, candidate.probability, threshold, candidate.ranking)
    champion_eval: Evaluation | None = None
    if champion_scores is not None:
        champion_eval = evaluation.evaluate(labels, champion_scores.probability, threshold,
                                            champion_scores.ranking)
        costs = (Costs(gates.cost.per_alert, gates.cost.per_missed_fraud_dollar)
                 if gates.cost is not None else None)
        comparison = cmp.paired(labels, candidate.probability, champion_scores.probability,
                                threshold, ranking=(candidate.ranking, champion_scores.ranking),
                                amounts=amounts, costs=costs)
        champion = Champion(champion.experiment_id, champion.source, champion_eval.metrics,
                            champion.model_artifact)
    else:
        comparison = cmp.unpaired(result.metrics, champion.metrics)

    notes = []
    if gate_checks.accuracy_is_uninformative(result):
        notes.append(
            f"Accuracy {result.metrics['accuracy']:.4f} says nothing here: only "
            f"{result.positives / max(result.rows, 1):.3%} of test rows are fraud, so predicting "
            f"\"legit\" for everything scores {result.majority_accuracy:.4f}. "
            "Judge the model on recall, precision and PR AUC."
        )
    checked = gate_checks.check(gates, result, comparison)
    if gates.accept_few_frauds and any(g.passed and not g.evaluated and g.warning
                                       for g in checked):
        notes.append(f"Gates against the champion pass without a verdict on "
                     f"{result.positives} frauds because the request accepts it: "
                     f"{gates.accept_few_frauds}")
    return Judgement(
        evaluation=result, champion=champion, comparison=comparison,
        gates=checked, notes=tuple(notes),
        champion_evaluation=champion_eval,
    )


def model_columns(booster: xgboost.Booster, who: str, data_columns: list[str],
                  feature_columns: list[str] | None, missing_ok: bool = False) -> list[str]:
    """The columns ``booster`` reads, by name: its own feature names, else the
    ``feature_columns`` given; a one-line error rather than scoring by position.

    ``missing_ok``: columns the test data lacks are returned anyway (the caller falls back
    to an unpaired comparison); otherwise they are an error.
    """
    names = list(booster.feature_names or [])
    if not names:
        if feature_columns is None:
            raise BotError(
                f"the {who}'s model has no feature names, so its {booster.num_features()} "
                "inputs cannot be matched to the test data's columns by name, and scoring by "
                "position would silently misread a file whose columns are in another order: "
                "name them in training order with data.feature_columns in the request "
                "(compare: --feature-columns)")
        if booster.num_features() != len(feature_columns):
            raise BotError(f"the {who}'s model reads {booster.num_features()} features, but "
                           f"{len(feature_columns)} feature columns are named")
        names = list(feature_columns)
    missing = [c for c in names if c not in data_columns]
    if missing and not missing_ok:
        raise BotError(f"the test data lacks the {who}'s feature columns: "
                       f"{', '.join(missing[:10])}")
    return names


def _feature_note(candidate: list[str], champion: list[str], missing: list[str]) -> str:
    """What changed in the feature set, and how the comparison copes; empty if nothing."""
    added = [c for c in candidate if c not in champion]
    removed = [c for c in champion if c not in candidate]
    if not added and not removed:
        return ""
    parts = []
    if added:
        parts.append(f"adds {_columns(added)}")
    if removed:
        parts.append(f"drops {_columns(removed)}")
    text = (f"Feature set changed: the candidate reads {len(candidate)} columns, the champion "
            f"{len(champion)}; the candidate {' and '.join(parts)}. ")
    if missing:
        return text + (f"The test data lacks the champion's {_columns(missing)}, so the "
                       "champion cannot be re-scored: the comparison is unpaired, against its "
                       "recorded metrics, and gives no verdicts.")
    return text + ("The champion was re-scored on its own columns of the same test rows, so "
                   "the comparison stays paired.")


def _columns(names: list[str]) -> str:
    shown = ", ".join(f"`{n}`" for n in names[:10])
    more = f" and {len(names) - 10} more" if len(names) > 10 else ""
    return f"column{'s' if len(names) != 1 else ''} {shown}{more}"
