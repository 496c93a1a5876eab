"""A strict TOML file's errors as one line: `source:LINE: what is wrong with which key`.

A config file people write by hand (`baselines/policy.toml`) is read strictly,
and an error is only useful if it names the key and its line. pydantic's
`ValidationError` gives a key path and tomllib no positions, so a key's line is
found by scanning the text for table headers and `key =` lines (`key_lines`):
exact for the files people write (headers, dotted keys, quoted keys), and the
enclosing key's line for a key inside an inline table. An unknown key gets the
closest known ones ("did you mean 'p95'?") from the caller's `known_keys`.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from harness.errors import ConfigError

_TOML_POSITION = re.compile(r"\(at line (\d+), column \d+\)")


def type_name(value: object) -> str:
    """How an error names a TOML value's type: `a string`, `true/false`, `a table`."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return {str: "a string", int: "an integer", float: "a number"}.get(type(value),
                                                                         type(value).__name__)




def loads(text: str, source: str) -> dict[str, Any]:
    """The TOML document of `text`; invalid TOML is one `ConfigError` `source:LINE: ...`."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = _TOML_POSITION.search(str(exc))
        where = f"{source}:{m.group(1)}" if m else source
        raise ConfigError(f"{where}: invalid TOML: {exc}") from exc


def located(exc: ValidationError, raw: dict, text: str, source: str,
            known_keys: Callable[[tuple[str, ...]], list[str]]) -> ConfigError:
    """The first error in the file's order, as one line naming the key and its line.

    `known_keys(table)` lists the keys a table may hold, for "did you mean"."""
    lines = key_lines(text)
    located = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        line = _line_of(loc, lines)
        located.append((line if line is not None else 10**9,
                        _message(err, loc, raw, known_keys)))
    located.sort(key=lambda e: e[0])
    line, message = located[0]
    more = f" (and {len(located) - 1} more)" if len(located) > 1 else ""
    where = f"{source}:{line}" if line < 10**9 else source
    return ConfigError(f"{where}: {message}{more}")


def _line_of(loc: tuple[str, ...], lines: dict[tuple[str, ...], int]) -> int | None:
    """The line of `loc`, else of the nearest enclosing key or table that has one."""
    for n in range(len(loc), 0, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _dig(raw: object, loc: tuple[str, ...]) -> object:
    for part in loc:
        if not isinstance(raw, dict) or part not in raw:
            return None
        raw = raw[part]
    return raw


def table_name(path: tuple[str, ...]) -> str:
    """A key path as TOML writes it: `endpoints."GET /api/v1/agents"`."""
    return ".".join(p if re.fullmatch(r"[A-Za-z0-9_-]+", p) else json.dumps(p) for p in path)


def _did_you_mean(key: str, known: list[str]) -> str:
    """` (did you mean 'p95'?)` for the closest known keys (ties: all of them)."""
    scores = [(difflib.SequenceMatcher(None, key, k).ratio(), k) for k in known]
    best = max((s for s, _ in scores), default=0.0)
    if best < 0.6:
        return ""
    close = [repr(k) for s, k in scores if s == best]
    return f" (did you mean {' or '.join(close)}?)"


def _message(err: dict, loc: tuple[str, ...], raw: dict,
             known_keys: Callable[[tuple[str, ...]], list[str]]) -> str:
    if loc and loc[-1] == "[key]":  # a table's name that is not allowed there
        return f"[{table_name(loc[:-1])}]: {err['msg']}"
    key, table = (loc[-1], loc[:-1]) if loc else ("", ())
    where = f" in [{table_name(table)}]" if table else ""
    value = _dig(raw, loc)
    if err["type"] == "extra_forbidden":
        hint = _did_you_mean(key, known_keys(table))
        if isinstance(value, dict):
            return f"unknown table [{table_name(loc)}]{hint}"
        return f"unknown key {key!r}{where}{hint}"
    expected = {"float_type": "a number", "int_type": "an integer", "bool_type": "true or false",
                "string_type": "a string", "model_type": "a table", "dict_type": "a table",
                "literal_error": None}.get(err["type"], "")
    name = f"{key!r}{where}" if loc else "the policy"
    if expected is None:  # a literal: pydantic lists the choices
        return f"{name} must be {err['msg'].removeprefix('Input should be ')}, " \
               f"not {value!r}"
    if expected:
        shown = f" ({value!r})" if not isinstance(value, (dict, list)) else ""
        return f"{name} must be {expected}, not {type_name(value)}{shown}"
    msg = err["msg"]
    if msg.startswith("Input should be "):
        msg = "must be " + msg.removeprefix("Input should be ")
    return f"{name} {msg}" if msg.startswith("must") else f"{name}: {msg}"


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Key path -> the line (1-based) that first defines it: table headers and `key =` lines."""
    found: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s.startswith("["):
            path = _path_of(s)
            if path is not None:
                table = path
                for i in range(1, len(path) + 1):
                    found.setdefault(path[:i], n)
            continue
        part = _key_part(s)
        path = _path_of(f"{part} = 0") if part else None
        if path:
            for i in range(1, len(path) + 1):
                found.setdefault(table + path[:i], n)
    return found


def _key_part(s: str) -> str | None:
    """What comes before the first `=` outside quotes."""
    quote = None
    for i, c in enumerate(s):
        if quote:
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == "=":
            return s[:i]
    return None


def _path_of(toml: str) -> tuple[str, ...] | None:
    """The key path one header (`[a."b c"]`) or one `key = 0` line defines."""
    try:
        doc: object = tomllib.loads(toml + "\n")
    except tomllib.TOMLDecodeError:
        return None
    path: list[str] = []
    while isinstance(doc, dict) and len(doc) == 1:
        key, doc = next(iter(doc.items()))
        path.append(key)
    return tuple(path) or None
