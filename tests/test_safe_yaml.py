"""The safe YAML reader: plain values with the line of every key, nothing unsafe constructed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.adapters import safe_yaml
from bot.errors import InvalidRequest, Problem


def problems_of(text: str) -> list[Problem]:
    try:
        return list(safe_yaml.load(text, "r.yaml").problems)
    except InvalidRequest as error:
        return error.problems


def where(problems: list[Problem]) -> list[tuple[int | None, str]]:
    return [(p.line, p.field) for p in problems]


def test_values_and_the_line_of_every_key() -> None:
    doc = safe_yaml.load(
        "# comment\n"
        "name: fraud\n"
        "hyperparameters:\n"
        "  max_depth: 7\n"
        "  eta: 0.15\n"
        "steps:\n"
        "  - {percent: 1}\n"
        "  - percent: 100\n"
        "    soak_hours: 0\n",
        "r.yaml",
    )
    assert doc.value == {
        "name": "fraud",
        "hyperparameters": {"max_depth": 7, "eta": 0.15},
        "steps": [{"percent": 1}, {"percent": 100, "soak_hours": 0}],
    }
    assert doc.lines == {
        "": 2, "name": 2, "hyperparameters": 3, "hyperparameters.max_depth": 4,
        "hyperparameters.eta": 5, "steps": 6, "steps.0": 7, "steps.0.percent": 7,
        "steps.1": 8, "steps.1.percent": 8, "steps.1.soak_hours": 9,
    }
    assert doc.problems == ()


def test_scalars_are_read_the_way_a_reviewer_reads_them() -> None:
    doc = safe_yaml.load(
        "on: yes\n1: 1e-3\nwhen: 2024-01-15\nquoted: '7'\nhex: 0x1f\nnothing: ~\nflag: false\n",
        "r.yaml",
    )
    # Keys stay the text written (on: is not True); 1e-3 is a number as editors show it;
    # dates stay text rather than becoming Python objects.
    assert doc.value == {"on": True, "1": 0.001, "when": "2024-01-15", "quoted": "7",
                         "hex": 31, "nothing": None, "flag": False}


def test_duplicate_keys_are_refused_naming_the_first() -> None:
    problems = problems_of("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n")
    assert [str(p) for p in problems] == [
        "r.yaml:4: b.c: duplicate key (first at line 3)",
        "r.yaml:5: a: duplicate key (first at line 1)",
    ]


@pytest.mark.parametrize("text, tag", [
    ("a: !!python/object/apply:os.system ['touch pwned']\n", "!!python/object/apply:os.system"),
    ("a: !!python/name:os.system\n", "!!python/name:os.system"),
    ("a: !!str 7\n", "!!str"),
    ("a: !custom {b: 1}\n", "!custom"),
    ("a: ! x\n", "!"),
])
def test_every_explicit_tag_is_refused_and_never_constructed(text: str, tag: str) -> None:
    doc = safe_yaml.load(text, "r.yaml")
    assert doc.value == {}
    assert [str(p) for p in doc.problems] == [f"r.yaml:1: a: YAML tags ({tag}) are not allowed"]
    assert doc.refused == {"a"}


def test_a_tagged_document_is_refused_whole() -> None:
    doc = safe_yaml.load("--- !!map\na: 1\n", "r.yaml")
    assert doc.value is None
    assert where(list(doc.problems)) == [(1, "")]
    assert doc.refused == {""}


def test_billion_laughs_is_refused_without_expanding_anything() -> None:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 30):  # 9**30 strings if anything expanded the aliases
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    doc = safe_yaml.load("\n".join(lines) + "\n", "r.yaml")
    assert [str(p) for p in doc.problems] == [
        "r.yaml:1: l0: anchors (&l0) are not allowed: write the value out in full; "
        "30 in this file",
        "r.yaml:2: l1.0: aliases (*l0) are not allowed: write the value out in full; "
        "261 in this file",
    ]
    assert doc.value["l1"] == [None] * 9  # type: ignore[index]


def test_alias_as_a_key_is_refused() -> None:
    assert where(problems_of("a: &k x\n*k : 1\n")) == [(1, "a"), (2, "")]


def test_complex_keys_are_refused() -> None:
    problems = problems_of("? [a, b]\n: 1\nc: 2\n")
    assert [str(p) for p in problems] == [
        "r.yaml:1: (document): keys must be plain text, not a list or a mapping"
    ]


def test_a_second_document_is_refused_where_it_starts() -> None:
    doc = safe_yaml.load("a: 1\n---\nb: 2\n", "r.yaml")
    assert doc.value == {"a": 1}
    assert [str(p) for p in doc.problems] == [
        "r.yaml:2: (document): only one YAML document is allowed per file "
        "(a second one starts here)"
    ]


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_files_are_refused(text: str) -> None:
    assert [str(p) for p in problems_of(text)] == ["r.yaml:1: (document): the file is empty"]


@pytest.mark.parametrize("text, line, reason", [
    ("a: 1\nb: c: d\n", 2, "invalid YAML: mapping values are not allowed here"),
    ("a:\n\tb: 1\n", 2, "invalid YAML: found character '\\t' that cannot start any token"),
    ("a: [1, 2\nb: 3\n", 2, "invalid YAML: expected ',' or ']', but got ':'"),
    ("a: 'open\n", 2, "invalid YAML: found unexpected end of stream"),
    ("a: \x07\n", 1, "character 0x7 is not allowed in YAML"),
])
def test_syntax_errors_name_the_line(text: str, line: int, reason: str) -> None:
    [problem] = problems_of(text)
    assert (problem.line, problem.field) == (line, "")
    assert problem.reason.startswith(reason)


def test_problems_found_before_a_syntax_error_are_kept() -> None:
    assert where(problems_of("a: 1\na: 2\nb: [\n")) == [(2, "a"), (4, "")]


@pytest.mark.parametrize("text", [
    "a: " + "[" * 500_000,
    "a: " + "{" * 500_000,
    "- " * 500_000 + "x\n",
    "a:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 1400)),
])
def test_deep_nesting_is_refused(text: str) -> None:
    [problem] = problems_of(text)
    assert problem.reason == f"invalid YAML: nested deeper than {safe_yaml.MAX_DEPTH} levels"


def test_nesting_up_to_the_limit_is_fine() -> None:
    depth = safe_yaml.MAX_DEPTH
    assert problems_of("a: " + "[" * depth + "]" * depth + "\n") == []
    assert problems_of("- " * depth + "x\n") == []


def test_block_and_flow_nesting_add_up() -> None:
    half = safe_yaml.MAX_DEPTH // 2 + 2
    text = "".join("  " * i + f"k{i}:\n" for i in range(half)) + "  " * half + "x: "
    [problem] = problems_of(text + "[" * half + "]" * half + "\n")
    assert problem.reason == f"nested deeper than {safe_yaml.MAX_DEPTH} levels"
    assert problem.line == half + 1


def test_huge_integers_are_refused_not_a_crash() -> None:
    [problem] = problems_of("a: 1" + "0" * 5000 + "\n")
    assert (problem.line, problem.field) == (1, "a")
    assert problem.reason.startswith("number is too large")


def test_a_file_over_one_mib_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with open(big, "wb") as file:
        file.truncate(4 * 1024**3)  # sparse: reading it whole would take long and 4 GiB
    with pytest.raises(InvalidRequest) as raised:
        safe_yaml.load_file(big, "big.yaml")
    assert [str(p) for p in raised.value.problems] == [
        f"big.yaml:1: (document): file is too big: {4 * 1024**3} bytes "
        f"(at most {safe_yaml.MAX_BYTES} bytes, 1 MiB)"
    ]


def test_exactly_one_mib_is_allowed(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_bytes(b"a: 1\n" + b"#" * (safe_yaml.MAX_BYTES - 6) + b"\n")
    assert safe_yaml.load_file(path, "r.yaml").value == {"a": 1}
    path.write_bytes(path.read_bytes() + b"\n")
    with pytest.raises(InvalidRequest, match="file is too big"):
        safe_yaml.load_file(path, "r.yaml")


def test_text_over_one_mib_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="file is too big"):
        safe_yaml.load("a: " + "x" * safe_yaml.MAX_BYTES, "r.yaml")


def test_invalid_utf8_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_bytes(b"a: 1\nb: caf\xe9\n")
    with pytest.raises(InvalidRequest) as raised:
        safe_yaml.load_file(path, "r.yaml")
    assert [str(p) for p in raised.value.problems] == [
        "r.yaml:2: (document): is not UTF-8 text (byte 0xe9)"
    ]


def test_a_byte_order_mark_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_bytes(b"\xef\xbb\xbfa: 1\n")
    assert safe_yaml.load_file(path, "r.yaml").value == {"a": 1}


def test_a_missing_file_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest) as raised:
        safe_yaml.load_file(tmp_path / "nope.yaml", "nope.yaml")
    assert str(raised.value) == (
        "nope.yaml: (document): cannot read the file: No such file or directory"
    )
