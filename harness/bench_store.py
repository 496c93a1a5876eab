"""Named pytest-benchmark results in `baselines/bench/`: storing, listing, loading.

```
baselines/bench/NAME.json        a stored result: N sessions (harness.model.bench.BenchSet)
```

* **Storing** (`save`): a `BenchSet` (validated by construction, and read back
  before anything is written), through a temporary file renamed into place.
  An existing name needs `force`. The raw rounds are kept only when asked
  (`keep_rounds`: `--keep-data`, or fewer than `MIN_SESSIONS` sessions,
  whose comparison needs them): about 16 KB per session of the whole suite
  without them, about 1 MB more with.
* **Loading** (`load`, `resolve`): a stored set, or any bare pytest-benchmark
  JSON (the format stored before sets: one session); a missing or malformed
  file, one of an unknown schema version or without raw timings is a
  `ConfigError` (exit 2) naming it.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from pathlib import Path

from harness.analysis.bench import MIN_SESSIONS
from harness.errors import ConfigError
from harness.model.bench import BenchmarkRun, BenchSet, parse, parse_set

SUBDIR = "bench"
"""Stored results live in STORE/bench/ (`harness.baselines.RESERVED` keeps the name)."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_name(name: str) -> str:
    """A result's name: letters, digits, `-`, `_` and `.`, starting with a letter or digit."""
    if not _NAME.fullmatch(name) or name.endswith(".json"):
        raise ConfigError(f"invalid benchmark result name {name!r}: use up to 100 letters, "
                          f"digits, '-', '_' and '.', starting with a letter or digit "
                          f"(without .json)")
    return name


def stored_path(store: Path, name: str) -> Path:
    return store / SUBDIR / f"{check_name(name)}.json"


def list_stored(store: Path) -> list[str]:
    folder = store / SUBDIR
    return sorted(p.stem for p in folder.glob("*.json") if _NAME.fullmatch(p.stem)) \
        if folder.is_dir() else []


def resolve(ref: str, store: Path) -> Path:
    """The file `--compare NAME|PATH` names: a stored result, else a JSON file's path."""
    if _NAME.fullmatch(ref) and not ref.endswith(".json"):
        path = store / SUBDIR / f"{ref}.json"
        if path.is_file():
            return path
        have = list_stored(store)
        raise ConfigError(f"no stored benchmark result {ref!r} in {store / SUBDIR} "
                          f"({'have: ' + ', '.join(have) if have else 'it has none'}; "
                          f"store one with harness bench --save {ref})")
    path = Path(ref)
    if path.is_file():
        return path
    raise ConfigError(f"{ref}: neither a stored benchmark result in {store / SUBDIR} nor a file")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"no benchmark result at {path}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: unreadable: {exc}") from exc


def load(path: Path) -> BenchSet:
    """A stored set of sessions, or a bare pytest-benchmark JSON (one session with raw
    timings); ConfigError when it is neither."""
    return parse_set(_read(path), str(path))


def load_session(path: Path) -> BenchmarkRun:
    """One pytest-benchmark JSON file with raw timings; ConfigError when it is not one."""
    return parse(_read(path), str(path))


def keep_rounds(sessions: int, keep_data: bool) -> bool:
    """Whether a stored set keeps its raw rounds: asked for, or needed (too few sessions
    for the session to be the unit, so its comparisons compare rounds)."""
    return keep_data or sessions < MIN_SESSIONS


def check_save(store: Path, name: str, force: bool) -> Path:
    """Where `save` would write, refused now (before any run) if it may not."""
    path = stored_path(store, name)
    if path.exists() and not force:
        raise ConfigError(f"a benchmark result named {name!r} exists ({path}); "
                          f"--force replaces it")
    if path.exists() and not path.is_file():
        raise ConfigError(f"{path} is not a file; not replacing it")
    return path


def write_set(path: Path, sessions: BenchSet) -> Path:
    """`sessions` as JSON at `path`, read back before it replaces anything, atomically."""
    text = sessions.dump()
    parse_set(text, str(path))  # nothing is written unless it reads back
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return path


def save(store: Path, name: str, sessions: BenchSet, force: bool = False) -> Path:
    """Store `sessions` as NAME, atomically (an existing NAME needs `force`)."""
    return write_set(check_save(store, name, force), sessions)
