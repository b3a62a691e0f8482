"""Backends that hold something open (an SSH master connection, an image sandbox's namespaces): closed at exit.

A backend calls `opened(self)` once it holds something and `closed(self)` when it let go; whatever is still
open when the interpreter exits is closed then, each on its own (one failing does not keep the others open).
"""

from __future__ import annotations

import atexit
from typing import Any

_OPEN: set[Any] = set()


def opened(backend: Any) -> None:
    _OPEN.add(backend)


def closed(backend: Any) -> None:
    _OPEN.discard(backend)


@atexit.register
def close_all() -> None:
    for backend in list(_OPEN):
        try:
            backend.close()
        except Exception:
            pass
