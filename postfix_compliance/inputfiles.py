"""Reading the user's input files (snapshots, profiles, waivers, baselines, results): each problem is
one UsageError line naming the file, and, for schema errors, the key and what is wrong with it."""

from __future__ import annotations

import json
import re
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


# A lone UTF-16 surrogate (JSON `\\udcff`, YAML `"\\udcff"`) is a str Python cannot encode: one in a
# snapshot or results file would crash every writer later (the HTML report was left at 0 bytes).
# Only an escape can make one (UTF-8 text cannot hold it): JSON's and YAML's \uD800-\uDFFF, YAML's
# \U0000D800-\U0000DFFF. The walk runs only where the text has such an escape: results.json is full of
# other \u escapes (every control character of a host's output), and walked it cost a fifth of a merge.
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\(?:u|U0000)[dD][89abcdefABCDEF]")


def _scrub(text: str) -> str:
    return _SURROGATE.sub("\ufffd", text)


def scrub_surrogates(value: Any) -> Any:
    """`value` with every lone surrogate in its strings (keys too) replaced by U+FFFD, in place.

    Iterative and visiting each container once, so that deep nesting cannot exhaust the stack and
    YAML aliases (one object referenced many times) cannot make the walk exponential."""
    if isinstance(value, str):
        return _scrub(value)
    seen: set[int] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, list):
            for index, element in enumerate(item):
                if isinstance(element, str):
                    item[index] = _scrub(element)
                elif isinstance(element, (list, dict)):
                    stack.append(element)
        elif isinstance(item, dict):
            entries = list(item.items())
            item.clear()  # refilled in the same order, keys scrubbed too
            for key, element in entries:
                if isinstance(element, str):
                    element = _scrub(element)
                elif isinstance(element, (list, dict)):
                    stack.append(element)
                item[_scrub(key) if isinstance(key, str) else key] = element
    return value


def may_hold_surrogates(text: str) -> bool:
    """Whether JSON or YAML `text` has an escape that can decode to a surrogate (a pair of them is
    decoded to one character; walked anyway, it is left as it is)."""
    return _SURROGATE_ESCAPE.search(text) is not None


def _maybe_scrub(text: str, data: Any) -> Any:
    return scrub_surrogates(data) if may_hold_surrogates(text) else data


def load_json(path: str, what: str = "") -> Any:
    text = read_text(path, what)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{_name(path, what)}: not JSON: {exc.msg} at line {exc.lineno}") from None
    except RecursionError:  # `[[[[...` nested deeper than Python's stack
        raise UsageError(f"{_name(path, what)}: not JSON: nested too deeply") from None
    except ValueError as exc:  # a number too long for int() (more than 4300 digits)
        raise UsageError(f"{_name(path, what)}: not JSON: {exc}") from None
    return _maybe_scrub(text, data)


def load_yaml(path: str, what: str = "", loader: Any = yaml.SafeLoader) -> Any:
    text = read_text(path, what)
    try:
        return _maybe_scrub(text, yaml.load(text, Loader=loader))  # noqa: S506 (SafeLoader or a subclass of it)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"{_name(path, what)}: not valid YAML{at}: {problem}") from None
    except ValueError as exc:  # a value YAML itself could not build (an explicit !!timestamp, say)
        raise UsageError(f"{_name(path, what)}: not valid YAML: {exc}") from None
    except RecursionError:
        raise UsageError(f"{_name(path, what)}: not valid YAML: nested too deeply") from None


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
