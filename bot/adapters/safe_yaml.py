"""Safe YAML loading with line numbers, for files people write by hand and others review.

Values are built straight from the parser's events, so no Python object is ever
constructed, no alias is ever expanded, and the line of every key is known. What a
hand-written file never needs is refused with the line where it is: explicit tags,
anchors and aliases, duplicate keys, more than one document, files over 1 MiB.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    CollectionStartEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    NodeEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

from bot.errors import InvalidRequest, Problem

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32

_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
# YAML 1.2 floats such as 1e-3, which YAML 1.1 (PyYAML) reads as text but editors as numbers.
_FLOAT_12 = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)[eE][-+]?[0-9]+$")


@dataclass(frozen=True)
class Document:
    """A loaded document: its plain value, the line of every dotted field, what was refused.

    ``lines`` maps ``"hyperparameters.max_depth"`` to the line of that key (list items by
    index, ``"rollout.challenger.steps.0"``), and ``""`` to the line the document starts.
    Refused parts (a tagged value, an alias) are left out of ``value``; their fields are in
    ``refused`` so that a schema check does not report them a second time as missing.
    """

    value: object
    lines: dict[str, int]
    problems: tuple[Problem, ...] = ()
    refused: frozenset[str] = frozenset()


def load_file(path: Path, display_path: str) -> Document:
    """Load one YAML file, checking its size before reading it.

    A symbolic link is refused, not followed: a link committed as a request file could
    make the bot read any file of the machine it runs on.
    """
    try:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            raise InvalidRequest([Problem(
                display_path, None, "", f"is a symbolic link (to {os.readlink(path)!r}), not a "
                "file; request files must be regular files in the repository")])
        # O_NOFOLLOW: a link swapped in after the check is refused by the kernel too.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
                             | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block
        with os.fdopen(descriptor, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                raise InvalidRequest([Problem(display_path, None, "",
                                              "is not a regular file")])
            if size > MAX_BYTES:
                raise InvalidRequest([_too_big(display_path, size)])
            data = file.read(MAX_BYTES + 1)
    except OSError as error:
        raise InvalidRequest(
            [Problem(display_path, None, "", f"cannot read the file: {error.strerror}")]
        ) from None
    return load_bytes(data, display_path)


def load_bytes(data: bytes, display_path: str) -> Document:
    """Load one YAML document from a file's bytes (UTF-8, a byte-order mark allowed)."""
    if len(data) > MAX_BYTES:
        raise InvalidRequest([_too_big(display_path, len(data))])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        byte = data[error.start]
        raise InvalidRequest(
            [Problem(display_path, line, "", f"is not UTF-8 text (byte 0x{byte:02x})")]
        ) from None
    return load(text, display_path)


def load(text: str, display_path: str) -> Document:
    """Load one YAML document from ``text``.

    Raises ``InvalidRequest`` when there is nothing to check further (too big, empty,
    invalid YAML); otherwise returns the document with the problems found in it.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise InvalidRequest([_too_big(display_path, size)])
    try:
        loader = _Loader(text)  # checks every character up front
    except yaml.reader.ReaderError as error:
        line = text[: error.position].count("\n") + 1
        raise InvalidRequest([Problem(
            display_path, line, "", f"character {error.character:#x} is not allowed in YAML"
        )]) from None
    builder = _Builder(loader, display_path)
    try:
        return builder.document()
    except yaml.MarkedYAMLError as error:
        raise InvalidRequest(builder.problems_with(_syntax_problem(error, display_path))) from None
    finally:
        loader.dispose()


class _Loader(yaml.SafeLoader):
    """PyYAML's safe parser, refusing deep nesting while scanning.

    The scanner revisits every open ``[``/``{`` on each token and slows down with the
    indentation depth, so unbounded nesting would make a 1 MiB file take hours.
    """

    def _refuse_deeper(self, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise yaml.scanner.ScannerError(
                None, None, f"nested deeper than {MAX_DEPTH} levels", self.get_mark()
            )

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        self._refuse_deeper(self.flow_level + 1)
        super().fetch_flow_collection_start(TokenClass)

    def add_indent(self, column: int) -> bool:
        self._refuse_deeper(len(self.indents) + 1)
        return super().add_indent(column)


def _too_big(display_path: str, size: int) -> Problem:
    return Problem(display_path, 1, "",
                   f"file is too big: {size} bytes (at most {MAX_BYTES} bytes, 1 MiB)")


def _syntax_problem(error: yaml.MarkedYAMLError, display_path: str) -> Problem:
    mark = error.problem_mark or error.context_mark
    reason = f"invalid YAML: {error.problem or error.context}"
    if error.context and error.problem and error.context_mark is not None:
        reason += f" ({error.context} at line {error.context_mark.line + 1})"
    return Problem(display_path, mark.line + 1 if mark else 1, "", reason)


def _line(event: Event) -> int:
    return event.start_mark.line + 1 if event.start_mark is not None else 1


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _short_tag(tag: str) -> str:
    return tag.replace("tag:yaml.org,2002:", "!!")


@dataclass
class _Refusal:
    """The first anchor (or alias) of a file and how many there are, reported once."""

    line: int
    field: str
    name: str
    count: int = 1


_DROPPED = object()


@dataclass
class _Builder:
    """Turns parser events into plain values, noting lines and refusing what is unsafe."""

    loader: Any  # yaml.SafeLoader, whose parser methods have no type hints
    display_path: str
    lines: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)
    anchors: _Refusal | None = None
    aliases: _Refusal | None = None

    def peek(self) -> Event:
        event: Event = self.loader.peek_event()
        return event

    def next(self) -> Event:
        event: Event = self.loader.get_event()
        return event

    def at(self, kind: type[Event]) -> bool:
        return bool(self.loader.check_event(kind))

    def problem(self, line: int, path: str, reason: str) -> None:
        self.problems.append(Problem(self.display_path, line, path, reason))

    def problems_with(self, last: Problem) -> list[Problem]:
        return [*self._all_problems(), last]

    def _all_problems(self) -> list[Problem]:
        found = list(self.problems)
        for seen, what, sigil in ((self.anchors, "anchors", "&"), (self.aliases, "aliases", "*")):
            if seen:
                more = f"; {seen.count} in this file" if seen.count > 1 else ""
                found.append(Problem(self.display_path, seen.line, seen.field,
                                     f"{what} ({sigil}{seen.name}) are not allowed: "
                                     f"write the value out in full{more}"))
        return sorted(found, key=lambda p: p.line or 0)

    def document(self) -> Document:
        self.next()  # StreamStartEvent
        if self.at(StreamEndEvent):
            raise InvalidRequest([Problem(self.display_path, 1, "", "the file is empty")])
        self.next()  # DocumentStartEvent
        self.lines[""] = _line(self.peek())
        value = self.node("", 0)
        self.next()  # DocumentEndEvent
        if self.at(DocumentStartEvent):
            self.problem(_line(self.peek()), "",
                         "only one YAML document is allowed per file (a second one starts here)")
        else:
            self.next()  # StreamEndEvent
        return Document(
            value=None if value is _DROPPED else value,
            lines=self.lines,
            problems=tuple(self._all_problems()),
            refused=frozenset(self.refused),
        )

    def node(self, path: str, depth: int) -> object:
        event = self.peek()
        line = _line(event)
        if isinstance(event, AliasEvent):
            self.next()
            self.aliases = self._note(self.aliases, line, path, str(event.anchor))
            return self.refuse(path)
        assert isinstance(event, NodeEvent)
        if event.anchor is not None:
            self.anchors = self._note(self.anchors, line, path, str(event.anchor))
        tag = getattr(event, "tag", None)
        if tag is not None:
            self.problem(line, path, f"YAML tags ({_short_tag(tag)}) are not allowed")
            self.skip()
            return self.refuse(path)
        if depth > MAX_DEPTH:
            self.problem(line, path, f"nested deeper than {MAX_DEPTH} levels")
            self.skip()
            return self.refuse(path)
        if isinstance(event, ScalarEvent):
            self.next()
            return self.scalar(event, path)
        if isinstance(event, SequenceStartEvent):
            return self.sequence(path, depth)
        return self.mapping(path, depth)

    def refuse(self, path: str) -> object:
        self.refused.add(path)
        return _DROPPED

    @staticmethod
    def _note(seen: _Refusal | None, line: int, path: str, name: str) -> _Refusal:
        if seen is None:
            return _Refusal(line, path, name)
        seen.count += 1
        return seen

    def sequence(self, path: str, depth: int) -> list[object]:
        self.next()  # SequenceStartEvent
        items: list[object] = []
        while not self.at(SequenceEndEvent):
            item_path = _join(path, str(len(items)))
            self.lines[item_path] = _line(self.peek())
            item = self.node(item_path, depth + 1)
            # A refused item keeps its place so that later items keep their index.
            items.append(None if item is _DROPPED else item)
        self.next()
        return items

    def mapping(self, path: str, depth: int) -> dict[str, object]:
        self.next()  # MappingStartEvent
        result: dict[str, object] = {}
        first_line: dict[str, int] = {}
        while not self.at(MappingEndEvent):
            line = _line(self.peek())
            key = self.key(path)
            if key is None:
                self.skip()
                continue
            key_path = _join(path, key)
            if key in first_line:
                self.problem(line, key_path, f"duplicate key (first at line {first_line[key]})")
                self.skip()
                continue
            first_line[key] = line
            self.lines[key_path] = line
            value = self.node(key_path, depth + 1)
            if value is not _DROPPED:
                result[key] = value
        self.next()
        return result

    def key(self, path: str) -> str | None:
        """The text of a plain key (``on``, ``1`` and ``null`` stay text); None if refused."""
        event = self.peek()
        line = _line(event)
        if isinstance(event, AliasEvent):
            self.next()
            self.aliases = self._note(self.aliases, line, path, str(event.anchor))
            return None
        if not isinstance(event, ScalarEvent):
            self.problem(line, path, "keys must be plain text, not a list or a mapping")
            self.skip()
            return None
        self.next()
        if event.anchor is not None:
            self.anchors = self._note(self.anchors, line, path, str(event.anchor))
        if event.tag is not None:
            self.problem(line, path, f"YAML tags ({_short_tag(event.tag)}) are not allowed")
            return None
        return str(event.value)

    def skip(self) -> None:
        """Consume one whole node (a value of a refused or duplicate key) without building it."""
        depth = 0
        while True:
            event = self.next()
            if isinstance(event, CollectionStartEvent):
                depth += 1
            elif isinstance(event, (SequenceEndEvent, MappingEndEvent)):
                depth -= 1
            if depth == 0:
                return

    def scalar(self, event: ScalarEvent, path: str) -> object:
        text = event.value
        tag = str(self.loader.resolve(yaml.ScalarNode, text, event.implicit))
        node = yaml.ScalarNode(tag, text, None, None, event.style)
        try:
            if tag == _NULL:
                return None
            if tag == _BOOL:
                return bool(self.loader.construct_yaml_bool(node))
            if tag == _INT:
                return int(self.loader.construct_yaml_int(node))
            if tag == _FLOAT:
                return float(self.loader.construct_yaml_float(node))
        except ValueError:
            self.problem(_line(event), path, f"number is too large ({text[:20]}...)")
            return self.refuse(path)
        if event.style is None and _FLOAT_12.match(text):
            return float(text)
        # Timestamps, merge keys and the like stay the text that was written.
        return str(text)

