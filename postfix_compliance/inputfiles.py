"""Reading the user's input files (snapshots, profiles, waivers, baselines, results): each problem is
one UsageError line naming the file, and, for schema errors, the key and what is wrong with it."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import yaml

from postfix_compliance.errors import UsageError


def _name(path: str, what: str) -> str:
    return f"{what} {path}" if what else path


def read_text(path: str, what: str = "") -> str:
    name = _name(path, what)
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        raise UsageError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{name}: is a directory, expected a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{name}: cannot read: {exc}") from None


def load_json(path: str, what: str = "") -> Any:
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{_name(path, what)}: not JSON: {exc.msg} at line {exc.lineno}") from None


def load_yaml(path: str, what: str = "", loader: Any = yaml.SafeLoader) -> Any:
    text = read_text(path, what)
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 (SafeLoader or a subclass of it)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"{_name(path, what)}: not valid YAML{at}: {problem}") from None
    except ValueError as exc:  # a value YAML itself could not build (an explicit !!timestamp, say)
        raise UsageError(f"{_name(path, what)}: not valid YAML: {exc}") from None


def key_path(error: jsonschema.ValidationError) -> str:
    """`booleans[0].value` for an error deep in a document; `(top level)` at the root."""
    where = ""
    for part in error.absolute_path:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    return where or "(top level)"


def validate(data: Any, schema: dict[str, Any], path: str, what: str) -> None:
    """Raise one UsageError for the first schema violation (in document order)."""
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        raise UsageError(f"{what} {path}: {key_path(errors[0])}: {errors[0].message}")
