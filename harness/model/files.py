"""Reading and writing the documents of `harness/model/`: one way for each.

Every whole document is written atomically (a temporary file renamed over the
target: a reader never sees half of one); JSON-lines files are read tolerating
a last line cut short by a killed writer, since every line before it was
complete when written; a document that does not validate is a `ConfigError`
(exit 2) naming the file and the first bad field.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from harness.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def invalid(path: Path, exc: ValidationError, what: str = "invalid") -> ConfigError:
    """The one-line error for a document that does not validate."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "top level"
    return ConfigError(f"{path}: {what} at {where}: {first['msg']}")


def save_json(model: BaseModel, path: Path, indent: int | None = None) -> None:
    """Write a model as JSON, atomically."""
    write_text(path, model.model_dump_json(indent=indent))


def write_text(path: Path, text: str) -> None:
    """Write a whole text file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def load_json(path: Path, model: type[M], missing: str) -> M:
    """A JSON document as `model`; `missing` is the error when the file is not there."""
    try:
        return model.model_validate_json(path.read_bytes())
    except FileNotFoundError as exc:
        raise ConfigError(missing) from exc
    except ValidationError as exc:
        raise invalid(path, exc) from exc


def read_jsonl(path: Path, model: type[M]) -> list[M]:
    """Every line of a JSON-lines file as `model` (missing file: none)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(model.model_validate_json(line))
        except ValidationError as exc:
            if n == len(lines):
                break
            raise invalid(Path(f"{path}:{n}"), exc) from exc
    return out
