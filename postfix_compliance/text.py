"""Text a host (or someone else's file) controls, made safe where it leaves the suite for a person.

A compromised host controls every byte it prints. Two things follow, each done here and only here:

- `inert(text)`: what is shown on a terminal (or in a report) holds no control character. Escape
  sequences (CSI, OSC: retitle the terminal, clear the screen, recolour, move the cursor), BEL,
  NUL, form feed, DEL, the C1 set (CSI is also the single byte 0x9b), carriage return (it rewrites
  the line already shown), Unicode line separators and the bidi controls that reorder what a reader
  sees are shown visibly as `\\x1b`, `\\u202e`, ... Newline and tab stay: messages are multi-line.
- `quote(word)` / `shell(template, *words)`: a command shown to a person is safe to paste into a
  shell: every host-supplied word (a path, a boolean or domain name, a queue id, a relay) is
  shell-quoted where it stands. A word with a control character in it is written in bash's
  $'...' form, so the command stays on one line, holds no control byte (inert leaves it as it is)
  and still names the host's exact bytes.
"""

from __future__ import annotations

import re
from typing import Any

# C0 except \t and \n, DEL, C1, lone surrogates (bytes that were not UTF-8), LINE/PARAGRAPH
# SEPARATOR, and the bidi marks, embeddings, overrides and isolates ("Trojan Source").
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e"
                     "\u2066-\u2069\ud800-\udfff]")
# Inside a command these stay visible too: a command is one line, whatever the host's word holds.
_LAYOUT = {"\n": "\\n", "\t": "\\t"}
# Words a shell reads as themselves (shlex's set, ASCII only): no quotes needed.
_PLAIN = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


def _visible(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(text: Any) -> str:
    """`text` with every control character shown visibly (`\\x1b`); newline and tab kept."""
    if not isinstance(text, str):
        text = str(text)
    return _UNSAFE.sub(lambda m: _visible(m.group()), text)


def inert_data(value: Any) -> Any:
    """`inert` on every string in a JSON-like structure (dicts, lists, tuples); other values as they are."""
    if isinstance(value, str):
        return inert(value)
    if isinstance(value, dict):
        return {key: inert_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(inert_data(item) for item in value)
    return value


def _ansi_c(char: str) -> str:
    """One character inside bash's $'...'."""
    code = ord(char)
    if char in "\\'":
        return "\\" + char
    if char in _LAYOUT:
        return _LAYOUT[char]
    if not _UNSAFE.match(char):
        return char
    if code < 0x80:
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape): that byte again
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"  # C1, separators, bidi: the character, encoded by bash's locale


def quote(word: Any) -> str:
    """One host-supplied word as a single shell word: nothing in it expands, splits, globs or runs."""
    word = str(word)
    if _PLAIN.fullmatch(word):
        return word
    if not _UNSAFE.search(word) and not any(c in word for c in _LAYOUT):
        return "'" + word.replace("'", "'\"'\"'") + "'"
    return "$'" + "".join(_ansi_c(c) for c in word) + "'"


def shell(template: str, *words: Any) -> str:
    """A command shown to a person: `template` is the suite's own text, each `{}` one host-supplied
    word, quoted. shell("restorecon -Rv {}", path) -> "restorecon -Rv '/var/spool/x;y'"."""
    return template.format(*(quote(w) for w in words))


class InertTerminal:
    """pytest's terminal reporter for summaries of what hosts and input files said: every text
    written through it is `inert` (the reporter's own colours stay: they are keyword arguments)."""

    def __init__(self, reporter: Any):
        self._reporter = reporter

    def write_line(self, text: Any, **markup: bool) -> None:
        self._reporter.write_line(inert(text), **markup)

    def write_sep(self, sep: str, title: Any = None, **markup: bool) -> None:
        self._reporter.write_sep(sep, None if title is None else inert(title), **markup)
