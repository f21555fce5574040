"""`promotion-bot compare`: two model files, one test file, the plan's verdicts and gates.

(That it reaches exactly the plan's verdicts on the same data is checked in test_plan.py.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import xgboost

from bot import cli
from bot.adapters import data_files as data
from bot.core import training

PARAMS: dict[str, str | int | float] = {
    "objective": "binary:logistic", "num_round": 30, "max_depth": 4, "eta": 0.3,
    "subsample": 0.8, "colsample_bytree": 0.8, "max_delta_step": 1, "nthread": 1}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Test data (also with a new column) and models: two equal, a wider one, a weak one."""
    root = tmp_path_factory.mktemp("compare")
    # 100,000 rows: a test split of 34 frauds, enough for intervals (comparison.MIN_FRAUDS)
    train, test = data.split(data.generate_sample(100_000, seed=6), seed=6)
    test.to_parquet(root / "test.parquet", index=False)
    # The same rows, columns in another order: a nameless model must not be read by position.
    test[list(reversed(test.columns))].to_parquet(root / "test-reordered.parquet", index=False)

    def hour(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(Hour=(frame["Time"] % 86_400) // 3_600)

    hour(test).to_parquet(root / "test-with-hour.parquet", index=False)
    models: dict[str, xgboost.Booster] = {
        "champion": training.train(PARAMS, train, "Class"),
        "equal": training.train({**PARAMS, "seed": 1}, train, "Class"),
        "wider": training.train(PARAMS, hour(train), "Class"),
    }
    (root / "champion.tar.gz").write_bytes(training.package_model(models["champion"]))
    models["equal"].save_model(root / "equal.json")
    for name in ("champion", "equal"):  # as a model trained on unnamed columns is stored
        nameless = models[name].copy()
        nameless.feature_names = None
        nameless.save_model(root / f"{name}-nameless.json")
    models["wider"].save_model(root / "wider.ubj")
    (root / "request.yaml").write_text(
        "experiment_id: exp-1\nalgorithm: xgboost\n"
        "hyperparameters: {objective: 'binary:logistic', num_round: 30, max_depth: 4, eta: 0.3,"
        " subsample: 0.8, colsample_bytree: 0.8}\n"
        "data: {train: data/train.parquet, test: data/test.parquet}\n"
        "gates: {minimum: {recall: 0.99}, max_drop: {}}\n")
    return root


def compare(files: Path, *argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(["compare", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_an_equal_candidate_passes_the_default_gates_with_json_verdicts(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = compare(files, str(files / "equal.json"), str(files / "champion.tar.gz"),
                           "--test", str(files / "test.parquet"), "--json", capsys=capsys)

    result = json.loads(out)
    assert code == 0 and result["passed"] is True and result["paired"] is True
    assert set(result["comparison"]) == {"accuracy", "precision", "recall", "f1_score",
                                         "auc_roc", "pr_auc"}
    for m in result["comparison"].values():
        assert {"difference", "ci_low", "ci_high", "verdict"} <= set(m)
        assert m["ci_low"] <= m["difference"] <= m["ci_high"]
        assert m["verdict"] in ("better", "worse", "inconclusive")
    kinds = [g["kind"] for g in result["gates"]]
    # the defaults
    assert kinds == ["guard", "minimum", "max_drop", "max_drop", "max_drop",
                     "max_alert_increase"]
    assert all(g["passed"] for g in result["gates"])
    assert set(result["operating"]) == {"alerts_per_100k", "alerts_per_fraud_caught",
                                        "recall_at_champion_alerts", "fraud_amount_caught"}


def test_a_nameless_model_is_refused_without_its_columns_never_read_by_position(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [str(files / "equal-nameless.json"), str(files / "champion-nameless.json"),
            "--test", str(files / "test-reordered.parquet"), "--json"]

    code, out, err = compare(files, *argv, capsys=capsys)

    assert code == 2 and out == ""
    [line] = [line for line in err.splitlines() if line.startswith("promotion-bot compare:")]
    assert "model has no feature names" in line and "data.feature_columns" in line
    assert "--feature-columns" in line and "Traceback" not in err


def test_a_nameless_model_is_scored_by_the_named_columns_whatever_their_order(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    named = json.loads(compare(files, str(files / "equal.json"),
                               str(files / "champion.tar.gz"), "--test",
                               str(files / "test.parquet"), "--json", capsys=capsys)[1])
    columns = ",".join(c for c in pd.read_parquet(files / "test.parquet").columns
                       if c != "Class")

    code, out, _ = compare(files, str(files / "equal-nameless.json"),
                           str(files / "champion-nameless.json"), "--test",
                           str(files / "test-reordered.parquet"), "--feature-columns", columns,
                           "--json", capsys=capsys)

    nameless = json.loads(out)
    assert code == 0
    assert nameless["candidate"]["metrics"] == named["candidate"]["metrics"]
    assert nameless["champion"]["metrics"] == named["champion"]["metrics"]


def test_a_failing_gate_exits_1_and_the_text_says_which(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = compare(files, str(files / "equal.json"), str(files / "champion.tar.gz"),
                           "--test", str(files / "test.parquet"),
                           "--request", str(files / "request.yaml"), capsys=capsys)

    assert code == 1
    assert "FAIL   recall >= 0.99" in out and "1 gate(s) fail" in out
    assert "PR AUC (avg. precision) (primary)" in out and "≈ inconclusive" in out
    assert "Alerts per 100,000 transactions" in out and "Alerts per fraud caught" in out


def test_an_added_feature_is_compared_paired_never_an_error(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = compare(files, str(files / "wider.ubj"), str(files / "champion.tar.gz"),
                           "--test", str(files / "test-with-hour.parquet"), "--json",
                           capsys=capsys)

    result = json.loads(out)
    assert code in (0, 1) and result["paired"] is True
    assert any("adds column `Hour`" in n and "stays paired" in n for n in result["notes"])


@pytest.mark.parametrize(("argv", "message"), [
    (["missing.json", "champion.tar.gz", "--test", "test.parquet"],
     "missing.json: no such model file"),
    (["test.parquet", "champion.tar.gz", "--test", "test.parquet"],
     "neither a model.tar.gz nor an XGBoost JSON or UBJSON model"),
    (["equal.json", "champion.tar.gz", "--test", "nowhere.parquet"],
     "nowhere.parquet: no such test file"),
    (["champion.tar.gz", "wider.ubj", "--test", "test.parquet"],
     "the test data lacks the champion's columns Hour"),
    (["equal.json", "champion.tar.gz", "--test", "test.parquet", "--request", "none.yaml"],
     "none.yaml: no such request file"),
])
def test_bad_input_is_one_line_and_exit_2(
    files: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    argv: list[str], message: str
) -> None:
    monkeypatch.chdir(files)

    code, out, err = compare(files, *argv, capsys=capsys)

    assert code == 2 and out == ""
    lines = [line for line in err.splitlines() if line.startswith("promotion-bot compare:")]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in err
