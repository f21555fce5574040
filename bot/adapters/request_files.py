"""Request files in, validated ``Request`` out, or every problem with its file, line and field.

The YAML is read by ``bot.safe_yaml`` (line numbers, nothing unsafe); the ``Request`` model
decides what is valid; this module only turns the model's complaints into plain words at
the line of the offending key.
"""

from __future__ import annotations

import contextlib
import difflib
import re
import types
import typing
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from bot.adapters import git, safe_yaml
from bot.core.request import Request
from bot.core.request_history import RequestVersion
from bot.errors import InvalidRequest, Problem
from bot.settings import target_name_problem


def load_request(
    path: str | Path, display_path: str | None = None
) -> tuple[Request, dict[str, int]]:
    """Read and validate one request file; return it with the line of every dotted field.

    ``display_path`` is how the file is named in problems (default: ``path`` as given).
    Raises ``InvalidRequest`` carrying every problem found in the file.
    """
    shown = str(path) if display_path is None else display_path
    return _validated(safe_yaml.load_file(Path(path), shown), shown)


def load_target_request(
    path: str | Path, display_path: str | None = None
) -> tuple[Request, dict[str, int]]:
    """``load_request``, and the file's name must name a target: what ``validate`` checks and
    what ``plan`` checks before it starts anything. Every problem of both is raised at once."""
    shown = str(path) if display_path is None else display_path
    problems = target_problems(path, shown)
    try:
        found = load_request(path, shown)
    except InvalidRequest as error:
        raise InvalidRequest(problems + error.problems) from None
    if not problems:
        problems = alarm_name_problems(Path(path).stem, *found, shown)
    if problems:
        raise InvalidRequest(problems)
    return found


def alarm_name_problems(target: str, request: Request, lines: dict[str, int],
                        shown: str) -> list[Problem]:
    """The team's alarms a request lists must be named ``<target>-...``: the bot's roles may
    read only the target's alarms (``deploy/promotion-bot.yaml``)."""
    challenger = request.rollout.challenger
    names = challenger.alarms.names if challenger is not None else []
    field = "rollout.challenger.alarms.names"
    return [Problem(shown, lines.get(f"{field}.{i}", lines.get(field)), f"{field}.{i}",
                    f"must begin with {target}- (got {name!r}): the bot may read only the "
                    "target's own alarms")
            for i, name in enumerate(names) if not name.startswith(f"{target}-")]


def target_problems(path: str | Path, shown: str) -> list[Problem]:
    """The file's name (without .yaml) becomes the target's name in AWS: the rule ``plan``
    and ``apply`` apply (``bot.settings.target_name_problem``), as a problem of the file."""
    reason = target_name_problem(Path(path).stem)
    return [] if reason is None else [Problem(shown, 1, "(file name)", reason)]


def parse_request_text(text: str, display_path: str) -> tuple[Request, dict[str, int]]:
    """Like ``load_request`` for content that is not a file, e.g. read from a git revision."""
    return _validated(safe_yaml.load(text, display_path), display_path)


def history(repo: Path, rev: str, path: str) -> Sequence[RequestVersion]:
    """The versions of the request file ``path`` on ``rev``'s first-parent line, newest first.
    Git is read once for the whole history (``git.file_history``); each version is parsed
    when it is first looked at (the rules read the newest few), and one that is not a valid
    request, a link or too big has no request."""
    return _History(git.file_history(repo, rev, path, safe_yaml.MAX_BYTES), path)


class _History(Sequence[RequestVersion]):
    """A file's versions from git, each parsed once, on first access."""

    def __init__(self, versions: tuple[git.FileVersion, ...], path: str) -> None:
        self._versions, self._path = versions, path
        self._parsed: dict[int, RequestVersion] = {}

    def __len__(self) -> int:
        return len(self._versions)

    @typing.overload
    def __getitem__(self, index: int) -> RequestVersion: ...

    @typing.overload
    def __getitem__(self, index: slice) -> Sequence[RequestVersion]: ...

    def __getitem__(self, index: int | slice) -> RequestVersion | Sequence[RequestVersion]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        at = range(len(self))[index]
        if at not in self._parsed:
            version, request = self._versions[at], None
            # One that does not parse is told by validate and plan while it is the current.
            if version.content is not None:
                with contextlib.suppress(InvalidRequest):
                    request, _ = _validated(
                        safe_yaml.load_bytes(version.content, self._path), self._path)
            self._parsed[at] = RequestVersion(version.commit, version.landed, request,
                                              deleted=version.deleted)
        return self._parsed[at]


def _validated(document: safe_yaml.Document, path: str) -> tuple[Request, dict[str, int]]:
    problems = list(document.problems)
    value = document.value
    if "" in document.refused:
        raise InvalidRequest(problems)
    if not isinstance(value, dict):
        problems.append(Problem(
            path, document.lines.get("", 1), "",
            "the document is empty" if value is None else
            f"must be a mapping of fields such as 'experiment_id: ...' (got {_describe(value)})",
        ))
        raise InvalidRequest(_in_order(problems))
    try:
        request = Request.model_validate(value)
    except ValidationError as error:
        problems += [p for p in model_problems(error, document.lines, path, Request)
                     if not _refused(p.field, document.refused)]
    if problems:
        raise InvalidRequest(_in_order(problems))
    return request, dict(document.lines)


def _in_order(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: p.line or 0)


def _refused(field: str, refused: frozenset[str]) -> bool:
    """Whether ``field`` is (inside) a value that was already reported and left out."""
    return any(field == r or field.startswith(f"{r}.") for r in refused)


def model_problems(
    error: ValidationError, lines: dict[str, int], path: str, model: type[BaseModel]
) -> list[Problem]:
    """One ``Problem`` per pydantic error, in plain words, at the line of the offending key."""
    problems = []
    for detail in error.errors(include_url=False):
        loc = [str(part) for part in detail["loc"] if part != "[key]"]
        field = ".".join(loc)
        if detail["type"] == "missing":
            # The key is not in the file; point at the mapping it belongs in.
            line = _nearest_line(lines, loc[:-1])
        else:
            line = _nearest_line(lines, loc)
        problems.append(Problem(path, line, field, _reason(detail, model)))
    return problems


def _nearest_line(lines: dict[str, int], loc: list[str]) -> int:
    for end in range(len(loc), -1, -1):
        line = lines.get(".".join(loc[:end]))
        if line is not None:
            return line
    return 1


_REASONS = {
    "missing": "required field is missing",
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "int_type": "must be a whole number",
    "float_type": "must be a number",
    "string_type": "must be text",
    "bool_type": "must be true or false",
    "literal_error": "must be one of {expected}",
    "string_pattern_mismatch": "must match the pattern {pattern}",
    "string_too_short": "must be at least {min_length} characters long",
    "string_too_long": "must be at most {max_length} characters long",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} item(s)",
    "model_type": "must be a mapping of fields",
    "model_attributes_type": "must be a mapping of fields",
    "dict_type": "must be a mapping",
    "list_type": "must be a list",
}


def _reason(detail: ErrorDetails, model: type[BaseModel]) -> str:
    kind = detail["type"]
    value = detail["input"]
    if kind == "missing":
        return _REASONS[kind]
    if kind == "extra_forbidden":
        parent = _model_at(model, [p for p in detail["loc"][:-1] if p != "[key]"])
        names = _field_names(parent) if parent else []
        guess = closest(str(detail["loc"][-1]), names)
        reason = "unknown field" + (f"; did you mean {guess!r}?" if guess else "")
        return f"{reason} (allowed: {', '.join(names)})" if names else reason
    if kind == "value_error":
        reason = detail["msg"].removeprefix("Value error, ")
        return reason if "(got" in reason else f"{reason} (got {_describe(value)})"
    template = _REASONS.get(kind)
    if template is None:
        reason = detail["msg"][:1].lower() + detail["msg"][1:]
    else:
        context = {k: _number(v) for k, v in (detail.get("ctx") or {}).items()}
        reason = template.format(**context)
        if kind == "literal_error" and not any(s in reason for s in (",", " or ")):
            reason = reason.replace("must be one of", "must be")
    if kind in ("string_too_long", "string_too_short", "too_long", "too_short"):
        return f"{reason} (got {len(value)})"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        value = _number(value)  # the model turned the 2 that was written into 2.0
    return f"{reason} (got {_describe(value)}{_hint(kind, value, detail)})"


#: Names other libraries give XGBoost's hyperparameters (scikit-learn's wrapper, xgboost's
#: own Python API): suggested even though they are not spelt alike.
KNOWN_AS = {"learning_rate": "eta", "n_estimators": "num_round", "num_boost_round": "num_round",
            "num_rounds": "num_round", "reg_lambda": "lambda", "reg_alpha": "alpha",
            "random_state": "seed", "colsample": "colsample_bytree"}


def closest(given: str, allowed: list[str]) -> str | None:
    """The allowed name ``given`` most likely misspells (difflib's closest, ignoring case),
    or the one other libraries call ``given``; None when nothing is close."""
    if given in KNOWN_AS and KNOWN_AS[given] in allowed:
        return KNOWN_AS[given]
    lowered = {name.lower(): name for name in allowed}
    found = difflib.get_close_matches(given.lower(), list(lowered), n=1, cutoff=0.7)
    if not found and len(given) >= 2:  # a name cut short: f1 for f1_score, hours for soak_hours
        found = [name for name in lowered if name.startswith(given.lower())
                 or name.endswith(f"_{given.lower()}")]
        found = found if len(found) == 1 else []
    return lowered[found[0]] if found else None


def _hint(kind: str, value: object, detail: ErrorDetails) -> str:
    if kind == "literal_error" and isinstance(value, str):
        expected = re.findall(r"'([^']*)'", str((detail.get("ctx") or {}).get("expected", "")))
        guess = closest(value, expected) if len(expected) > 1 else None
        return f"; did you mean {guess!r}?" if guess else ""
    if kind in ("int_type", "float_type") and isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return ""
        return "; write the number without quotes"
    if kind == "string_type" and isinstance(value, (int, float)):
        return "; put it in quotes to make it text"
    return ""


def _number(value: object) -> object:
    """Limits as the user would write them: 0, not 0.0."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _describe(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    return repr(value)


def _field_names(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _model_at(model: type[BaseModel], loc: list[str | int]) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``loc`` (for the list of allowed fields)."""
    annotation: object = model
    for part in loc:
        current = _find_model(annotation)
        if isinstance(part, str) and current is not None:
            fields = {info.alias or name: info for name, info in current.model_fields.items()}
            if part not in fields:
                return None
            annotation = fields[part].annotation
        else:
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if not args:
                return None
            annotation = args[-1]  # list[X] -> X, dict[K, V] -> V
    return _find_model(annotation)


def _find_model(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        for arg in typing.get_args(annotation):
            found = _find_model(arg)
            if found is not None:
                return found
    return None
