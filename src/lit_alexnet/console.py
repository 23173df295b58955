"""What a run prints: the user's figures, not third-party chatter that says nothing to them."""

from __future__ import annotations

import functools
import importlib
import logging
import os
import re
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from lit_alexnet.checks import Refused

_P = ParamSpec("_P")
_R = TypeVar("_R")

# Modules whose deprecation notices are about their own internals, not the user's code.
_THIRD_PARTY = r"(lightning|pytorch_lightning|lightning_fabric|torch|torchmetrics|wandb|hydra)\b"


class _DropTips(logging.Filter):
    """Lightning's advertisements ("💡 Tip: ... try installing ...")."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


def duration(seconds: float) -> str:
    """A wall time as a person reads it: ``4 min 07 s``, ``42 s``."""
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def quiet_console(wandb_offline: bool) -> None:
    """Filter third-party deprecation warnings and Lightning's tips; silence W&B when it runs
    offline (the run then says itself where the W&B files are)."""
    for category in (DeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category, module=_THIRD_PARTY)
    # Lightning's own internals warn through warnings.warn from lightning/.../_pytree.py.
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*is deprecated")
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _DropTips) for f in rank_zero.filters):
        rank_zero.addFilter(_DropTips())
    if wandb_offline:
        os.environ.setdefault("WANDB_SILENT", "true")


def one_line_refusals(main: Callable[_P, _R]) -> Callable[_P, _R]:
    """Make a Hydra entry point end a refused input (:class:`~lit_alexnet.checks.Refused`) with
    its message alone and exit code 2, instead of a traceback above it; every other error keeps
    its traceback, and ``HYDRA_FULL_ERROR=1`` shows it for refusals too."""

    @functools.wraps(main)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return main(*args, **kwargs)
        except Exception as e:
            refused = _refusal_within(e)
            message = str(refused) if refused is not None else _refusal_in_child(e)
            if message is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            print(f"error: {message}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None

    return wrapper


def _refusal_within(error: BaseException) -> Refused | None:
    """``error`` if it is a refusal, or the refusal it was raised from: Hydra wraps an error
    raised while it instantiates a ``_target_`` in its ``InstantiationException``."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, Refused):
            return current
        seen.add(id(current))
        current = current.__cause__
    return None


# The last line of a traceback: "lit_alexnet.data.bad_files.BadFilesError: <message...>".
_RAISED = re.compile(r"^(lit_alexnet(?:\.\w+)*)\.(\w+): ", re.M)


def _refusal_in_child(error: Exception) -> str | None:
    """The message of a refusal raised in a process that ``strategy=two_device_ddp`` spawned:
    torch hands the parent only the child's traceback, as text."""
    from torch.multiprocessing import ProcessRaisedException

    if not isinstance(error, ProcessRaisedException):
        return None
    matches = list(_RAISED.finditer(str(error)))
    if not matches:
        return None
    last = matches[-1]
    try:
        raised = getattr(importlib.import_module(last.group(1)), last.group(2), None)
    except ImportError:
        return None
    if not (isinstance(raised, type) and issubclass(raised, Refused)):
        return None
    return str(error)[last.end() :].strip()


def prog(module: str) -> str:
    """A command's name in its usage line: the console script's (``lit-alexnet-evaluate``) when
    run as one, else ``python -m MODULE``."""
    script = Path(sys.argv[0]).name
    return script if script.startswith("lit-alexnet-") else f"python -m {module}"
