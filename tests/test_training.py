"""Training, the SageMaker ``model.tar.gz``, loading it back and scoring."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pandas as pd
import pytest
import xgboost

from bot.adapters import data_files as data
from bot.core import training
from bot.errors import BotError

HYPERPARAMETERS: dict[str, str | int | float] = {
    "objective": "binary:logistic",
    "num_round": 30,
    "max_depth": 4,
    "eta": 0.3,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "max_delta_step": 1,  # bounded leaf steps: rare frauds otherwise swing leaves by logits
}


@pytest.fixture(scope="module")
def split() -> tuple[pd.DataFrame, pd.DataFrame]:
    return data.split(data.generate_sample(rows=30_000, seed=0), seed=0)


@pytest.fixture(scope="module")
def booster(split: tuple[pd.DataFrame, pd.DataFrame]) -> xgboost.Booster:
    return training.train(HYPERPARAMETERS, split[0], "Class")


def test_model_learns_the_fraud_signal(
    booster: xgboost.Booster, split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    from sklearn.metrics import roc_auc_score

    test = split[1]
    scores = training.score(booster, test)

    assert scores.shape == (len(test),)
    assert ((scores >= 0) & (scores <= 1)).all()
    assert roc_auc_score(test["Class"], scores) > 0.85


def test_features_are_the_datas_columns_without_the_target(
    booster: xgboost.Booster, split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    expected = [c for c in split[0].columns if c != "Class"]

    assert training.feature_columns(split[0], "Class") == expected
    assert booster.feature_names == expected
    assert booster.num_boosted_rounds() == 30


def test_training_is_deterministic(
    booster: xgboost.Booster, split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    again = training.train(HYPERPARAMETERS, split[0], "Class")

    assert training.package_model(again) == training.package_model(booster)


def test_ssm_string_values_train_the_same_model(
    booster: xgboost.Booster, split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    as_strings = {name: str(value) for name, value in HYPERPARAMETERS.items()}

    from_ssm = training.train(as_strings, split[0], "Class")

    assert training.package_model(from_ssm) == training.package_model(booster)


def test_model_tar_gz_holds_only_xgboost_model_and_round_trips(
    booster: xgboost.Booster, split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    artifact = training.package_model(booster)

    with tarfile.open(fileobj=io.BytesIO(artifact), mode="r:gz") as tar:
        assert tar.getnames() == ["xgboost-model"]
    loaded = training.load_model(artifact)
    test = split[1]
    np.testing.assert_array_equal(training.score(loaded, test), training.score(booster, test))
    assert loaded.feature_names == booster.feature_names
    assert training.package_model(loaded) == artifact


def test_model_file_is_json_with_a_base_score_xgboost_1_7_reads(
    booster: xgboost.Booster,
) -> None:
    with tarfile.open(fileobj=io.BytesIO(training.package_model(booster)), mode="r:gz") as tar:
        stream = tar.extractfile("xgboost-model")
        assert stream is not None
        model = json.loads(stream.read())

    # xgboost 3.0 (the SageMaker container that serves, 3.0-5) parses a plain number only and
    # silently reads xgboost 3.1's "[1.7E-3]" as 0.5, which would shift every prediction.
    base_score = model["learner"]["learner_model_param"]["base_score"]
    assert 0 < float(base_score) < 0.01  # the training set's fraud rate, a plain number


def test_scores_follow_the_models_feature_order_not_the_frames(
    booster: xgboost.Booster, split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    test = split[1]
    shuffled = test[list(reversed(test.columns))]

    np.testing.assert_array_equal(training.score(booster, shuffled),
                                  training.score(booster, test))


def test_scoring_data_without_the_models_features_is_refused(
    booster: xgboost.Booster, split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    with pytest.raises(BotError, match="lacks the model's feature columns: V3"):
        training.score(booster, split[1].drop(columns=["V3"]))


def test_logitraw_models_score_probabilities(split: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    raw = training.train({**HYPERPARAMETERS, "objective": "binary:logitraw", "num_round": 5},
                         split[0], "Class")

    scores = training.score(raw, split[1])

    assert ((scores > 0) & (scores < 1)).all()


def test_bad_artifacts_are_clear_errors() -> None:
    with pytest.raises(BotError, match=r"not a model\.tar\.gz"):
        training.load_model(b"not a tarball")

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("model.pkl")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    with pytest.raises(BotError, match="has no xgboost-model"):
        training.load_model(buffer.getvalue())


def test_a_missing_target_column_is_a_clear_error(
    split: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    with pytest.raises(BotError, match="no target column 'is_fraud'"):
        training.train(HYPERPARAMETERS, split[0], "is_fraud")


def test_text_columns_are_a_clear_error(split: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    frame = split[0].head(500).assign(merchant="corner shop")

    with pytest.raises(BotError, match="xgboost refused the hyperparameters or data"):
        training.train(HYPERPARAMETERS, frame, "Class")


def test_margins_rank_where_float32_probabilities_saturate(
    split: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    # Without max_delta_step, a few rounds on rare frauds swing leaves by tens of logits:
    # xgboost's own float32 probabilities then collapse onto a handful of values.
    wild = training.train({**HYPERPARAMETERS, "max_delta_step": 0, "num_round": 5,
                           "max_depth": 1, "eta": 1.0, "subsample": 1.0,
                           "colsample_bytree": 1.0}, split[0], "Class")
    test = split[1]

    scores = training.predict(wild, test)
    float32 = wild.inplace_predict(test[wild.feature_names])

    assert scores.ranking.dtype == scores.probability.dtype == np.float64
    assert np.unique(scores.ranking).size > np.unique(float32).size
    np.testing.assert_allclose(scores.probability, 1 / (1 + np.exp(-scores.ranking)))
    np.testing.assert_allclose(scores.probability, float32, atol=1e-6)


def test_the_requests_seed_changes_a_subsampled_model(
    booster: xgboost.Booster, split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    other = training.train({**HYPERPARAMETERS, "seed": 1}, split[0], "Class")

    assert training.package_model(other) != training.package_model(booster)


def test_hinge_models_decide_with_their_answers_and_rank_with_their_margins(
    split: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    hinge = training.train({**HYPERPARAMETERS, "objective": "binary:hinge"}, split[0], "Class")

    scores = training.predict(hinge, split[1])

    assert set(np.unique(scores.probability)) <= {0.0, 1.0}
    assert np.unique(scores.ranking).size > 2


def test_a_model_file_is_a_model_tar_gz_or_xgboosts_own_json_or_ubj(
    booster: xgboost.Booster, split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    expected = training.score(booster, split[1])
    files = {"model.tar.gz": training.package_model(booster),
             "model.json": bytes(booster.save_raw("json")),
             "model.ubj": bytes(booster.save_raw("ubj"))}

    for name, body in files.items():
        loaded = training.load_model_file(body, name)
        np.testing.assert_allclose(training.score(loaded, split[1]), expected, rtol=1e-6)
    with pytest.raises(BotError, match=r"notes\.txt: neither a model\.tar\.gz nor an XGBoost"):
        training.load_model_file(b"\xd0 not a model", "notes.txt")
