"""What a run prints: the user's figures, not third-party chatter that says nothing to them."""

from __future__ import annotations

import logging
import os
import warnings

# Modules whose deprecation notices are about their own internals, not the user's code.
_THIRD_PARTY = r"(lightning|pytorch_lightning|lightning_fabric|torch|torchmetrics|wandb|hydra)\b"


class _DropTips(logging.Filter):
    """Lightning's advertisements ("💡 Tip: ... try installing ...")."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


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
