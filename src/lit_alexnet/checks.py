"""The two shapes every argument check in the package takes, so that a refusal always reads
``key=value: what to do`` and a config schema can prefix the key's path (``model.net.``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class Refused(Exception):
    """The user's input refused (a config value, a path, a file), with a message that names it
    and says what to do: entry points print the message alone, without a traceback."""


class Invalid(Refused, ValueError):
    """A refused value."""


class Missing(Refused, FileNotFoundError):
    """A path that must exist and does not."""


def check_choice(key: str, value: Any, allowed: Iterable[Any]) -> None:
    """Refuse ``value`` unless it is one of ``allowed``."""
    allowed = list(allowed)
    if value not in allowed:
        raise Invalid(f"{key}={value!r}: choose one of {allowed}")


def check(ok: bool, key: str, value: Any, rule: str) -> None:
    """Refuse ``value`` unless ``ok``; ``rule`` says what it must be (``"must be >= 1"``)."""
    if not ok:
        raise Invalid(f"{key}={value!r} {rule}")
