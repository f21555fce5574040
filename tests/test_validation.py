"""A request file is valid, or every problem in it is named by file, line, field and reason."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.adapters.request_files import load_request, parse_request_text
from bot.cli import main
from bot.errors import BotError, InvalidRequest, Problem
from bot.settings import target

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "promotion-requests" / "fraud-detection.yaml"
BAD = sorted((ROOT / "tests" / "bad_requests").glob("*.yaml"))
EXPECT = re.compile(r"^# expect: (\d+): (\S+): (.+)$")

VALID: dict[str, Any] = {
    "experiment_id": "exp-1",
    "algorithm": "xgboost",
    "hyperparameters": {"objective": "binary:logistic", "num_round": 150, "max_depth": 7,
                        "eta": 0.15, "subsample": 0.8, "colsample_bytree": 0.8},
    "data": {"train": "s3://fraud-detection-data/processed/train.parquet",
             "test": "s3://fraud-detection-data/processed/test.parquet"},
}


def problems_in(request: dict[str, Any]) -> list[str]:
    """Problems of a request written as YAML (block style, one key per line)."""
    try:
        parse_request_text(yaml.safe_dump(request, sort_keys=False), "r.yaml")
    except InvalidRequest as error:
        return [f"{p.field}: {p.reason}" for p in error.problems]
    return []


def with_hyperparameter(name: str, value: object) -> dict[str, Any]:
    return {**VALID, "hyperparameters": {**VALID["hyperparameters"], name: value}}


def test_the_shipped_request_is_valid_and_has_the_seed_values() -> None:
    request, lines = load_request(SHIPPED)
    assert SHIPPED.read_text().splitlines()[0] == (
        "# yaml-language-server: $schema=../schemas/promotion-request.schema.json"
    )
    assert request.experiment_id == "exp-xgboost-optimized-20240115"
    assert request.algorithm == "xgboost"
    assert request.hyperparameters.as_dict() == {
        "objective": "binary:logistic", "num_round": 150, "max_depth": 7, "eta": 0.15,
        "subsample": 0.8, "colsample_bytree": 0.8,
    }
    assert request.data.train == "s3://fraud-detection-data/processed/train.parquet"
    assert request.data.test == "s3://fraud-detection-data/processed/test.parquet"
    assert request.data.target_column == "Class"
    assert request.gates.minimum["accuracy"] == 0.90
    assert "pr_auc" in request.gates.max_drop
    assert request.rollout.pipeline is True
    assert request.rollout.challenger is not None
    assert request.rollout.challenger.traffic_percent == 1
    text = SHIPPED.read_text().splitlines()
    assert text[lines["hyperparameters.max_depth"] - 1].strip().startswith("max_depth: 7")
    assert text[lines["rollout.challenger.traffic_percent"] - 1].strip() == "traffic_percent: 1"


def expectations(path: Path) -> list[tuple[int, str, str]]:
    found = [EXPECT.match(line) for line in path.read_text().splitlines()]
    return [(int(m[1]), m[2], m[3]) for m in found if m]


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_request_is_refused_with_the_expected_lines(path: Path) -> None:
    expected = expectations(path)
    assert expected, f"{path.name} has no '# expect: LINE: FIELD: REASON' header"
    with pytest.raises(InvalidRequest) as raised:
        load_request(path, path.name)
    got = raised.value.problems
    assert [(p.line, p.field or "(document)") for p in got] == [(ln, f) for ln, f, _ in expected]
    for problem, (_, _, reason) in zip(got, expected, strict=True):
        assert reason in problem.reason
        assert problem.path == path.name


def test_several_errors_are_all_reported_at_once() -> None:
    with pytest.raises(InvalidRequest) as raised:
        load_request(ROOT / "tests" / "bad_requests" / "several-errors.yaml", "several.yaml")
    problems = raised.value.problems
    assert {p.field for p in problems} >= {
        "algorithm", "hyperparameters.max_depth", "hyperparameters.eta",
        "hyperparameters.subsample", "hyperparameters.colsample", "data.test",
        "hyperparameters.colsample_bytree",
    }
    assert [p.line for p in problems] == sorted(p.line or 0 for p in problems)
    # The exception's message is what the CLI prints: one line per problem.
    assert str(raised.value).splitlines() == [str(p) for p in problems]


@pytest.mark.parametrize("name, value, reason", [
    ("max_depth", 25, "must be <= 20 (got 25)"),
    ("max_depth", 0, "must be >= 1 (got 0)"),
    ("max_depth", 7.5, "must be a whole number (got 7.5)"),
    ("max_depth", "7", "must be a whole number (got '7'; write the number without quotes)"),
    ("num_round", 0, "must be >= 1 (got 0)"),
    ("eta", 0, "must be > 0 (got 0)"),
    ("eta", 1.01, "must be <= 1 (got 1.01)"),
    ("eta", "fast", "must be a number (got 'fast')"),
    ("subsample", 0.0, "must be > 0 (got 0)"),
    ("subsample", 2, "must be <= 1 (got 2)"),
    ("colsample_bytree", -0.5, "must be > 0 (got -0.5)"),
    ("colsample_bytree", None, "must be a number (got nothing)"),
    ("objective", "multi:softmax", "must be one of 'binary:logistic', 'binary:logitraw' or "
                                   "'binary:hinge' (got 'multi:softmax')"),
    ("max_delta_step", -1, "must be >= 0 (got -1)"),
    ("seed", 1.5, "must be a whole number (got 1.5)"),
    ("seed", -1, "must be >= 0 (got -1)"),
    ("colsample_bynode", 0, "must be > 0 (got 0)"),
    ("max_bin", 1, "must be >= 2 (got 1)"),
    ("grow_policy", "greedy", "must be one of 'depthwise' or 'lossguide' (got 'greedy')"),
])
def test_hyperparameters_are_checked_by_range_in_plain_words(
    name: str, value: object, reason: str
) -> None:
    assert problems_in(with_hyperparameter(name, value)) == [f"hyperparameters.{name}: {reason}"]


@pytest.mark.parametrize("value", [1, 20])
def test_max_depth_bounds_are_inclusive(value: int) -> None:
    assert problems_in(with_hyperparameter("max_depth", value)) == []


def test_the_seed_and_the_leaf_step_reach_xgboost_by_their_names() -> None:
    body = with_hyperparameter("seed", 7)
    body["hyperparameters"].update(max_delta_step=1, grow_policy="lossguide", max_leaves=31)
    body["gates"] = {"non_inferior": {"recall": 0}}

    request, _ = parse_request_text(yaml.safe_dump(body, sort_keys=False), "r.yaml")

    wanted = {"seed": 7, "max_delta_step": 1.0, "grow_policy": "lossguide", "max_leaves": 31}
    assert {k: request.hyperparameters.as_dict()[k] for k in wanted} == wanted
    assert request.gates.non_inferior == {"recall": 0.0}


def test_whole_numbers_are_fine_where_fractions_are_expected() -> None:
    request, _ = parse_request_text(
        yaml.safe_dump(with_hyperparameter("eta", 1), sort_keys=False), "r.yaml"
    )
    assert request.hyperparameters.eta == 1.0


def test_unknown_hyperparameter_lists_the_allowed_names() -> None:
    [problem] = problems_in(with_hyperparameter("learning_rate", 0.1))
    assert problem.startswith("hyperparameters.learning_rate: unknown field; did you mean "
                              "'eta'? (allowed: objective, ")
    assert problem.endswith("lambda, alpha, max_delta_step, seed, colsample_bylevel, "
                            "colsample_bynode, max_bin, grow_policy, max_leaves)")


def test_xgboost_names_are_used_not_python_ones() -> None:
    assert problems_in(with_hyperparameter("lambda", 1.0)) == []
    [problem] = problems_in(with_hyperparameter("reg_lambda", 1.0))
    assert problem.startswith("hyperparameters.reg_lambda: unknown field; did you mean 'lambda'?")


# Did you mean: a typo of a field or of a value is answered with the closest valid one.

@pytest.mark.parametrize("request_, field, reason", [
    ({"hyperparamters": VALID["hyperparameters"]}, "hyperparamters",
     "unknown field; did you mean 'hyperparameters'? (allowed: experiment_id, "),
    ({"data": {**VALID["data"], "target_colum": "Class"}}, "data.target_colum",
     "unknown field; did you mean 'target_column'? (allowed: train, test, target_column, "
     "feature_columns)"),
    ({"gates": {"max_drop": {"prauc": 0.02}}}, "gates.max_drop.prauc",
     "(got 'prauc'; did you mean 'pr_auc'?)"),
    ({"gates": {"minimum": {"AUC_ROC": 0.9}}}, "gates.minimum.AUC_ROC",
     "(got 'AUC_ROC'; did you mean 'auc_roc'?)"),
    ({"gates": {"better_than_champion": ["recal"]}}, "gates.better_than_champion.0",
     "(got 'recal'; did you mean 'recall'?)"),
    ({"gates": {"primary_metric": "f1"}}, "gates.primary_metric",
     "(got 'f1'; did you mean 'f1_score'?)"),
    ({"training": {"backend": "sagemakr"}}, "training.backend",
     "must be one of 'local' or 'sagemaker' (got 'sagemakr'; did you mean 'sagemaker'?)"),
    ({"hyperparameters": {**VALID["hyperparameters"], "objective": "binary:logistc"}},
     "hyperparameters.objective", "(got 'binary:logistc'; did you mean 'binary:logistic'?)"),
    ({"hyperparameters": {**VALID["hyperparameters"], "n_estimators": 100}},
     "hyperparameters.n_estimators", "unknown field; did you mean 'num_round'?"),
])
def test_a_typo_gets_the_closest_valid_name(
    request_: dict[str, Any], field: str, reason: str
) -> None:
    request = {k: v for k, v in {**VALID, **request_}.items()
               if not (k == "hyperparameters" and "hyperparamters" in request_)}
    found = [p for p in problems_in(request) if p.startswith(f"{field}: ")]
    assert len(found) == 1 and reason in found[0], problems_in(request)


@pytest.mark.parametrize("request_, field", [
    ({"gates": {"max_drop": {"latency": 0.02}}}, "gates.max_drop.latency"),
    ({"colour": "blue"}, "colour"),
    ({"algorithm": "xgb"}, "algorithm"),  # one allowed value: it is named already
])
def test_nothing_close_suggests_nothing(request_: dict[str, Any], field: str) -> None:
    [problem] = problems_in({**VALID, **request_})
    assert problem.startswith(f"{field}: ") and "did you mean" not in problem


@pytest.mark.parametrize("uri", [
    "s3://bucket/key.parquet", "data/train.parquet", "./data/train.parquet", "train.parquet",
])
def test_data_may_live_in_s3_or_in_the_repository(uri: str) -> None:
    assert problems_in({**VALID, "data": {"train": uri, "test": uri}}) == []


@pytest.mark.parametrize("uri, reason", [
    ("http://example.com/t.parquet", "must be an s3:// URI or a path inside the repository"),
    ("https://example.com/t.parquet", "must be an s3:// URI or a path inside the repository"),
    ("file:///etc/passwd", "must be an s3:// URI or a path inside the repository"),
    ("file:t.parquet", "must be an s3:// URI or a path inside the repository"),
    ("gs://bucket/t.parquet", "must be an s3:// URI or a path inside the repository"),
    ("/data/t.parquet", "must be a path relative to the repository root, not absolute"),
    ("~/t.parquet", "must be a path relative to the repository root, not absolute"),
    ("C:\\data\\t.parquet", "must be a path relative to the repository root, not absolute"),
    ("../t.parquet", "must stay inside the repository ('..' is not allowed)"),
    ("data/../../t.parquet", "must stay inside the repository ('..' is not allowed)"),
    ("s3://bucket", "an s3:// URI needs a bucket and a key"),
    ("", "must not be empty"),
])
def test_data_outside_the_repository_is_refused(uri: str, reason: str) -> None:
    [problem] = problems_in({**VALID, "data": {**VALID["data"], "test": uri}})
    assert problem.startswith(f"data.test: {reason}")


def test_parse_request_text_reports_like_load_request(tmp_path: Path) -> None:
    bad = ROOT / "tests" / "bad_requests" / "several-errors.yaml"
    with pytest.raises(InvalidRequest) as from_file:
        load_request(bad, "x.yaml")
    with pytest.raises(InvalidRequest) as from_text:
        parse_request_text(bad.read_text(), "x.yaml")
    assert from_text.value.problems == from_file.value.problems
    assert parse_request_text(SHIPPED.read_text(), "x.yaml") == load_request(SHIPPED)


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_bytes(b"")
    with pytest.raises(InvalidRequest) as raised:
        load_request(tmp_path / "r.yaml", "r.yaml")
    assert raised.value.problems == [Problem("r.yaml", 1, "", "the file is empty")]


def test_an_empty_document_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="the document is empty"):
        parse_request_text("---\n...\n", "r.yaml")


# The command line.

def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_validate_prints_one_line_per_problem_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "ok.yaml", SHIPPED.read_text())
    write(tmp_path / "bad.yaml", SHIPPED.read_text().replace("max_depth: 7 ", "max_depth: 25")
          .replace("eta: 0.15", "eta: 0"))
    assert main(["validate", "ok.yaml", "bad.yaml"]) == 1
    out, err = capsys.readouterr()
    lines = SHIPPED.read_text().splitlines()
    depth = next(i for i, line in enumerate(lines, 1) if "max_depth:" in line)
    eta = next(i for i, line in enumerate(lines, 1) if "eta:" in line)
    assert out.splitlines() == [
        f"bad.yaml:{depth}: hyperparameters.max_depth: must be <= 20 (got 25)",
        f"bad.yaml:{eta}: hyperparameters.eta: must be > 0 (got 0)",
    ]
    assert err == "1 of 2 files invalid\n"


def test_validate_is_quiet_about_valid_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "a.yaml", SHIPPED.read_text())
    write(tmp_path / "b.yml", SHIPPED.read_text())
    assert main(["validate", "a.yaml", "b.yml"]) == 0
    assert capsys.readouterr().out == "2 files ok\n"


def test_validate_defaults_to_every_request_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "promotion-requests" / "fraud-detection.yaml", SHIPPED.read_text())
    write(tmp_path / "promotion-requests" / "team" / "other.yml", "experiment_id: x\n")
    write(tmp_path / "promotion-requests" / "README.md", "not a request")
    assert main(["validate"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out and all(line.startswith("promotion-requests/team/other.yml:1: ") for line in out)

    (tmp_path / "promotion-requests" / "team" / "other.yml").unlink()
    assert main(["validate"]) == 0
    assert capsys.readouterr().out == "1 file ok\n"


def test_validate_checks_the_request_files_of_a_named_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "requests" / "a.yaml", SHIPPED.read_text())
    write(tmp_path / "requests" / "b.yaml", "- not a mapping\n")
    assert main(["validate", "requests"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "requests/b.yaml:1: (document): must be a mapping of fields such as "
        "'experiment_id: ...' (got a list)"
    ]


def test_validate_outside_a_repository_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["validate"]) == 2
    assert "no promotion-requests/ directory here" in capsys.readouterr().err


def test_validate_names_a_missing_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "nope.yaml"]) == 1
    assert capsys.readouterr().out == (
        "nope.yaml: (document): cannot read the file: No such file or directory\n"
    )


def test_validate_command_reports_the_corpus_without_heavy_imports_or_tracebacks() -> None:
    """The hook must start fast: no AWS or training libraries behind ``validate``."""
    code = (
        "import sys\n"
        "from bot.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        "heavy = ('boto3', 'botocore', 'xgboost', 'pandas', 'PIL', 'sklearn', 'github')\n"
        "print('HEAVY', sorted(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    paths = [str(p.relative_to(ROOT)) for p in [SHIPPED, *BAD]]
    done = subprocess.run([sys.executable, "-c", code, "validate", *paths], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "HEAVY []" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    reported = {line.split(":", 1)[0] for line in done.stdout.splitlines()}
    assert reported == {str(p.relative_to(ROOT)) for p in BAD}
    expected_lines = sum(len(expectations(p)) for p in BAD)
    assert len(done.stdout.splitlines()) == expected_lines
    assert all(re.match(r"^[^:]+:\d+: \S+: .+$", line) for line in done.stdout.splitlines())


# The file's name is the target's: validate refuses every name plan and apply refuse.

TOO_LONG_FOR_THE_ENDPOINT = "a" * 53  # fraud-detection's endpoint is <target>-production


@pytest.mark.parametrize("name, reason", [
    ("Fraud_Detection", "must be lower-case letters and digits in words joined by single '-'"),
    ("fraud--detection", "in words joined by single '-'"),
    ("fraud-", "in words joined by single '-'"),
    ("a" * 64, "at most 63 characters, as AWS names need (got 64 characters)"),
    (TOO_LONG_FOR_THE_ENDPOINT, f"its SageMaker endpoint name '{'a' * 53}-production' would be "
                                "64 characters, and AWS allows at most 63; name the file with "
                                "at most 52 characters"),
])
def test_validate_refuses_a_file_name_that_cannot_be_a_target(
    name: str, reason: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / f"{name}.yaml", SHIPPED.read_text())
    assert main(["validate", f"{name}.yaml"]) == 1
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith(f"{name}.yaml:1: (file name): {name!r} cannot be a target: ")
    assert reason in line
    # The one rule: plan and apply resolve a target through the same words.
    with pytest.raises(BotError) as raised:
        target(name)
    assert raised.value.message == line.split(": (file name): ", 1)[1]


def test_the_longest_name_every_aws_name_allows_is_a_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / f"{'a' * 52}.yaml", SHIPPED.read_text())
    write(tmp_path / "x.yml", SHIPPED.read_text())
    assert main(["validate", f"{'a' * 52}.yaml", "x.yml"]) == 0
    assert target("a" * 52).endpoint_name == f"{'a' * 52}-production"


def test_a_bad_name_and_bad_content_are_reported_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "Bad.yaml", SHIPPED.read_text().replace("max_depth: 7 ", "max_depth: 25"))
    assert main(["validate", "Bad.yaml"]) == 1
    fields = [line.split(": ")[1] for line in capsys.readouterr().out.splitlines()]
    assert fields == ["(file name)", "hyperparameters.max_depth"]


@pytest.mark.parametrize("name, text, expected", [
    ("Fraud_Detection", SHIPPED.read_text(),
     "Fraud_Detection.yaml:1: (file name): 'Fraud_Detection' cannot be a target: "),
    ("typo", SHIPPED.read_text().replace("hyperparameters:", "hyperparamters:"),
     "hyperparamters: unknown field; did you mean 'hyperparameters'?"),
    ("prauc", SHIPPED.read_text().replace("    pr_auc:", "    prauc:"),
     "(got 'prauc'; did you mean 'pr_auc'?)"),
])
def test_plan_embedded_reports_what_validate_finds_before_starting_anything(
    name: str, text: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / f"{name}.yaml", text)
    assert main(["validate", f"{name}.yaml"]) == 1
    validated = capsys.readouterr().out.splitlines()
    assert any(expected in line for line in validated)
    # Few rows, so that a check made too late fails this test in seconds, not minutes.
    code = main(["plan", "--embedded", f"{name}.yaml", "--rows", "2000", "--out", "out"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines() == validated  # the same lines, and nothing started
    assert "starting the embedded AWS" not in err
    assert not (tmp_path / "out").exists()
